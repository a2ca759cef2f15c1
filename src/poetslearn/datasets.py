"""Datasets for `retrain`: CIFAR-10 and folders of class sub-folders, split deterministically.

A dataset is a list of class names plus three splits; each split pairs an image source (which can
name, key and load its images) with integer labels. The bottleneck code only sees image sources,
so it does not care where pixels come from.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import re
import tarfile
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from poetslearn.download import fetch_file
from poetslearn.errors import DataError, ImageError
from poetslearn.images import decode_image, load_image
from poetslearn.progress import progress

SPLITS = ("train", "validation", "test")
KEY_BYTES = 16  # blake2b digest size of an image's content key


def content_key(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=KEY_BYTES).digest()


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
        """Returns [n, H, W, 3] float32 pixels in 0..255 and {} (array images never fail)."""
        return self.pixels[np.asarray(indices, dtype=np.int64)].astype(np.float32), {}


class FileImages:
    """Image files, keyed by a hash of their bytes, decoded and resized in worker threads."""

    def __init__(self, paths: list[Path], names: list[str], keys: list[bytes],
                 workers: int | None = None) -> None:
        self.paths, self.names, self._keys = paths, names, keys
        self.workers = workers or min(8, (os.cpu_count() or 1) + 2)

    def __len__(self) -> int:
        return len(self.paths)

    def keys(self) -> list[bytes]:
        return self._keys

    def load_batch(self, indices: list[int], size: int) -> tuple[np.ndarray, dict[int, str]]:
        """Returns [n_ok, size, size, 3] float32 and {index: reason} for images that failed."""

        def load(i: int):
            try:
                return load_image(self.paths[i], size)
            except ImageError as e:
                return e

        with ThreadPoolExecutor(self.workers) as pool:
            results = list(pool.map(load, indices))
        failures = {i: str(r) for i, r in zip(indices, results) if isinstance(r, ImageError)}
        ok = [r for r in results if not isinstance(r, ImageError)]
        batch = np.stack(ok) if ok else np.zeros((0, size, size, 3), np.float32)
        return batch, failures


class IndexedImages:
    """Some images of another source, by index (for sources other than arrays and files)."""

    def __init__(self, source, indices: list[int]) -> None:
        self.source, self.indices = source, indices
        self.names = [source.names[i] for i in indices]

    def __len__(self) -> int:
        return len(self.indices)

    def keys(self) -> list[bytes]:
        keys = self.source.keys()
        return [keys[i] for i in self.indices]

    def load_batch(self, indices: list[int], size: int) -> tuple[np.ndarray, dict[int, str]]:
        pixels, failures = self.source.load_batch([self.indices[i] for i in indices], size)
        back = {self.indices[i]: i for i in indices}
        return pixels, {back[i]: reason for i, reason in failures.items()}


@dataclass
class Split:
    images: ArrayImages | FileImages
    labels: np.ndarray  # [N] int64 class indices

    def __len__(self) -> int:
        return len(self.labels)

    def concat(self, other: "Split") -> "Split":
        """This split followed by `other` (same kind of images)."""
        a, b = self.images, other.images
        if isinstance(a, ArrayImages):
            images = ArrayImages(np.concatenate([a.pixels, b.pixels]), a.names + b.names)
        else:
            images = FileImages(a.paths + b.paths, a.names + b.names, a.keys() + b.keys(),
                                a.workers)
        return Split(images, np.concatenate([self.labels, other.labels]))

    def subset(self, keep: np.ndarray) -> "Split":
        """The split without the images whose entry in the boolean mask `keep` is false."""
        if keep.all():
            return self
        idx = np.flatnonzero(keep)
        images = self.images
        if isinstance(images, ArrayImages):
            new = ArrayImages(images.pixels[idx], [images.names[i] for i in idx])
        elif isinstance(images, FileImages):
            new = FileImages([images.paths[i] for i in idx], [images.names[i] for i in idx],
                             [images.keys()[i] for i in idx], images.workers)
        else:
            new = IndexedImages(images, idx.tolist())
        return Split(new, self.labels[idx])


@dataclass
class Dataset:
    name: str
    class_names: list[str]
    splits: dict[str, Split]
    source: str  # what was read, for the output and the metadata file

    def summary(self) -> str:
        counts = ", ".join(f"{s} {len(self.splits[s]):,}" for s in SPLITS)
        return f"{self.name}: {len(self.class_names)} classes; {counts}"


# ----------------------------------------------------------------------------------------------
# CIFAR-10

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10_FOLDER = "cifar-10-batches-py"
_CIFAR10_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
_CIFAR10_TEST = "test_batch"
_CIFAR10_META = "batches.meta"


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """CIFAR-10 batches are pickles; refuse anything but numpy arrays and plain containers in them."""

    _ALLOWED = {"_reconstruct", "ndarray", "dtype", "scalar", "_frombuffer"}

    def find_class(self, module: str, name: str):
        if module.split(".")[0] == "numpy" and name in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"unexpected object {module}.{name}")


def _unpickle(data: bytes, where: str) -> dict:
    try:
        obj = _NumpyOnlyUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as e:  # any failure means "not a CIFAR-10 pickle"
        raise DataError(f"{where} is not a CIFAR-10 python batch ({type(e).__name__}: {e}). "
                        f"Download a fresh cifar-10-python.tar.gz.") from e
    if not isinstance(obj, dict):
        raise DataError(f"{where} is not a CIFAR-10 python batch (holds a {type(obj).__name__}, "
                        f"expected a dict). Download a fresh cifar-10-python.tar.gz.")
    return obj


def _read_cifar10_members(data_dir: Path, download: bool, show_progress: bool
                          ) -> tuple[dict[str, bytes], str]:
    """The raw bytes of the 7 batch files, from the extracted folder or the tarball."""
    wanted = _CIFAR10_TRAIN + [_CIFAR10_TEST, _CIFAR10_META]
    folder = data_dir / CIFAR10_FOLDER
    if folder.is_dir():
        missing = [n for n in wanted if not (folder / n).is_file()]
        if missing:
            raise DataError(f"{folder} lacks {', '.join(missing)}. Delete the folder to use "
                            f"{CIFAR10_ARCHIVE} instead, or extract the archive again.")
        return {n: (folder / n).read_bytes() for n in wanted}, str(folder)
    archive = data_dir / CIFAR10_ARCHIVE
    if not archive.is_file():
        if not download:
            raise DataError(f"CIFAR-10 was not found in {data_dir} (expected {CIFAR10_ARCHIVE} or "
                            f"{CIFAR10_FOLDER}/). Point --data_dir at a folder holding it.")
        # Only what we download ourselves must match the official md5; a local copy is trusted.
        fetch_file(CIFAR10_URL, archive, md5=CIFAR10_MD5, show_progress=show_progress)
    members: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                base = member.name.rsplit("/", 1)[-1]
                if member.isfile() and base in wanted and member.name.startswith(CIFAR10_FOLDER):
                    members[base] = tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DataError(f"{archive} is damaged or truncated ({e}). Delete it and download "
                        f"cifar-10-python.tar.gz again.") from e
    missing = [n for n in wanted if n not in members]
    if missing:
        raise DataError(f"{archive} does not hold {CIFAR10_FOLDER}/{', '.join(missing)}; it is not "
                        f"the CIFAR-10 python archive. Download cifar-10-python.tar.gz.")
    return members, str(archive)


def _cifar10_batch(raw: bytes, where: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    batch = _unpickle(raw, where)
    try:
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in batch[b"filenames"]]
    except KeyError as e:
        raise DataError(f"{where} lacks the key {e.args[0]!r} of a CIFAR-10 batch.") from e
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise DataError(f"{where} holds data of shape {data.shape} and {len(labels)} labels; "
                        f"a CIFAR-10 batch has [N, 3072] uint8 and N labels.")
    # Rows are the R plane, then G, then B (32x32 each): [N, 3072] -> [N, 32, 32, 3].
    pixels = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(pixels), labels, names


def load_cifar10(data_dir: Path, validation_percentage: float = 10.0, download: bool = True,
                 show_progress: bool = True) -> Dataset:
    """CIFAR-10's official 50,000/10,000 split; validation is the last part of the training set."""
    members, source = _read_cifar10_members(Path(data_dir), download, show_progress)
    meta = _unpickle(members[_CIFAR10_META], f"{source}:{_CIFAR10_META}")
    try:
        class_names = [n.decode() for n in meta[b"label_names"]]
    except KeyError:
        raise DataError(f"{source}:{_CIFAR10_META} lacks label_names; not CIFAR-10.") from None
    parts = [_cifar10_batch(members[n], f"{source}:{n}") for n in _CIFAR10_TRAIN]
    train_pixels = np.concatenate([p[0] for p in parts])
    train_labels = np.concatenate([p[1] for p in parts])
    train_names = [n for p in parts for n in p[2]]
    test_pixels, test_labels, test_names = _cifar10_batch(members[_CIFAR10_TEST],
                                                          f"{source}:{_CIFAR10_TEST}")
    for labels, what in ((train_labels, "training"), (test_labels, "test")):
        if labels.min() < 0 or labels.max() >= len(class_names):
            raise DataError(f"{source}: {what} labels fall outside 0..{len(class_names) - 1}.")

    # The last `validation_percentage` of the training rows, a fixed choice that every tool
    # reporting "validation = last 5,000 training images" shares; each class must appear in it.
    n_val = int(round(len(train_labels) * validation_percentage / 100.0))
    n_train = len(train_labels) - n_val
    missing = sorted(set(range(len(class_names))) - set(train_labels[n_train:].tolist()))
    if missing:
        raise DataError(f"--validation_percentage {validation_percentage} leaves class(es) "
                        f"{', '.join(class_names[i] for i in missing)} without a validation "
                        f"image; use a larger percentage.")
    splits = {
        "train": Split(ArrayImages(train_pixels[:n_train], train_names[:n_train]),
                       train_labels[:n_train]),
        "validation": Split(ArrayImages(train_pixels[n_train:], train_names[n_train:]),
                            train_labels[n_train:]),
        "test": Split(ArrayImages(test_pixels, test_names), test_labels),
    }
    return Dataset("CIFAR-10", class_names, splits, source)


