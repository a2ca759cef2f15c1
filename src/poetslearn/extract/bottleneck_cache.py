"""The bottleneck cache: vectors stored once on disk, never served stale.

The cache is content-addressed. Its folder is named after the extractor's fingerprint (which
covers the architecture, the preprocessing and every weight value), and each vector is stored
under a hash of its image's content. A changed image therefore misses the cache and different
weights use a different folder.

Vectors lie in write-once `shard-*.npz` files of a few thousand rows (keys, vectors and their
checksum), kept by the `ShardStore` that the activation cache uses too: written atomically, the
checksum verified when a shard's vectors are read, a damaged shard reported, removed and its
vectors recomputed.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from poetslearn.context import warn_on_stderr
from poetslearn.extract.shard_store import ShardStore, checked_keys, checksum

# Vectors per shard file; the environment variable exists for tests that interrupt a run.
SHARD_ROWS = int(os.environ.get("POETSLEARN_SHARD_ROWS", "4096"))


class NpzShards:
    """One `.npz` per shard: `keys` [n, KEY_BYTES] uint8, `vectors` [n, dim] float32 and
    `checksum` (blake2b of both)."""

    pattern = "shard-*.npz"
    contents = "vectors"

    def __init__(self, dim: int) -> None:
        self.dim = dim

    def describe(self, shard: Path) -> str:
        return f"Bottleneck cache file {shard}"

    def new_name(self, stem: str) -> str:
        return f"shard-{stem}.npz"

    def files(self, shard: Path) -> list[Path]:
        return [shard]

    def read_keys(self, shard: Path) -> np.ndarray:
        with np.load(shard, allow_pickle=False) as data:  # reads the `keys` member alone
            return data["keys"]

    def read_rows(self, shard: Path) -> np.ndarray:
        with np.load(shard, allow_pickle=False) as data:
            keys, vectors, stored = data["keys"], data["vectors"], data["checksum"]
        checked_keys(keys)
        if vectors.dtype != np.float32 or vectors.shape != (len(keys), self.dim):
            raise ValueError(
                f"vectors have shape {vectors.shape}, expected ({len(keys)}, {self.dim}) float32"
            )
        if stored.tobytes() != checksum(keys.tobytes(), [vectors.tobytes()]):
            raise ValueError("checksum mismatch")
        return vectors

    def verify(self, shard: Path) -> None:
        self.read_rows(shard)

    def encode(self, keys: np.ndarray, rows: np.ndarray) -> list[bytes]:
        vectors = np.ascontiguousarray(rows, np.float32).reshape(len(keys), self.dim)
        buffer = io.BytesIO()
        np.savez(
            buffer,
            keys=keys,
            vectors=vectors,
            checksum=np.frombuffer(checksum(keys.tobytes(), [vectors.tobytes()]), np.uint8),
        )
        return [buffer.getvalue()]


class BottleneckCache:
    """All vectors of one feature extractor on disk: {content key: [dim] float32}.

    Only the keys stay in memory, with where each vector lies. `fill` reads the shards one at a
    time straight into the caller's arrays, so a run holds each vector once (Inception V3 on
    CIFAR-10: 490 MB, not twice that).
    """

    def __init__(
        self, root: Path, name: str, fingerprint: str, dim: int, warn=warn_on_stderr
    ) -> None:
        self.dir = Path(root) / f"{name}_{fingerprint[:16]}"
        self.dim = dim
        self.store = ShardStore(self.dir, NpzShards(dim), SHARD_ROWS, warn)

    def __len__(self) -> int:
        return len(self.store)

    def __contains__(self, key: bytes) -> bool:
        return key in self.store

    def fill(self, targets: list[tuple[list[bytes], np.ndarray]]) -> list[np.ndarray]:
        """Copies cached vectors into arrays: for each (keys, out), out[i] = vector of keys[i].

        Returns, per target, a boolean mask of the rows filled. Each shard holding a wanted key
        is read once and verified; a damaged one is reported and removed, and its rows stay
        unfilled (to be recomputed).
        """
        found = [np.zeros(len(keys), bool) for keys, _ in targets]
        plan: dict[Path, list[tuple[int, int, int]]] = {}  # shard: (target, out row, row)
        for t, (keys, _) in enumerate(targets):
            for i, where in enumerate(self.store.locate(keys)):
                if where is not None:
                    plan.setdefault(where[0], []).append((t, i, where[1]))
        for shard, entries in plan.items():
            vectors = self.store.read(shard)
            if vectors is None:
                continue
            target_of, out_rows, rows = np.array(entries).T
            for t in np.unique(target_of):
                pick = target_of == t
                targets[t][1][out_rows[pick]] = vectors[rows[pick]]
                found[t][out_rows[pick]] = True
        return found

    def add(self, keys: list[bytes], vectors: np.ndarray) -> None:
        """Stores vectors (written to disk a shard at a time; `flush` writes the rest)."""
        self.store.add(keys, np.asarray(vectors, dtype=np.float32).reshape(-1, self.dim))

    def flush(self) -> None:
        self.store.flush()
