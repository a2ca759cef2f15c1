"""The host a benchmark ran on, printed with every table so that a ratio is never read without
it: the CPU (name, family, model), its cores, its FP32 peak from fused multiply-adds alone
(scripts/fma_peak.c, where there is a C compiler) and TensorFlow's 4096x4096 matmul rate.

A ratio against Keras means little on a host where TensorFlow itself runs slowly (issue 21's
2.5x held only there), so the line says whether TensorFlow ran at full speed here: its matmul
at 60% of the FMA peak or more.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

FULL_SPEED_SHARE = 0.6  # TensorFlow's matmul / the FMA peak at or above which it runs at full speed


def cpu_description() -> str:
    """The CPU's name and family/model numbers, from /proc/cpuinfo where there is one."""
    try:
        fields = dict(
            line.split(":", 1)
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if ":" in line
        )
    except OSError:
        return platform.processor() or "unknown CPU"
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    return (
        f"{fields.get('model name', 'unknown CPU')} (family {fields.get('cpu family', '?')}, "
        f"model {fields.get('model', '?')})"
    )


def fma_peak_gflops(threads: int) -> float | None:
    """Pure-FMA GFLOP/s of `threads` threads (best of 3), or None without a C compiler."""
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        return None
    source = Path(__file__).with_name("fma_peak.c")
    with tempfile.TemporaryDirectory() as tmp:
        binary = Path(tmp) / "fma_peak"
        subprocess.run(
            [compiler, "-O2", "-march=native", "-pthread", str(source), "-o", str(binary)],
            check=True,
        )
        return max(
            float(
                subprocess.run(
                    [str(binary), str(threads)], check=True, capture_output=True, text=True
                ).stdout
            )
            for _ in range(3)
        )


def matmul_peak_gflops(n: int = 4096, seconds: float = 2.0) -> float:
    """GFLOP/s of TensorFlow's (oneDNN's) float32 matmul of two n x n matrices (best of 3
    stretches of `seconds`)."""
    import tensorflow as tf

    a = tf.random.uniform((n, n))
    matmul = tf.function(lambda: tf.matmul(a, a))
    matmul().numpy()
    best = 0.0
    for _ in range(3):
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds or count == 0:
            matmul().numpy()
            count += 1
        best = max(best, 2 * n**3 * count / (time.perf_counter() - start) / 1e9)
    return best


def measure_host(matmul_seconds: float = 2.0) -> dict:
    """The host's facts, for a report's JSON and for `host_line`."""
    cores = os.cpu_count() or 1
    fma = fma_peak_gflops(cores)
    matmul = matmul_peak_gflops(seconds=matmul_seconds)
    return {
        "cpu": cpu_description(),
        "machine": platform.machine(),
        "cores": cores,
        "fma_peak_gflops": fma and round(fma, 1),
        "matmul_peak_gflops": round(matmul, 1),
        "tensorflow_full_speed": None if not fma else matmul >= FULL_SPEED_SHARE * fma,
    }


def host_line(host: dict) -> str:
    """One line naming the host, to print above a table."""
    fma, matmul = host["fma_peak_gflops"], host["matmul_peak_gflops"]
    if fma:
        speed = "full speed" if host["tensorflow_full_speed"] else "slow"
        verdict = f": TensorFlow at {speed} here"
        if matmul > fma:  # the FMA loop is a ceiling: read below the matmul, it was disturbed
            verdict = ", more than a ceiling allows: the FMA loop ran on a busy host and read low"
        peaks = (
            f"FP32 FMA peak {fma:.0f} GFLOP/s, TensorFlow 4096x4096 matmul {matmul:.0f} GFLOP/s "
            f"({matmul / fma:.0%} of it{verdict})"
        )
    else:
        peaks = (
            f"FMA peak not measured (no C compiler), TensorFlow 4096x4096 matmul {matmul:.0f} "
            "GFLOP/s"
        )
    return f"host: {host['cpu']}, {host['cores']} cores, {host['machine']}; {peaks}"
