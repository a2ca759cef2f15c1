"""Shared fixtures: tiny image folders and a tiny CIFAR-10, made on the fly; the real data in
../shared (or $POETSLEARN_SHARED_DIR)."""

from __future__ import annotations

import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]

# Solid colours, one per class; small noise so no two images are byte-identical.
COLOURS = {"red": (220, 30, 30), "green": (30, 200, 50), "blue": (40, 40, 230)}


def shared_dir() -> Path:
    return Path(os.environ.get("POETSLEARN_SHARED_DIR", REPO_ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def shared() -> Path:
    """The genuine weights and CIFAR-10. Without them a test that needs them is skipped, with
    the reason, on a developer's machine; in CI (CI set) it fails: CI must run everything."""
    path = shared_dir()
    if not (path / "README.md").is_file():
        message = (f"needs the shared data folder {path} (genuine weights, CIFAR-10); set "
                   f"POETSLEARN_SHARED_DIR")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session", autouse=True)
def own_cache_dir(tmp_path_factory):
    """poetslearn's own cache (imported weights, the file-key memo) in a folder of the test
    session, unless the caller chose one: tests leave nothing in the user's home."""
    if "POETSLEARN_CACHE_DIR" in os.environ:
        yield
        return
    os.environ["POETSLEARN_CACHE_DIR"] = str(tmp_path_factory.mktemp("poetslearn_cache"))
    yield
    os.environ.pop("POETSLEARN_CACHE_DIR", None)


def noisy_colour(colour, size=(40, 48), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.integers(-12, 13, (*size, 3))
    return np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)


def make_colour_folder(root: Path, per_class: int = 10, colours=COLOURS) -> Path:
    """root/<colour>/img_<i>.<ext>, cycling through formats; one PNG is named .jpg on purpose."""
    formats = [("PNG", "png"), ("JPEG", "jpg"), ("BMP", "bmp"), ("PNG", "jpg")]
    for c, (name, colour) in enumerate(colours.items()):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            fmt, ext = formats[i % len(formats)]
            Image.fromarray(noisy_colour(colour, seed=100 * c + i)).save(
                folder / f"img_{i}.{ext}", format=fmt)
    return root


@pytest.fixture
def colour_dir(tmp_path: Path) -> Path:
    return make_colour_folder(tmp_path / "colours")


CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                 "truck"]


def make_tiny_cifar(folder: Path, per_batch: int = 20, test_size: int = 30) -> Path:
    """cifar-10-python.tar.gz in the official layout; class c is a solid colour (c * 25, ...)."""
    rng = np.random.default_rng(0)

    def batch(n: int, offset: int) -> dict:
        labels = [(offset + i) % 10 for i in range(n)]
        rows = []
        for label in labels:
            base = np.array([label * 25, 255 - label * 25, (label * 70) % 256])
            img = np.clip(base + rng.integers(-5, 6, (32, 32, 3)), 0, 255).astype(np.uint8)
            rows.append(img.transpose(2, 0, 1).reshape(-1))  # R plane, G plane, B plane
        return {b"data": np.stack(rows), b"labels": labels,
                b"filenames": [f"img_{offset + i}.png".encode() for i in range(n)],
                b"batch_label": b"tiny"}

    members = {f"data_batch_{k}": batch(per_batch, k * per_batch) for k in range(1, 6)}
    members["test_batch"] = batch(test_size, 7)
    members["batches.meta"] = {b"label_names": [n.encode() for n in CIFAR_CLASSES]}
    return write_cifar_archive(folder, members)


def write_cifar_archive(folder: Path, members: dict[str, dict]) -> Path:
    """folder/cifar-10-python.tar.gz holding each member pickled, in the official layout."""
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(folder / "cifar-10-python.tar.gz", "w:gz") as tar:
        for name, obj in members.items():
            data = pickle.dumps(obj)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return folder


@pytest.fixture
def tiny_cifar(tmp_path: Path) -> Path:
    return make_tiny_cifar(tmp_path / "cifar")
