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


def _checksum(keys: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(keys.tobytes())
    digest.update(vectors.tobytes())
    return np.frombuffer(digest.digest(), dtype=np.uint8)


class BottleneckCache:
    """All vectors of one feature extractor: {content key: [dim] float32}."""

    def __init__(self, root: Path, name: str, fingerprint: str, dim: int, warn=print) -> None:
        self.dir = Path(root) / f"{name}_{fingerprint[:16]}"
        self.dim = dim
        self.warn = warn
        self._index: dict[bytes, np.ndarray] = {}
        self._pending_keys: list[bytes] = []
        self._pending_vectors: list[np.ndarray] = []
        self._load()

    def __len__(self) -> int:
        return len(self._index)

    def _load(self) -> None:
        if not self.dir.is_dir():
            return
        for shard in sorted(self.dir.glob("shard-*.npz")):
            try:
                keys, vectors = self._read_shard(shard)
            except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as e:
                self.warn(f"Bottleneck cache file {shard} is damaged ({e}); removing it, its "
                          f"vectors will be recomputed.")
                shard.unlink(missing_ok=True)
                continue
            for key, vector in zip(keys, vectors):
                self._index[key.tobytes()] = vector

    def _read_shard(self, shard: Path) -> tuple[np.ndarray, np.ndarray]:
        with np.load(shard, allow_pickle=False) as data:
            keys, vectors, checksum = data["keys"], data["vectors"], data["checksum"]
        if keys.dtype != np.uint8 or keys.ndim != 2 or keys.shape[1] != KEY_BYTES:
            raise ValueError(f"keys have shape {keys.shape} and dtype {keys.dtype}")
        if vectors.dtype != np.float32 or vectors.shape != (len(keys), self.dim):
            raise ValueError(f"vectors have shape {vectors.shape}, expected ({len(keys)}, "
                             f"{self.dim}) float32")
        if not np.array_equal(checksum, _checksum(keys, vectors)):
            raise ValueError("checksum mismatch")
        return keys, vectors

    def get(self, key: bytes) -> np.ndarray | None:
        return self._index.get(key)

    def add(self, keys: list[bytes], vectors: np.ndarray) -> None:
        for key, vector in zip(keys, vectors):
            self._index[key] = vector
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

    Images that fail to decode are warned about and dropped from their split; the returned
    splits are the ones the vectors belong to. Vectors are flushed to disk as they are made, and
    on Ctrl-C whatever is complete is flushed before the interrupt propagates, so the next run
    resumes where this one stopped.
    """
    stats = ExtractionStats(total=sum(len(s) for s in splits.values()))
    # Work list: one (split, index) per distinct missing key, grouped into per-split batches.
    seen: set[bytes] = set()
    batches: list[tuple[str, list[int]]] = []
    for name, split in splits.items():
        todo = []
        for i, key in enumerate(split.images.keys()):
            if cache.get(key) is not None:
                stats.cached += 1
            elif key not in seen:
                seen.add(key)
                todo.append(i)
        batches.extend((name, todo[j:j + batch_size]) for j in range(0, len(todo), batch_size))
    n_missing = len(seen)

    failed_keys: set[bytes] = set()
    size = extractor.arch.input_size
    start = time.perf_counter()
    if n_missing:
        # One thread decodes the next batch while TensorFlow runs this one (it releases the GIL).
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
                    keys = splits[name].images.keys()
                    for i, reason in failures.items():
                        printing_around(bar, warn)(f"Skipping {reason}")
                        failed_keys.add(keys[i])
                    ok = [i for i in indices if i not in failures]
                    if ok:
                        cache.add([keys[i] for i in ok], extractor(pixels))
                    bar.update(len(indices))
            finally:
                cache.flush()
        # The engine's buffers (300 MB and more for Inception V3) go before the vectors are
        # gathered below, so the two never need memory at the same time.
        extractor.release_engines()
    stats.seconds = time.perf_counter() - start
    stats.failed = len(failed_keys)
    stats.computed = n_missing - stats.failed

    vectors, kept = {}, {}
    for name, split in splits.items():
        keys = split.images.keys()
        keep = np.array([k not in failed_keys for k in keys], dtype=bool)
        kept[name] = split.subset(keep)
        vectors[name] = np.stack([cache.get(k) for k in kept[name].images.keys()]) if keep.any() \
            else np.zeros((0, cache.dim), np.float32)
    return vectors, kept, stats
