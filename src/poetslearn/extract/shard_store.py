"""One store for every cache of per-image rows (bottlenecks, activations): content keys to rows,
kept in write-once shard files.

The store owns what both caches need and nothing either does alone: the index (key -> shard and
row, built from the keys alone, so opening a cache reads no rows), the pending rows not yet on
disk, the atomic write (temporary files, fsync, renames; the file that commits a shard renamed
last), verification of a shard's checksum when its rows are first read, and one damage policy: a
shard that fails to load or verify is reported, removed, and its rows are computed again. How a
shard lies on disk is its `ShardLayout`'s business (`bottleneck_cache`, `activation_cache`), so
the caches written by earlier versions keep their formats.

Two runs sharing a folder never write the same file (names carry a time and a random part), so
they can run side by side.
"""

from __future__ import annotations

import hashlib
import time
import uuid
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

import numpy as np

from poetslearn.context import warn_on_stderr
from poetslearn.data.sources import KEY_BYTES
from poetslearn.outputs import write_files_atomic

# What loading a damaged (truncated, overwritten, bit-flipped) shard raises: zipfile answers a
# damaged header in many ways (a member marked encrypted: RuntimeError; an unknown compression
# method: NotImplementedError; stored bytes said to be deflated, where they do not inflate:
# zlib.error).
DAMAGED_SHARD_ERRORS = (
    OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError, RuntimeError,
    NotImplementedError, zlib.error,
)  # fmt: skip


def checksum(keys: bytes, parts: Iterable[bytes]) -> bytes:
    """The 16-byte blake2b digest both layouts store beside their rows: of the keys, then of the
    rows' bytes (given in parts, so a large file can stream through)."""
    digest = hashlib.blake2b(keys, digest_size=16)
    for part in parts:
        digest.update(part)
    return digest.digest()


def checked_keys(keys: np.ndarray) -> np.ndarray:
    if keys.dtype != np.uint8 or keys.ndim != 2 or keys.shape[1] != KEY_BYTES:
        raise ValueError(f"keys have shape {keys.shape} and dtype {keys.dtype}")
    return keys


def keys_array(keys: list[bytes]) -> np.ndarray:
    """[n, KEY_BYTES] uint8, as every shard stores its keys."""
    return np.frombuffer(b"".join(keys), np.uint8).reshape(-1, KEY_BYTES)


class ShardLayout(Protocol):
    """How one kind of shard lies on disk. A shard is named by the path of the file that commits
    it (found by `pattern`); `files` are all of its files, that one last."""

    pattern: str
    contents: str  # "vectors", for messages

    def describe(self, shard: Path) -> str:
        """What the shard is called in messages (Bottleneck cache file <path>)."""

    def new_name(self, stem: str) -> str: ...

    def files(self, shard: Path) -> list[Path]: ...

    def read_keys(self, shard: Path) -> np.ndarray:
        """[n, KEY_BYTES] uint8 keys, without reading the rows."""

    def read_rows(self, shard: Path) -> np.ndarray:
        """[n, ...] rows, their checksum verified."""

    def verify(self, shard: Path) -> None:
        """Checks the checksum of the whole shard."""

    def encode(self, keys: np.ndarray, rows: np.ndarray) -> list[bytes]:
        """The content of each of `files`, in that order."""


class ShardStore:
    """{content key: row} on disk in shards of about `shard_rows` rows, written as they fill."""

    def __init__(
        self, directory: Path, layout: ShardLayout, shard_rows: int, warn=warn_on_stderr
    ) -> None:
        self.dir = Path(directory)
        self.layout, self.shard_rows, self.warn = layout, shard_rows, warn
        self._where: dict[bytes, tuple[Path, int]] = {}  # key -> (shard, row)
        self._verified: set[Path] = set()
        # (keys, rows) pairs not yet on disk; one append each, so a signal arriving in the
        # middle of `add` can never leave keys without their rows.
        self._pending: list[tuple[list[bytes], np.ndarray]] = []
        self._load_index()

    def __len__(self) -> int:
        return len(self._where) + self._pending_rows()

    def __contains__(self, key: bytes) -> bool:
        return key in self._where

    def _pending_rows(self) -> int:
        return sum(len(keys) for keys, _ in self._pending)

    def _load_index(self) -> None:
        if not self.dir.is_dir():
            return
        for shard in sorted(self.dir.glob(self.layout.pattern)):
            try:
                keys = checked_keys(self.layout.read_keys(shard))
            except DAMAGED_SHARD_ERRORS as e:
                self.discard(shard, e)
                continue
            self._remember(shard, keys)

    def _remember(self, shard: Path, keys: np.ndarray) -> None:
        for row, key in enumerate(keys):
            self._where.setdefault(key.tobytes(), (shard, row))

    def discard(self, shard: Path, error: Exception) -> None:
        """The one damage policy: say so, remove every file of the shard, forget its keys."""
        self.warn(
            f"{self.layout.describe(shard)} is damaged ({error}); removing it, its "
            f"{self.layout.contents} will be recomputed."
        )
        for path in self.layout.files(shard):
            path.unlink(missing_ok=True)
        self._where = {k: where for k, where in self._where.items() if where[0] != shard}
        self._verified.discard(shard)

    def locate(self, keys: list[bytes]) -> list[tuple[Path, int] | None]:
        return [self._where.get(key) for key in keys]

    def verify(self, keys: list[bytes]) -> int:
        """Verifies, once per store, every shard holding one of `keys` that has not been yet;
        damaged ones are discarded. Returns how many were."""
        shards = {where[0] for where in self.locate(keys) if where is not None}
        damaged = 0
        for shard in sorted(shards - self._verified):
            try:
                self.layout.verify(shard)
            except DAMAGED_SHARD_ERRORS as e:
                self.discard(shard, e)
                damaged += 1
                continue
            self._verified.add(shard)
        return damaged

    def read(self, shard: Path) -> np.ndarray | None:
        """The shard's rows, verified; None when it is damaged (and then discarded)."""
        try:
            rows = self.layout.read_rows(shard)
        except DAMAGED_SHARD_ERRORS as e:
            self.discard(shard, e)
            return None
        self._verified.add(shard)
        return rows

    def add(self, keys: list[bytes], rows: np.ndarray) -> None:
        """Stores rows (written a shard at a time; `flush` writes the rest)."""
        self._pending.append((list(keys), np.asarray(rows)))
        if self._pending_rows() >= self.shard_rows:
            self.flush()

    def flush(self) -> None:
        """Writes the pending rows as one new shard, atomically."""
        if not self._pending:
            return
        keys = keys_array([k for keys, _ in self._pending for k in keys])
        rows = np.concatenate([r for _, r in self._pending]).reshape(len(keys), -1)
        stem = f"{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:12]}"
        shard = self.dir / self.layout.new_name(stem)
        # In order: the committing file is renamed last, so a shard exists whole or not at all.
        write_files_atomic(dict(zip(self.layout.files(shard), self.layout.encode(keys, rows))))
        self._pending = []
        self._verified.add(shard)  # written by this process from rows in memory
        self._remember(shard, keys)
