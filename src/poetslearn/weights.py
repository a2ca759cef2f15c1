"""Finding pretrained weights and building the backbone that carries them.

`--weights imagenet` walks a list of places (the model folder, the Keras cache, then the
network) and stops at the first that has the weights; `--weights none` is random initialisation;
anything else is a path to a weights file. Every backbone gets a fingerprint of its weight
values, so caches keyed on it can never serve vectors computed with other weights.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from poetslearn.architectures import Architecture
from poetslearn.download import fetch_file, hash_file
from poetslearn.errors import DownloadError, WeightsError


@dataclass
class WeightsInfo:
    """Which weights a backbone carries, for the output, the metadata file and cache keys."""

    kind: str  # "imagenet", "random" or "file"
    description: str
    path: str | None = None
    sha256: str | None = None
    looked_in: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"kind": self.kind, "description": self.description, "path": self.path,
                "sha256": self.sha256}


def keras_cache_dir() -> Path:
    """Where Keras keeps downloaded application weights (`$KERAS_HOME/models`)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models"


# A finder looks for ImageNet weights for an architecture in one place. It returns a function
# that loads them into a freshly built backbone plus a description, or None if it has nothing;
# it appends what it looked at to `looked_in` so the final error can say where we searched.
Loader = Callable[[object], None]
Finder = Callable[[Architecture, Path, list[str]], tuple[Loader, WeightsInfo] | None]


def _keras_file_loader(path: Path) -> Loader:
    def load(model) -> None:
        try:
            model.load_weights(str(path))
        except Exception as e:  # h5py/Keras raise many types for a wrong or damaged file
            raise WeightsError(f"{path} could not be loaded into the network ({e}). It may be "
                               f"damaged or belong to another architecture; delete it.") from e

    return load


def _find_keras_file(arch: Architecture, model_dir: Path, looked_in: list[str]):
    """The official Keras weights file in the model folder or the Keras cache."""
    if arch.keras_weights is None:
        return None
    for folder in (model_dir, keras_cache_dir()):
        path = folder / arch.keras_weights.filename
        looked_in.append(str(path))
        if path.is_file():
            return _keras_file_loader(path), WeightsInfo(
                "imagenet", f"Keras ImageNet weights {path}", str(path), hash_file(path))
    return None


def _download_keras_file(arch: Architecture, model_dir: Path, looked_in: list[str]):
    """Downloads the official Keras weights into the Keras cache (hash-checked where published)."""
    if arch.keras_weights is None:
        return None
    spec = arch.keras_weights
    dest = keras_cache_dir() / spec.filename
    looked_in.append(spec.url)
    try:
        fetch_file(spec.url, dest, md5=spec.md5)
    except DownloadError as e:
        looked_in[-1] += f" (download failed: {e})"
        return None
    return _keras_file_loader(dest), WeightsInfo(
        "imagenet", f"Keras ImageNet weights {dest}", str(dest), hash_file(dest))


# Tried in order; importers of other formats (such as the codelab's frozen graphs) go first.
IMAGENET_FINDERS: list[Finder] = [_find_keras_file, _download_keras_file]


def resolve_weights(arch: Architecture, weights: str, model_dir: Path
                    ) -> tuple[Loader | None, WeightsInfo]:
    """Decides where the backbone's weights come from, without building anything yet."""
    if weights == "none":
        return None, WeightsInfo("random", "random initialisation (no pretrained weights: "
                                 "for quick tests only, accuracy will be poor)")
    if weights == "imagenet":
        if arch.for_tests:
            raise WeightsError(f"{arch.name} is a test architecture without ImageNet weights; "
                               f"use --weights none.")
        looked_in: list[str] = []
        for finder in IMAGENET_FINDERS:
            found = finder(arch, Path(model_dir), looked_in)
            if found is not None:
                found[1].looked_in = looked_in
                return found
        places = "\n  ".join(looked_in)
        raise WeightsError(
            f"No ImageNet weights for {arch.name} were found. Looked in:\n  {places}\n"
            f"Fix: run once on a machine with internet access (the download is cached), copy "
            f"the codelab's tf_files/models/ folder and pass it as --model_dir, or give a weights "
            f"file with --weights PATH.")
    path = Path(weights)
    if not path.is_file():
        raise WeightsError(f"--weights {weights}: no such file. Expected 'imagenet', 'none' or "
                           f"the path of a weights file.")
    return _keras_file_loader(path), WeightsInfo("file", f"weights file {path}", str(path),
                                                 hash_file(path))


def weights_fingerprint(model) -> str:
    """sha256 over every weight array of `model`, in order: equal iff the weights are equal."""
    digest = hashlib.sha256()
    for w in model.weights:
        value = w.numpy()
        digest.update(str(value.shape).encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def build_backbone(arch: Architecture, weights: str = "imagenet", model_dir: Path = Path("."),
                   seed: int = 0):
    """Returns (backbone keras.Model, WeightsInfo): [N, s, s, 3] scaled floats -> [N, d]."""
    import keras

    loader, info = resolve_weights(arch, weights, model_dir)
    keras.utils.set_random_seed(seed)  # so that `--weights none` is reproducible
    backbone = arch.build_backbone()
    if loader is not None:
        loader(backbone)
    return backbone, info
