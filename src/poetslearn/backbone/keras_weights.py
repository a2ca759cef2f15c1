"""ImageNet weights as Keras publishes them: the official weights file in the model folder or the
Keras cache (md5-checked where Keras publishes a hash), or downloaded into that cache."""

from __future__ import annotations

import os
from pathlib import Path

from poetslearn.backbone.architectures import Architecture
from poetslearn.backbone.weights_info import Loader, WeightsInfo
from poetslearn.download import fetch_file, file_matches, hash_file
from poetslearn.errors import DownloadError, WeightsError


def keras_cache_dir() -> Path:
    """Where Keras keeps downloaded application weights (`$KERAS_HOME/models`)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models"


def keras_file_loader(path: Path) -> Loader:
    def load(model) -> None:
        try:
            model.load_weights(str(path))
        except Exception as e:  # h5py/Keras raise many types for a wrong or damaged file
            raise WeightsError(
                f"{path} could not be loaded into the network ({e}). It may be "
                f"damaged or belong to another architecture; delete it."
            ) from e

    return load


def find_keras_file(arch: Architecture, model_dir: Path, looked_in: list[str]):
    """The official Keras weights file in the model folder or the Keras cache."""
    if arch.keras_weights is None:
        return None
    spec = arch.keras_weights
    for folder in (model_dir, keras_cache_dir()):
        path = folder / spec.filename
        looked_in.append(str(path))
        if path.is_file():
            # Keras publishes a hash for some files (Inception V3): a damaged or foreign file
            # of that name is refused, exactly as a download would be.
            if (spec.sha256 or spec.md5) and not file_matches(path, spec.sha256, spec.md5):
                kind, expected = ("sha256", spec.sha256) if spec.sha256 else ("md5", spec.md5)
                raise WeightsError(
                    f"{path} is not the published {spec.filename}: its {kind} is "
                    f"{hash_file(path, kind)}, expected {expected}. It is damaged or another "
                    f"file; delete it (it is downloaded again when online) or copy a good one."
                )
            return keras_file_loader(path), WeightsInfo(
                "imagenet", f"Keras ImageNet weights {path}", str(path), hash_file(path)
            )
    return None


def download_keras_file(arch: Architecture, model_dir: Path, looked_in: list[str]):
    """Downloads the official Keras weights into the Keras cache (hash-checked where published)."""
    if arch.keras_weights is None:
        return None
    spec = arch.keras_weights
    dest = keras_cache_dir() / spec.filename
    looked_in.append(spec.url)
    try:
        fetch_file(spec.url, dest, sha256=spec.sha256, md5=spec.md5)
    except DownloadError as e:
        looked_in[-1] += f" (download failed: {e})"
        return None
    return keras_file_loader(dest), WeightsInfo(
        "imagenet", f"Keras ImageNet weights {dest}", str(dest), hash_file(dest)
    )