# ----------------------------------------------------------------------------------------------
# Folders of class sub-folders

MAX_NUM_IMAGES_PER_CLASS = 2 ** 27 - 1  # the codelab's constant, kept so splits match its own


def normalise_label(folder_name: str) -> str:
    """The codelab's label rule: lower case, runs of other characters become one space.

    Letters and digits of any script are kept, so non-ASCII class names survive.
    """
    return re.sub(r"[\W_]+", " ", folder_name.lower()).strip()


def split_of(relative_path: str, validation_percentage: float, testing_percentage: float) -> str:
    """Which split an image belongs to, from a stable hash of its path below the image folder.

    As in the codelab, anything from `_nohash_` on is ignored, so `a_nohash_1.jpg` and
    `a_nohash_2.jpg` stay together. Adding or removing other images never moves this one.
    """
    hash_name = re.sub(r"_nohash_.*$", "", relative_path)
    value = int(hashlib.sha1(hash_name.encode("utf-8")).hexdigest(), 16)
    percentage = (value % (MAX_NUM_IMAGES_PER_CLASS + 1)) * (100.0 / MAX_NUM_IMAGES_PER_CLASS)
    if percentage < validation_percentage:
        return "validation"
    if percentage < validation_percentage + testing_percentage:
        return "test"
    return "train"


