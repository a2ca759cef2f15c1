"""Bottleneck vectors: computed in batches, stored once on disk, never served stale.

The cache is content-addressed. Its folder is named after the extractor's fingerprint (which
covers the architecture, the preprocessing and every weight value), and each vector is stored
under a hash of its image's content. A changed image therefore misses the cache and different
weights use a different folder.

Vectors are stored in write-once "shard" files of a few thousand rows (not one text file per
image). A shard is written under a temporary name and renamed into place, so a crash or Ctrl-C
never leaves a half-written shard that looks valid, and each shard carries a checksum that is
verified when it is read; a damaged shard is reported, removed and its vectors recomputed.
Two runs sharing the folder never write the same file, so they can run side by side.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from poetslearn.datasets import KEY_BYTES, Split
from poetslearn.progress import printing_around, progress

# Vectors per shard file; the environment variable exists for tests that interrupt a run.
SHARD_ROWS = int(os.environ.get("POETSLEARN_SHARD_ROWS", "4096"))
# What reading a damaged (truncated, overwritten, bit-flipped) shard raises.
_DAMAGED_SHARD_ERRORS = (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError)


def _checksum(keys: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(keys.tobytes())
    digest.update(vectors.tobytes())
    return np.frombuffer(digest.digest(), dtype=np.uint8)


class BottleneckCache:
    """All vectors of one feature extractor on disk: {content key: [dim] float32}.

    Only the keys stay in memory, with where each vector lies (shard file and row). `fill` reads
    the shards one at a time straight into the caller's arrays, so a run holds each vector once
    (Inception V3 on CIFAR-10: 490 MB, not twice that).
    """

    def __init__(self, root: Path, name: str, fingerprint: str, dim: int, warn=print) -> None:
        self.dir = Path(root) / f"{name}_{fingerprint[:16]}"
        self.dim = dim
        self.warn = warn
        self._where: dict[bytes, tuple[Path, int]] = {}  # key -> (shard, row)
        self._pending_keys: list[bytes] = []
        self._pending_vectors: list[np.ndarray] = []
        self._load_keys()

    def __len__(self) -> int:
        return len(self._where) + len(self._pending_keys)

    def _load_keys(self) -> None:
        if not self.dir.is_dir():
            return
        for shard in sorted(self.dir.glob("shard-*.npz")):
            try:
                with np.load(shard, allow_pickle=False) as data:
                    keys = self._checked_keys(data["keys"])
            except _DAMAGED_SHARD_ERRORS as e:
                self._discard(shard, e)
                continue
            self._remember(shard, keys)

    def _remember(self, shard: Path, keys: np.ndarray) -> None:
        for row, key in enumerate(keys):
            self._where.setdefault(key.tobytes(), (shard, row))

    def _discard(self, shard: Path, error: Exception) -> None:
        self.warn(f"Bottleneck cache file {shard} is damaged ({error}); removing it, its "
                  f"vectors will be recomputed.")
        shard.unlink(missing_ok=True)
        self._where = {k: where for k, where in self._where.items() if where[0] != shard}

    @staticmethod
    def _checked_keys(keys: np.ndarray) -> np.ndarray:
        if keys.dtype != np.uint8 or keys.ndim != 2 or keys.shape[1] != KEY_BYTES:
            raise ValueError(f"keys have shape {keys.shape} and dtype {keys.dtype}")
        return keys

    def _read_shard(self, shard: Path) -> tuple[np.ndarray, np.ndarray]:
        with np.load(shard, allow_pickle=False) as data:
            keys, vectors, checksum = data["keys"], data["vectors"], data["checksum"]
        self._checked_keys(keys)
        if vectors.dtype != np.float32 or vectors.shape != (len(keys), self.dim):
            raise ValueError(f"vectors have shape {vectors.shape}, expected ({len(keys)}, "
                             f"{self.dim}) float32")
        if not np.array_equal(checksum, _checksum(keys, vectors)):
            raise ValueError("checksum mismatch")
        return keys, vectors

    def fill(self, targets: list[tuple[list[bytes], np.ndarray]]) -> list[np.ndarray]:
        """Copies cached vectors into arrays: for each (keys, out), out[i] = vector of keys[i].

        Returns, per target, a boolean mask of the rows filled. Each shard holding a wanted key
        is read once and its checksum verified; a damaged one is reported and removed, and its
        rows stay unfilled (to be recomputed).
        """
        found = [np.zeros(len(keys), bool) for keys, _ in targets]
        plan: dict[Path, list[tuple[int, int, int]]] = {}  # shard: (target, out row, row)
        for t, (keys, _) in enumerate(targets):
            for i, key in enumerate(keys):
                where = self._where.get(key)
                if where is not None:
                    plan.setdefault(where[0], []).append((t, i, where[1]))
        for shard, entries in plan.items():
            try:
                _, vectors = self._read_shard(shard)
            except _DAMAGED_SHARD_ERRORS as e:
                self._discard(shard, e)
                continue
            target_of, out_rows, rows = np.array(entries).T
            for t in np.unique(target_of):
                pick = target_of == t
                targets[t][1][out_rows[pick]] = vectors[rows[pick]]
                found[t][out_rows[pick]] = True
        return found

    def add(self, keys: list[bytes], vectors: np.ndarray) -> None:
        """Stores vectors (written to disk a shard at a time; `flush` writes the rest)."""
        self._pending_keys.extend(keys)
        self._pending_vectors.append(np.asarray(vectors, dtype=np.float32))
        if len(self._pending_keys) >= SHARD_ROWS:
            self.flush()

    def flush(self) -> None:
        """Writes pending vectors as one new shard (atomically: temporary name, then rename)."""
        if not self._pending_keys:
            return
        keys = np.frombuffer(b"".join(self._pending_keys), dtype=np.uint8).reshape(-1, KEY_BYTES)
        vectors = np.concatenate(self._pending_vectors).reshape(-1, self.dim)
        self.dir.mkdir(parents=True, exist_ok=True)
        name = f"shard-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:12]}.npz"
        tmp = self.dir / f".tmp-{name}"
        try:
            with open(tmp, "wb") as f:
                np.savez(f, keys=keys, vectors=vectors, checksum=_checksum(keys, vectors))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.dir / name)
        finally:
            tmp.unlink(missing_ok=True)
        self._pending_keys, self._pending_vectors = [], []
        self._remember(self.dir / name, keys)


@dataclass
class ExtractionStats:
    total: int = 0
    cached: int = 0
    computed: int = 0
    failed: int = 0
    seconds: float = 0.0

    def describe(self) -> str:
        if self.computed == 0 and self.failed == 0:
            return f"All {self.total:,} bottlenecks were cached; computed none."
        rate = self.computed / self.seconds if self.seconds > 0 else 0.0
        return (f"Computed {self.computed:,} bottlenecks in {self.seconds:.1f} s "
                f"({rate:,.0f} img/s); {self.cached:,} were cached"
                + (f"; {self.failed:,} image(s) failed" if self.failed else "") + ".")


def compute_bottlenecks(splits: dict[str, Split], extractor, cache: BottleneckCache,
                        batch_size: int = 128, show_progress: bool = True, warn=print
                        ) -> tuple[dict[str, np.ndarray], dict[str, Split], ExtractionStats]:
    """Returns {split: [N, dim] float32 vectors} for every split, computing only cache misses.

    Each split's array is allocated once and filled in place, from the cache and from the
    engine, so no vector is held twice. Images that fail to decode are warned about and dropped
    from their split; the returned splits are the ones the vectors belong to. Vectors are flushed
    to disk as they are made, and on Ctrl-C whatever is complete is flushed before the interrupt
    propagates, so the next run resumes where this one stopped.
    """
    stats = ExtractionStats(total=sum(len(s) for s in splits.values()))
    keys_of = {name: split.images.keys() for name, split in splits.items()}
    vectors = {name: np.empty((len(split), cache.dim), np.float32)
               for name, split in splits.items()}
    found = dict(zip(splits, cache.fill([(keys_of[name], vectors[name]) for name in splits])))
    stats.cached = sum(int(mask.sum()) for mask in found.values())
    # Work list: one (split, index) per distinct missing key, grouped into per-split batches; a
    # key seen again (the same image twice) gets its vector copied to `repeats` rows.
    first: set[bytes] = set()
    repeats: dict[bytes, list[tuple[str, int]]] = {}
    batches: list[tuple[str, list[int]]] = []
    for name in splits:
        todo = []
        for i in np.flatnonzero(~found[name]).tolist():
            key = keys_of[name][i]
            if key in first:
                repeats.setdefault(key, []).append((name, i))
            else:
                first.add(key)
                todo.append(i)
        batches.extend((name, todo[j:j + batch_size]) for j in range(0, len(todo), batch_size))
    n_missing = len(first)

    failed_keys: set[bytes] = set()
    size = extractor.arch.input_size
    start = time.perf_counter()
    if n_missing:
        # One thread decodes the next batch while the engine runs this one (it releases the GIL).
        with ThreadPoolExecutor(1) as prefetch, progress(
                n_missing, "Computing bottlenecks", "img", show_progress) as bar:
            try:
                def load(batch):
                    pixels, failures = splits[batch[0]].images.load_batch(batch[1], size)
                    return extractor.prepare(pixels), failures

                future = prefetch.submit(load, batches[0])
                for k, (name, indices) in enumerate(batches):
                    pixels, failures = future.result()
                    if k + 1 < len(batches):
                        future = prefetch.submit(load, batches[k + 1])
                    keys = keys_of[name]
                    for i, reason in failures.items():
                        printing_around(bar, warn)(f"Skipping {reason}")
                        failed_keys.add(keys[i])
                    ok = [i for i in indices if i not in failures]
                    if ok:
                        computed = extractor(pixels)
                        vectors[name][ok] = computed
                        ok_keys = [keys[i] for i in ok]
                        cache.add(ok_keys, computed)
                        for key, vector in zip(ok_keys, computed):
                            for other, row in repeats.get(key, ()):
                                vectors[other][row] = vector
                    bar.update(len(indices))
            finally:
                cache.flush()
        # The engine's buffers (300 MB and more for Inception V3) are not needed any more.
        extractor.release_engines()
    stats.seconds = time.perf_counter() - start
    stats.failed = len(failed_keys)
    stats.computed = n_missing - stats.failed

    kept = {}
    for name, split in splits.items():
        keep = np.array([k not in failed_keys for k in keys_of[name]], dtype=bool)
        kept[name] = split.subset(keep)
        if not keep.all():
            vectors[name] = vectors[name][keep]
    return vectors, kept, stats
