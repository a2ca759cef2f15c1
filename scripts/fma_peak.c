/* The machine's FP32 peak: every thread runs 12 independent chains of fused multiply-adds on the
 * widest vectors the compiler targets (AVX-512 or AVX2), touching no memory. Prints GFLOP/s.
 * Built and run by scripts/benchmark.py:  cc -O2 -march=native -pthread fma_peak.c
 * Usage: fma_peak THREADS
 *
 * The chains start from distinct values: identical chains are merged by the compiler into one,
 * which then runs 12x fewer instructions and reports a peak the hardware cannot reach. */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#if defined(__AVX512F__)
typedef __m512 vec;
#define LANES 16
#define SET1 _mm512_set1_ps
#define FMADD _mm512_fmadd_ps
#define ADD _mm512_add_ps
#define STORE _mm512_storeu_ps
#else
typedef __m256 vec;
#define LANES 8
#define SET1 _mm256_set1_ps
#define FMADD _mm256_fmadd_ps
#define ADD _mm256_add_ps
#define STORE _mm256_storeu_ps
#endif

#define ITERATIONS 60000000L /* per thread and chain: about 0.5 s */
#define CHAINS(op) op(a0) op(a1) op(a2) op(a3) op(a4) op(a5) op(a6) op(a7) op(a8) op(a9) op(a10) op(a11)
#define INIT(x) vec x = SET1(seed += 0.001f);
#define STEP(x) x = FMADD(x, m, c);
#define SUM(x) s = ADD(s, x);

static float sink[64 * LANES];

static void *work(void *arg) {
  const vec m = SET1(0.9999999f), c = SET1(1e-7f);
  float seed = 1.0f + (long)arg;
  CHAINS(INIT)
  for (long i = 0; i < ITERATIONS; i++) { CHAINS(STEP) }
  vec s = SET1(0.0f);
  CHAINS(SUM)
  STORE(sink + LANES * (long)arg, s); /* keeps the loop from being optimised away */
  return 0;
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 1;
  if (threads < 1 || threads > 64) return 2;
  pthread_t t[64];
  struct timespec start, end;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (long i = 0; i < threads; i++) pthread_create(&t[i], 0, work, (void *)i);
  for (int i = 0; i < threads; i++) pthread_join(t[i], 0);
  clock_gettime(CLOCK_MONOTONIC, &end);
  double seconds = end.tv_sec - start.tv_sec + (end.tv_nsec - start.tv_nsec) / 1e9;
  /* 12 chains x LANES lanes x 2 flops (a multiply and an add) per FMA */
  printf("%.1f\n", threads * (double)ITERATIONS * 12 * LANES * 2 / seconds / 1e9);
  return 0;
}
