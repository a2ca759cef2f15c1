"""CIFAR-10 from its official python archive (or the extracted folder), with a fixed split.

A local copy is trusted as it is (the one in ../shared is not byte-identical to the official
file); only what is downloaded here must match the official md5. The batches are pickles, read
with an unpickler that accepts nothing but numpy arrays and plain containers.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

from poetslearn.data.sources import ArrayImages, Dataset, Split
from poetslearn.download import fetch_file
from poetslearn.errors import DataError

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10_FOLDER = "cifar-10-batches-py"
_CIFAR10_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
_CIFAR10_TEST = "test_batch"
_CIFAR10_META = "batches.meta"


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """CIFAR-10 batches are pickles; refuse anything but numpy arrays and plain containers in
    them."""

    _ALLOWED = {"_reconstruct", "ndarray", "dtype", "scalar", "_frombuffer"}

    def find_class(self, module: str, name: str):
        if module.split(".")[0] == "numpy" and name in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"unexpected object {module}.{name}")


def _unpickle(data: bytes, where: str) -> dict:
    try:
        obj = _NumpyOnlyUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as e:  # any failure means "not a CIFAR-10 pickle"
        raise DataError(
            f"{where} is not a CIFAR-10 python batch ({type(e).__name__}: {e}). "
            f"Download a fresh cifar-10-python.tar.gz."
        ) from e
    if not isinstance(obj, dict):
        raise DataError(
            f"{where} is not a CIFAR-10 python batch (holds a {type(obj).__name__}, "
            f"expected a dict). Download a fresh cifar-10-python.tar.gz."
        )
    return obj


def _read_cifar10_members(
    data_dir: Path, download: bool, show_progress: bool
) -> tuple[dict[str, bytes], str]:
    """The raw bytes of the 7 batch files, from the extracted folder or the tarball."""
    wanted = _CIFAR10_TRAIN + [_CIFAR10_TEST, _CIFAR10_META]
    folder = data_dir / CIFAR10_FOLDER
    if folder.is_dir():
        missing = [n for n in wanted if not (folder / n).is_file()]
        if missing:
            raise DataError(
                f"{folder} lacks {', '.join(missing)}. Delete the folder to use "
                f"{CIFAR10_ARCHIVE} instead, or extract the archive again."
            )
        return {n: (folder / n).read_bytes() for n in wanted}, str(folder)
    archive = data_dir / CIFAR10_ARCHIVE
    if not archive.is_file():
        if not download:
            raise DataError(
                f"CIFAR-10 was not found in {data_dir} (expected {CIFAR10_ARCHIVE} or "
                f"{CIFAR10_FOLDER}/). Point --data_dir at a folder holding it."
            )
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
        raise DataError(
            f"{archive} is damaged or truncated ({e}). Delete it and download "
            f"cifar-10-python.tar.gz again."
        ) from e
    missing = [n for n in wanted if n not in members]
    if missing:
        raise DataError(
            f"{archive} does not hold {CIFAR10_FOLDER}/{', '.join(missing)}; it is not "
            f"the CIFAR-10 python archive. Download cifar-10-python.tar.gz."
        )
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
        raise DataError(
            f"{where} holds data of shape {data.shape} and {len(labels)} labels; "
            f"a CIFAR-10 batch has [N, 3072] uint8 and N labels."
        )
    # Rows are the R plane, then G, then B (32x32 each): [N, 3072] -> [N, 32, 32, 3].
    pixels = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(pixels), labels, names


def load_cifar10(
    data_dir: Path,
    validation_percentage: float = 10.0,
    download: bool = True,
    show_progress: bool = True,
) -> Dataset:
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
    test_pixels, test_labels, test_names = _cifar10_batch(
        members[_CIFAR10_TEST], f"{source}:{_CIFAR10_TEST}"
    )
    for labels, what in ((train_labels, "training"), (test_labels, "test")):
        if labels.min() < 0 or labels.max() >= len(class_names):
            raise DataError(f"{source}: {what} labels fall outside 0..{len(class_names) - 1}.")

    # The last `validation_percentage` of the training rows, a fixed choice that every tool
    # reporting "validation = last 5,000 training images" shares; each class must appear in it.
    n_val = int(round(len(train_labels) * validation_percentage / 100.0))
    n_train = len(train_labels) - n_val
    missing = sorted(set(range(len(class_names))) - set(train_labels[n_train:].tolist()))
    if missing:
        raise DataError(
            f"--validation_percentage {validation_percentage} leaves class(es) "
            f"{', '.join(class_names[i] for i in missing)} without a validation "
            f"image; use a larger percentage."
        )
    splits = {
        "train": Split(
            ArrayImages(train_pixels[:n_train], train_names[:n_train]), train_labels[:n_train]
        ),
        "validation": Split(
            ArrayImages(train_pixels[n_train:], train_names[n_train:]), train_labels[n_train:]
        ),
        "test": Split(ArrayImages(test_pixels, test_names), test_labels),
    }
    # Test rows 0-999 are the ones every CIFAR-10 copy agrees on bit for bit.
    return Dataset("CIFAR-10", class_names, splits, source, exact_test_rows=1000)
