"""The bottleneck cache: vectors stored once on disk, never served stale.

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
from pathlib import Path

import numpy as np

from poetslearn.data.sources import KEY_BYTES

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
        # (keys, vectors) pairs not yet on disk; one append each, so a signal arriving in the
        # middle of `add` can never leave keys without their vectors.
        self._pending: list[tuple[list[bytes], np.ndarray]] = []
        self._load_keys()

    def __len__(self) -> int:
        return len(self._where) + self._pending_rows()

    def _pending_rows(self) -> int:
        return sum(len(keys) for keys, _ in self._pending)

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
        self._pending.append((list(keys), np.asarray(vectors, dtype=np.float32)))
        if self._pending_rows() >= SHARD_ROWS:
            self.flush()

    def flush(self) -> None:
        """Writes pending vectors as one new shard (atomically: temporary name, then rename)."""
        if not self._pending:
            return
        keys = np.frombuffer(b"".join(k for keys, _ in self._pending for k in keys),
                             dtype=np.uint8).reshape(-1, KEY_BYTES)
        vectors = np.concatenate([v for _, v in self._pending]).reshape(-1, self.dim)
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
        self._pending = []
        self._remember(self.dir / name, keys)