def _list_files(class_dir: Path) -> list[Path]:
    """Every non-hidden file below `class_dir`, sorted; symlinked folders are not followed."""
    found = []
    for root, dirs, files in os.walk(class_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(Path(root) / f for f in sorted(files) if not f.startswith("."))
    return found


def _scan_file(path: Path, decode: bool = False) -> bytes | str:
    """The content key of an image file, or the reason it is not a usable image.

    Normally only the header is read (cheap; by content, not extension); with `decode`, the
    whole image is decoded, which also finds truncated and corrupt files.
    """
    from PIL import Image

    try:
        data = path.read_bytes()
    except OSError as e:
        return f"cannot be read ({e.strerror or e})"
    if not data:
        return "is empty (0 bytes)"
    try:
        if decode:
            decode_image(data, str(path))
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                Image.open(io.BytesIO(data))
    except ImageError as e:
        return f"cannot be decoded ({e})"
    except Exception as e:  # noqa: BLE001 - PIL's plugins raise many types on malformed files
        return f"is not an image ({type(e).__name__})"
    return content_key(data)


def load_image_folder(image_dir: Path, validation_percentage: float = 10.0,
                      testing_percentage: float = 10.0, show_progress: bool = True,
                      warn=print, strict: bool = False) -> Dataset:
    """One class per sub-folder of `image_dir`; every class gets train, validation and test images.

    Files that are not readable images are skipped with a warning each; with `strict`, every
    image is decoded up front and any bad file is an error instead. Raises DataError, before any
    expensive work, when fewer than two classes exist or a class has too few images to give each
    split one.
    """
    image_dir = Path(image_dir)
    if not image_dir.is_dir():
        raise DataError(f"--image_dir {image_dir} is not a folder.")
    class_dirs = sorted(d for d in image_dir.iterdir() if d.is_dir() and not d.name.startswith("."))
    labels_seen: dict[str, Path] = {}
    for d in class_dirs:
        label = normalise_label(d.name)
        if not label:
            raise DataError(f"Folder {d} gives an empty label; rename it to contain a letter or "
                            f"digit.")
        if label in labels_seen:
            raise DataError(f"Folders {labels_seen[label]} and {d} both give the label {label!r}; "
                            f"rename one of them.")
        labels_seen[label] = d
    if len(class_dirs) < 2:
        raise DataError(f"{image_dir} has {len(class_dirs)} class folder(s); a classifier needs at "
                        f"least 2 (one sub-folder of images per class).")

    files = [(ci, p) for ci, d in enumerate(class_dirs) for p in _list_files(d)]
    with ThreadPoolExecutor(8) as pool, progress(len(files), "Scanning images", "file",
                                                  show_progress) as bar:
        def scan(item):
            result = _scan_file(item[1], decode=strict)
            bar.update(1)
            return result

        scanned = list(pool.map(scan, files))
    bad = [f"{path}: it {result}" for (_, path), result in zip(files, scanned)
           if isinstance(result, str)]
    if bad and strict:
        listing = "\n  ".join(bad[:20]) + (f"\n  ... and {len(bad) - 20} more" if len(bad) > 20
                                           else "")
        raise DataError(f"--strict: {len(bad)} file(s) in {image_dir} are not readable images:"
                        f"\n  {listing}\nRemove or fix them, or run without --strict to skip them.")
    for line in bad:
        warn(f"Skipping {line}.")
    if bad:
        warn(f"Skipped {len(bad)} file(s) that are not readable images.")
    per_class: list[list[tuple[str, Path, bytes]]] = [[] for _ in class_dirs]
    for (ci, path), result in zip(files, scanned):
        if not isinstance(result, str):
            per_class[ci].append((path.relative_to(image_dir).as_posix(), path, result))

    chosen: dict[str, list[tuple[int, str, Path, bytes]]] = {s: [] for s in SPLITS}
    for ci, items in enumerate(per_class):
        if len(items) < 3:
            raise DataError(
                f"Class {normalise_label(class_dirs[ci].name)!r} "
                f"({class_dirs[ci]}) has {len(items)} image(s); at least 3 are needed so that "
                f"training, validation and testing each get one. Add images to it or remove it.")
        by_split = {s: [] for s in SPLITS}
        for rel, path, key in items:
            by_split[split_of(rel, validation_percentage, testing_percentage)].append(
                (rel, path, key))
        _give_every_split_one(by_split)
        for s in SPLITS:
            chosen[s].extend((ci, rel, path, key) for rel, path, key in by_split[s])

    splits = {}
    for s in SPLITS:
        entries = chosen[s]
        splits[s] = Split(
            FileImages([e[2] for e in entries], [e[1] for e in entries], [e[3] for e in entries]),
            np.array([e[0] for e in entries], dtype=np.int64))
    names = [normalise_label(d.name) for d in class_dirs]
    return Dataset(image_dir.name or str(image_dir), names, splits, str(image_dir))


def _give_every_split_one(by_split: dict[str, list]) -> None:
    """Moves images so that no split of a class is empty (tiny classes only).

    The image moved is the donor split's first by path, a deterministic choice; classes large
    enough for the hash to fill every split are never touched.
    """
    for needy in SPLITS:
        if by_split[needy]:
            continue
        donor = max(SPLITS, key=lambda s: len(by_split[s]))
        by_split[donor].sort()
        by_split[needy].append(by_split[donor].pop(0))
