"""Finding pretrained weights and building the backbone that carries them.

`--weights imagenet` walks a list of places (the codelab's MobileNet graphs in the model folder,
Keras weights files there or in the Keras cache, then the network) and stops at the first that
has the weights; `--weights none` is random initialisation; anything else is a path to a weights
file: a frozen MobileNet v1 graph (.pb, .tgz) or a Keras weights file. Every backbone gets a
fingerprint of its weight values, so caches keyed on it can never serve vectors computed with
other weights.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from poetslearn.backbone.architectures import Architecture
from poetslearn.backbone.codelab_graphs import (
    download_codelab_tarball,
    find_codelab_graph,
    graph_loader,
    is_graph_file,
)
from poetslearn.backbone.keras_weights import (
    download_keras_file,
    find_keras_file,
    keras_file_loader,
)
from poetslearn.backbone.weights_info import Finder, Loader, WeightsInfo
from poetslearn.context import warn_on_stderr
from poetslearn.download import hash_file
from poetslearn.errors import WeightsError

__all__ = ["WeightsInfo", "build_backbone", "resolve_weights", "weights_fingerprint"]


# Tried in order: local files before the network, the codelab's graphs before Keras files.
IMAGENET_FINDERS: list[Finder] = [
    find_codelab_graph,
    find_keras_file,
    download_keras_file,
    download_codelab_tarball,
]


def resolve_weights(
    arch: Architecture,
    weights: str,
    model_dir: Path,
    allow_size_mismatch: bool = False,
    warn=warn_on_stderr,
) -> tuple[Loader | None, WeightsInfo]:
    """Decides where the backbone's weights come from, without building anything yet."""
    if weights == "none":
        return None, WeightsInfo(
            "random",
            "random initialisation (no pretrained weights: "
            "for quick tests only, accuracy will be poor)",
        )
    if weights == "imagenet":
        if arch.for_tests:
            raise WeightsError(
                f"{arch.name} is a test architecture without ImageNet weights; use --weights none."
            )
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
            f"file with --weights PATH."
        )
    path = Path(weights)
    if not path.is_file():
        raise WeightsError(
            f"--weights {weights}: no such file. Expected 'imagenet', 'none' or "
            f"the path of a weights file."
        )
    if is_graph_file(path):
        return graph_loader(path, arch, allow_size_mismatch, warn)
    return keras_file_loader(path), WeightsInfo(
        "file", f"weights file {path}", str(path), hash_file(path)
    )


def weights_fingerprint(model) -> str:
    """sha256 over every weight array of `model`, in order: equal iff the weights are equal."""
    digest = hashlib.sha256()
    for w in model.weights:
        value = w.numpy()
        digest.update(str(value.shape).encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def build_backbone(
    arch: Architecture,
    weights: str = "imagenet",
    model_dir: Path = Path("."),
    seed: int = 0,
    allow_size_mismatch: bool = False,
    warn=warn_on_stderr,
):
    """Returns (backbone keras.Model, WeightsInfo): [N, s, s, 3] scaled floats -> [N, d]."""
    import keras

    loader, info = resolve_weights(arch, weights, model_dir, allow_size_mismatch, warn)
    keras.utils.set_random_seed(seed)  # so that `--weights none` is reproducible
    backbone = arch.build_backbone()
    if loader is not None:
        loader(backbone)
    return backbone, info
