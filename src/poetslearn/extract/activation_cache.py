"""The activation cache: what the frozen part of the network gives for each image, stored once.

Fine-tuning the top K blocks trains on the activations where the frozen part ends (for
MobileNet 0.50/224 and K=2, 14x14x256 values an image), so they are computed once and kept, like
the bottlenecks and in the same `ShardStore`: content-addressed (a key per image), in a folder
named after the extractor's fingerprint and the cut, checked by a checksum, written once and
reused by every later run that cuts there. Unlike bottlenecks they are too large to hold in
memory (3 GB for CIFAR-10 at that cut, in one byte per value), so they are written in segments of
raw rows and read back a batch at a time, never all at once; opening the cache reads only keys.

A segment is three files: `<name>.rows` (the encoded rows), `<name>.keys.npy` and `<name>.sum`
(a checksum of both), the checksum renamed into place last: a segment without a checksum file
does not exist. A segment's checksum is verified before its rows are first used; a damaged one is
reported, removed and recomputed.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np

from poetslearn.backbone.cut import ActivationCodec
from poetslearn.context import warn_on_stderr
from poetslearn.errors import PoetslearnError
from poetslearn.extract.shard_store import ShardStore, checksum

SEGMENT_ROWS = int(os.environ.get("POETSLEARN_SEGMENT_ROWS", "2048"))


class RawSegments:
    """Rows as raw bytes (`.rows`), keys as `.npy`, and a `.sum` that commits the segment."""

    pattern = "*.sum"
    contents = "activations"

    def __init__(self, row_bytes: int) -> None:
        self.row_bytes = row_bytes

    def describe(self, shard: Path) -> str:
        return f"Activation cache segment {self.rows_file(shard)}"

    def new_name(self, stem: str) -> str:
        return f"seg-{stem}.sum"

    def files(self, shard: Path) -> list[Path]:
        return [shard.with_suffix(".rows"), shard.with_suffix(".keys.npy"), shard]

    def rows_file(self, shard: Path) -> Path:
        return shard.with_suffix(".rows")

    def read_keys(self, shard: Path) -> np.ndarray:
        keys = np.load(shard.with_suffix(".keys.npy"), allow_pickle=False)
        size = self.rows_file(shard).stat().st_size  # a size, not a read
        if size != len(keys) * self.row_bytes:
            raise ValueError(f"{size} bytes of rows for {len(keys)} keys")
        return keys

    def verify(self, shard: Path) -> None:
        keys = np.load(shard.with_suffix(".keys.npy"), allow_pickle=False)
        with open(self.rows_file(shard), "rb") as f:
            digest = checksum(keys.tobytes(), iter(lambda: f.read(1 << 22), b""))
        if shard.read_bytes() != digest:
            raise ValueError("checksum mismatch")

    def read_rows(self, shard: Path) -> np.ndarray:
        self.verify(shard)
        return np.fromfile(self.rows_file(shard), np.uint8).reshape(-1, self.row_bytes)

    def encode(self, keys: np.ndarray, rows: np.ndarray) -> list[bytes]:
        data = np.ascontiguousarray(rows).tobytes()
        keys_npy = io.BytesIO()
        np.save(keys_npy, keys)
        return [data, keys_npy.getvalue(), checksum(keys.tobytes(), [data])]


class ActivationCache:
    """Encoded activations on disk, {content key: [*shape]}; `reader` gathers batches of them."""

    def __init__(
        self,
        root: Path,
        name: str,
        fingerprint: str,
        shape: tuple[int, ...],
        codec: ActivationCodec,
        warn=warn_on_stderr,
    ) -> None:
        self.dir = Path(root) / "activations" / f"{name}_{fingerprint[:16]}"
        self.shape, self.codec = tuple(shape), codec
        self.row_bytes = codec.bytes_per_image(self.shape)
        self.layout = RawSegments(self.row_bytes)
        self.store = ShardStore(self.dir, self.layout, SEGMENT_ROWS, warn)

    def __contains__(self, key: bytes) -> bool:
        return key in self.store

    def check_room(self, count: int, log=print) -> None:
        """Says how much disk `count` more images take, and refuses before any work if the
        cache's filesystem does not have it."""
        need = count * self.row_bytes
        self.dir.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(self.dir).free
        log(
            f"Activation cache: {count:,} images x {self.row_bytes / 1024:,.0f} KB = "
            f"{need / 2**30:,.2f} GB to write in {self.dir} ({free / 2**30:,.1f} GB free)."
        )
        if need > free:
            raise PoetslearnError(
                f"The activation cache needs {need / 2**30:,.2f} GB in {self.dir} but its disk has "
                f"{free / 2**30:,.2f} GB free. Free some space, or point --bottleneck_dir at a "
                f"larger disk."
            )

    def add(self, keys: list[bytes], activations: np.ndarray) -> None:
        self.store.add(keys, self.codec.encode(activations).reshape(len(keys), -1))

    def flush(self) -> None:
        self.store.flush()

    def verify(self, keys: list[bytes]) -> int:
        """Verifies the segments holding `keys` before their first use; returns how many were
        damaged (removed: their activations are missing again)."""
        return self.store.verify(keys)

    def reader(self, keys: list[bytes]) -> ActivationReader:
        places = self.store.locate(keys)
        missing = sum(1 for where in places if where is None)
        if missing:
            raise ValueError(f"{missing} of the keys have no cached activations")
        return ActivationReader(
            [(self.layout.rows_file(shard), row) for shard, row in places],
            self.shape,
            self.codec,
            self.row_bytes,
        )


class ActivationReader:
    """Reads the activations of a fixed list of images (one split), any rows at a time."""

    def __init__(
        self,
        places: list[tuple[Path, int]],
        shape: tuple[int, ...],
        codec: ActivationCodec,
        row_bytes: int,
    ) -> None:
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
