"""Image sources and labelled splits: what the bottleneck code, `evaluate` and plots read.

An image source names, keys and loads its images; every kind (pixels in memory, image files,
distorted copies, a subset of another source, several sources one after another) answers the same
few calls, so no caller asks which kind it holds. A split pairs a source with integer labels; a
dataset is class names plus the train, validation and test splits.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from poetslearn.data.images import load_image, read_image_file
from poetslearn.data.parallel import DECODERS, load_each
from poetslearn.data.resize import prepare_resize
from poetslearn.errors import DataError

SPLITS = ("train", "validation", "test")
KEY_BYTES = 16  # blake2b digest size of an image's content key


def content_key(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=KEY_BYTES).digest()


class ImageSource(Protocol):
    names: list[str]  # one per image, for messages and lists of mistakes

    def __len__(self) -> int: ...

    def keys(self) -> list[bytes]:
        """A content key per image: equal keys, equal pixels (the bottleneck cache's index)."""

    def load_batch(self, indices: list[int], size: int) -> tuple[np.ndarray, dict[int, str]]:
        """[n_ok, h, w, 3] float32 pixels 0..255 for the images that loaded, in order, and
        {index: reason} for those that failed. Images larger than `size` come out at `size`."""

    def read_original(self, index: int, min_side: int | None = None) -> np.ndarray:
        """[H, W, 3] uint8 pixels of one image as stored (for pictures of it); JPEGs may be
        decoded at a reduced scale keeping both sides at least `min_side`."""

    def subset(self, indices: list[int]) -> ImageSource:
        """The images at `indices`, in that order, as a source of their own."""

    def file_path(self, index: int) -> Path | None:
        """The image's file, or None for an image held in memory."""


class ArrayImages:
    """Images held in memory as [N, H, W, 3] uint8 (CIFAR-10); the network resizes them itself."""

    def __init__(self, pixels: np.ndarray, names: list[str]) -> None:
        self.pixels, self.names = pixels, names
        self._keys: list[bytes] | None = None

    def __len__(self) -> int:
        return len(self.pixels)

    def keys(self) -> list[bytes]:
        if self._keys is None:
            self._keys = [content_key(row.tobytes()) for row in self.pixels]
        return self._keys

    def load_batch(self, indices: list[int], size: int) -> tuple[np.ndarray, dict[int, str]]:
        return self.pixels[np.asarray(indices, dtype=np.int64)].astype(np.float32), {}

    def read_original(self, index: int, min_side: int | None = None) -> np.ndarray:
        return self.pixels[index]

    def file_path(self, index: int) -> Path | None:
        return None

    def subset(self, indices: list[int]) -> ArrayImages:
        return ArrayImages(
            self.pixels[np.asarray(indices, dtype=np.int64)], [self.names[i] for i in indices]
        )


class FileImages:
    """Image files, keyed by a hash of their bytes, decoded and resized by several threads.

    `dataset_size` is the number of files in the whole data set a split was cut from (its own
    length where not given): a data set that large is resized with the compiled filter
    (`resize.prepare_resize`), whichever of its splits is read first."""

    def __init__(
        self,
        paths: list[Path],
        names: list[str],
        keys: list[bytes],
        workers: int | None = None,
        dataset_size: int | None = None,
    ) -> None:
        self.paths, self.names, self._keys = paths, names, keys
        self.workers = workers or DECODERS
        self.dataset_size = len(paths) if dataset_size is None else dataset_size

    def __len__(self) -> int:
        return len(self.paths)

    def keys(self) -> list[bytes]:
        return self._keys

    def load_batch(self, indices: list[int], size: int) -> tuple[np.ndarray, dict[int, str]]:
        prepare_resize(self.dataset_size)
        ok, failed = load_each(lambda i: load_image(self.paths[i], size), indices, self.workers)
        batch = np.stack(ok) if ok else np.zeros((0, size, size, 3), np.float32)
        return batch, {indices[position]: reason for position, reason in failed.items()}

    def read_original(self, index: int, min_side: int | None = None) -> np.ndarray:
        return read_image_file(self.paths[index], min_side)

    def file_path(self, index: int) -> Path | None:
        return self.paths[index]

    def subset(self, indices: list[int]) -> FileImages:
        return FileImages(
            [self.paths[i] for i in indices],
            [self.names[i] for i in indices],
            [self._keys[i] for i in indices],
            self.workers,
            self.dataset_size,
        )


class SubsetImages:
    """Some images of any other source, by index (distorted copies, concatenations)."""

    def __init__(self, source: ImageSource, indices: list[int]) -> None:
        self.source, self.indices = source, list(indices)
        self.names = [source.names[i] for i in self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def keys(self) -> list[bytes]:
        keys = self.source.keys()
        return [keys[i] for i in self.indices]

    def load_batch(self, indices: list[int], size: int) -> tuple[np.ndarray, dict[int, str]]:
        pixels, failures = self.source.load_batch([self.indices[i] for i in indices], size)
        back = {self.indices[i]: i for i in indices}
        return pixels, {back[i]: reason for i, reason in failures.items()}

    def read_original(self, index: int, min_side: int | None = None) -> np.ndarray:
        return self.source.read_original(self.indices[index], min_side)

    def file_path(self, index: int) -> Path | None:
        return self.source.file_path(self.indices[index])

    def subset(self, indices: list[int]) -> ImageSource:
        return self.source.subset([self.indices[i] for i in indices])


class ConcatenatedImages:
    """Several sources one after another, as one (evaluate's "all" split)."""

    def __init__(self, sources: list[ImageSource]) -> None:
        self.sources = list(sources)
        self.starts = np.cumsum([0] + [len(s) for s in self.sources])
        self.names = [name for s in self.sources for name in s.names]

    def __len__(self) -> int:
        return int(self.starts[-1])

    def keys(self) -> list[bytes]:
        return [key for s in self.sources for key in s.keys()]

    def _locate(self, index: int) -> tuple[int, int]:
        part = int(np.searchsorted(self.starts, index, side="right")) - 1
        return part, index - int(self.starts[part])

    def load_batch(self, indices: list[int], size: int) -> tuple[np.ndarray, dict[int, str]]:
        """Loads runs of consecutive indices from the same part together, in order."""
        batches, failures, run = [], {}, []
        for i in indices + [None]:
            if run and (i is None or self._locate(i)[0] != self._locate(run[0])[0]):
                part = self._locate(run[0])[0]
                pixels, failed = self.sources[part].load_batch(
                    [self._locate(j)[1] for j in run], size
                )
                batches.append(pixels)
                failures.update(
                    {j: failed[self._locate(j)[1]] for j in run if self._locate(j)[1] in failed}
                )
                run = []
            if i is not None:
                run.append(i)
        if not batches:
            return np.zeros((0, size, size, 3), np.float32), {}
        return np.concatenate(batches), failures

    def read_original(self, index: int, min_side: int | None = None) -> np.ndarray:
        part, row = self._locate(index)
        return self.sources[part].read_original(row, min_side)

    def file_path(self, index: int) -> Path | None:
        part, row = self._locate(index)
        return self.sources[part].file_path(row)

    def subset(self, indices: list[int]) -> SubsetImages:
        return SubsetImages(self, indices)


@dataclass
class Split:
    images: ImageSource
    # [N] int64 class indices; for a multi-label data set, [N, labels] uint8 0/1 targets
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, keep: np.ndarray) -> Split:
        """The split without the images whose entry in the boolean mask `keep` is false."""
        if keep.all():
            return self
        idx = np.flatnonzero(keep)
        return Split(self.images.subset(idx.tolist()), self.labels[idx])

    @staticmethod
    def concatenate(splits: list[Split]) -> Split:
        return Split(
            ConcatenatedImages([s.images for s in splits]),
            np.concatenate([s.labels for s in splits]),
        )


@dataclass
class Dataset:
    name: str
    class_names: list[str]
    splits: dict[str, Split]
    source: str  # what was read, for the output and the metadata file
    # Test images 0..exact_test_rows-1 are bit-exact in every copy of the data set, so their
    # accuracy is reported apart (CIFAR-10: see ../shared/README.md); None: nothing to add.
    exact_test_rows: int | None = None
    multi_label: bool = False  # an image may have any number of labels (a CSV's rows)

    def summary(self) -> str:
        counts = ", ".join(f"{s} {len(self.splits[s]):,}" for s in SPLITS)
        return f"{self.name}: {len(self.class_names)} classes; {counts}"

    def labels_missing_from(self, split_name: str, splits: dict[str, Split] | None = None):
        """The class names no image of that split has (as a label, if multi-label)."""
        labels = (splits or self.splits)[split_name].labels
        present = (
            set(np.flatnonzero(labels.any(axis=0)).tolist())
            if self.multi_label
            else set(labels.tolist())
        )
        return [c for i, c in enumerate(self.class_names) if i not in present]

    def check_every_class_present(self, splits: dict[str, Split]) -> None:
        """After unreadable images were dropped, each split must still hold every class (a
        multi-label set: the training split; its checks on the others are the loader's)."""
        for name in ("train",) if self.multi_label else splits:
            empty = self.labels_missing_from(name, splits)
            if empty:
                raise DataError(
                    f"After skipping unreadable images, the {name} split has no "
                    f"image of class(es) {', '.join(empty)}; add readable images to "
                    f"them."
                )


def calibration_images(split, size: int, count: int = 100) -> np.ndarray:
    """Up to `count` images of `split`, evenly spread, as loaded (at most `size`): the one source
    of int8 calibration images, for the engine and the `.tflite` export alike."""
    indices = list(range(0, len(split), max(1, len(split) // count)))[:count]
    pixels, _ = split.images.load_batch(indices, size)
    return pixels
