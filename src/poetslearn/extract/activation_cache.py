"""The activation cache: what the frozen part of the network gives for each image, stored once.

Fine-tuning the top K blocks trains on the activations where the frozen part ends (for
MobileNet 0.50/224 and K=2, 14x14x256 values an image), so they are computed once and kept, like
the bottlenecks: content-addressed (a key per image), in a folder named after the extractor's
fingerprint and the cut, checked by a checksum, written once and reused by every later run that
cuts there. Unlike bottlenecks they are too large to hold in memory (3 GB for CIFAR-10 at that
cut, in one byte per value), so they are written in segments of raw rows and read back a batch
at a time, never all at once.

A segment is three files: `<name>.rows` (the encoded rows), `<name>.keys.npy` and
`<name>.sum` (a checksum of both), written under temporary names and renamed, the checksum last:
a segment without a valid checksum file does not exist. Damaged segments are reported, removed
and recomputed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
import uuid
from pathlib import Path

import numpy as np

from poetslearn.backbone.split import ActivationCodec
from poetslearn.errors import PoetslearnError
from poetslearn.data.sources import KEY_BYTES

SEGMENT_ROWS = int(os.environ.get("POETSLEARN_SEGMENT_ROWS", "2048"))


def _digest(keys: bytes, rows_file: Path) -> bytes:
    digest = hashlib.blake2b(keys, digest_size=16)
    with open(rows_file, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
    return digest.digest()


class ActivationCache:
    """Encoded activations on disk, {content key: [*shape]}; `reader` gathers batches of them."""

    def __init__(self, root: Path, name: str, fingerprint: str, shape: tuple[int, ...],
                 codec: ActivationCodec, warn=print) -> None:
        self.dir = Path(root) / "activations" / f"{name}_{fingerprint[:16]}"
        self.shape, self.codec, self.warn = tuple(shape), codec, warn
        self.row_bytes = codec.bytes_per_image(self.shape)
        self._where: dict[bytes, tuple[Path, int]] = {}  # key -> (rows file, row)
        self._pending: list[tuple[list[bytes], np.ndarray]] = []
        self._load_index()

    def __contains__(self, key: bytes) -> bool:
        return key in self._where

    def _load_index(self) -> None:
        if not self.dir.is_dir():
            return
        for checksum in sorted(self.dir.glob("*.sum")):
            rows = checksum.with_suffix(".rows")
            keys_file = checksum.with_suffix(".keys.npy")
            try:
                keys = np.load(keys_file, allow_pickle=False)
                if keys.dtype != np.uint8 or keys.ndim != 2 or keys.shape[1] != KEY_BYTES:
                    raise ValueError(f"keys have shape {keys.shape}")
                if rows.stat().st_size != len(keys) * self.row_bytes:
                    raise ValueError(f"{rows.stat().st_size} bytes of rows for {len(keys)} keys")
                if checksum.read_bytes() != _digest(keys.tobytes(), rows):
                    raise ValueError("checksum mismatch")
            except (OSError, ValueError, EOFError) as e:
                self.warn(f"Activation cache segment {rows} is damaged ({e}); removing it, its "
                          f"activations will be recomputed.")
                for path in (checksum, rows, keys_file):
                    path.unlink(missing_ok=True)
                continue
            for row, key in enumerate(keys):
                self._where.setdefault(key.tobytes(), (rows, row))

    def check_room(self, count: int, log=print) -> None:
        """Says how much disk `count` more images take, and refuses before any work if the
        cache's filesystem does not have it."""
        need = count * self.row_bytes
        self.dir.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(self.dir).free
        log(f"Activation cache: {count:,} images x {self.row_bytes / 1024:,.0f} KB = "
            f"{need / 2**30:,.2f} GB to write in {self.dir} ({free / 2**30:,.1f} GB free).")
        if need > free:
            raise PoetslearnError(
                f"The activation cache needs {need / 2**30:,.2f} GB in {self.dir} but its disk has "
                f"{free / 2**30:,.2f} GB free. Free some space, or point --bottleneck_dir at a "
                f"larger disk.")

    def add(self, keys: list[bytes], activations: np.ndarray) -> None:
        self._pending.append((list(keys), self.codec.encode(activations)))
        if sum(len(k) for k, _ in self._pending) >= SEGMENT_ROWS:
            self.flush()

    def flush(self) -> None:
        """Writes the pending rows as one new segment (checksum last: then it exists)."""
        if not self._pending:
            return
        keys = np.frombuffer(b"".join(k for keys, _ in self._pending for k in keys),
                             np.uint8).reshape(-1, KEY_BYTES)
        rows = np.concatenate([r for _, r in self._pending]).reshape(len(keys), -1)
        self.dir.mkdir(parents=True, exist_ok=True)
        base = self.dir / f"seg-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:12]}"
        tmp = {suffix: base.with_name(f".tmp-{base.name}{suffix}")
               for suffix in (".rows", ".keys.npy", ".sum")}
        try:
            tmp[".rows"].write_bytes(rows.tobytes())
            with open(tmp[".keys.npy"], "wb") as f:
                np.save(f, keys)
            tmp[".sum"].write_bytes(_digest(keys.tobytes(), tmp[".rows"]))
            for suffix in (".rows", ".keys.npy", ".sum"):  # the checksum last: it commits
                os.replace(tmp[suffix], base.with_suffix(suffix))
        finally:
            for path in tmp.values():
                path.unlink(missing_ok=True)
        self._pending = []
        for row, key in enumerate(keys):
            self._where.setdefault(key.tobytes(), (base.with_suffix(".rows"), row))

    def reader(self, keys: list[bytes]) -> ActivationReader:
        missing = sum(1 for key in keys if key not in self._where)
        if missing:
            raise ValueError(f"{missing} of the keys have no cached activations")
        return ActivationReader([self._where[key] for key in keys], self.shape, self.codec,
                                self.row_bytes)


class ActivationReader:
    """Reads the activations of a fixed list of images (one split), any rows at a time."""

    def __init__(self, places: list[tuple[Path, int]], shape: tuple[int, ...],
                 codec: ActivationCodec, row_bytes: int) -> None:
        self.places, self.shape, self.codec, self.row_bytes = places, shape, codec, row_bytes
        self._files: dict[Path, object] = {}

    def __len__(self) -> int:
        return len(self.places)

    def read(self, indices) -> np.ndarray:
        """[len(indices), *shape] float32, decoded."""
        out = np.empty((len(indices), self.row_bytes), np.uint8)
        for k, i in enumerate(indices):
            path, row = self.places[int(i)]
            f = self._files.get(path) or self._files.setdefault(path, open(path, "rb"))
            f.seek(row * self.row_bytes)
            out[k] = np.frombuffer(f.read(self.row_bytes), np.uint8)
        stored = out.view(self.codec.dtype).reshape(len(indices), *self.shape)
        return self.codec.decode(stored)

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files = {}
