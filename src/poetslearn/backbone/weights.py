"""Finding pretrained weights and building the backbone that carries them.

`--weights imagenet` walks a list of places (the codelab's MobileNet graphs in the model folder,
Keras weights files there or in the Keras cache, then the network) and stops at the first that
has the weights; `--weights none` is random initialisation; anything else is a path to a weights
file: a frozen MobileNet v1 graph (.pb, .tgz) or a Keras weights file. Every backbone gets a fingerprint of its weight
values, so caches keyed on it can never serve vectors computed with other weights.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from poetslearn.backbone.architectures import Architecture
from poetslearn.download import fetch_file, file_matches, hash_file
from poetslearn.errors import DownloadError, WeightsError
from poetslearn.outputs import write_atomic


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
    spec = arch.keras_weights
    for folder in (model_dir, keras_cache_dir()):
        path = folder / spec.filename
        looked_in.append(str(path))
        if path.is_file():
            # Keras publishes a hash for some files (Inception V3): a damaged or foreign file
            # of that name is refused, exactly as a download would be.
            if spec.md5 and not file_matches(path, md5=spec.md5):
                raise WeightsError(
                    f"{path} is not the published {spec.filename}: its md5 is "
                    f"{hash_file(path, 'md5')}, expected {spec.md5}. It is damaged or another "
                    f"file; delete it (it is downloaded again when online) or copy a good one.")
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


def imported_weights_cache_dir() -> Path:
    """Home of converted graph weights: `$POETSLEARN_CACHE_DIR/imported` (default
    `~/.cache/poetslearn/imported`). Never the user's model folder: it holds only what they put
    there, whatever its permissions."""
    return Path(os.environ.get("POETSLEARN_CACHE_DIR")
                or Path(os.path.expanduser("~")) / ".cache" / "poetslearn") / "imported"


def _import_graph_cached(path: Path, sha256: str):
    """Imports a MobileNet graph once; the converted arrays are cached keyed by the source hash."""
    from poetslearn.backbone import graph_import

    cached = imported_weights_cache_dir() / f"{path.name}.poetslearn-{sha256[:16]}.npz"
    if cached.is_file():
        try:
            return graph_import.from_npz_bytes(cached.read_bytes())
        except (OSError, ValueError, KeyError) as e:  # damaged: import again
            logging.getLogger(__name__).warning("Ignoring damaged %s (%s)", cached, e)
    weights = graph_import.read_mobilenet_graph(graph_import.read_graph_bytes(path), str(path))
    try:
        write_atomic(cached, graph_import.to_npz_bytes(weights))
    except OSError as e:  # a read-only home: the import works, it is just not remembered
        logging.getLogger(__name__).warning("Could not cache imported weights in %s (%s)",
                                            cached.parent, e)
    return weights


def _graph_loader(path: Path, arch: Architecture, allow_size_mismatch: bool,
                  warn=None) -> tuple[Loader, WeightsInfo]:
    """Loads MobileNet v1 weights from a codelab frozen graph, checking alpha and size first."""
    if arch.family != "mobilenet_v1":
        raise WeightsError(f"{path} is a MobileNet v1 graph; it cannot give weights to {arch.name}."
                           f" Use --architecture mobilenet_<alpha>_<size>.")
    sha256 = hash_file(path)
    imported = _import_graph_cached(path, sha256)
    if abs(imported.alpha - arch.alpha) > 1e-6:
        raise WeightsError(f"{path} holds MobileNet v1 with alpha {imported.alpha:g}, but "
                           f"--architecture {arch.name} has alpha {arch.alpha:g}. Use "
                           f"--architecture mobilenet_{imported.alpha:.2f}_{imported.input_size or 224}"
                           .replace("1.00", "1.0") + " or a graph of the matching alpha.")
    if imported.input_size and imported.input_size != arch.input_size:
        message = (f"{path} was trained at {imported.input_size}x{imported.input_size}, but "
                   f"--architecture {arch.name} runs at {arch.input_size}x{arch.input_size}.")
        if not allow_size_mismatch:
            raise WeightsError(message + " MobileNet weights are trained per resolution; use the "
                               "graph of the matching size, or pass --allow_size_mismatch to use "
                               "these weights anyway.")
        (warn or logging.getLogger(__name__).warning)(
            "Warning: " + message + " Features will be worse than at the trained resolution.")

    def load(model) -> None:
        from poetslearn.backbone.graph_import import apply_to_keras

        apply_to_keras(imported, model)

    return load, WeightsInfo("imagenet", f"ImageNet MobileNet v1 graph {path}", str(path), sha256)


def codelab_graph_candidates(arch: Architecture, model_dir: Path) -> list[Path]:
    """Where the codelab's layout keeps the graph for an architecture, best first."""
    stem = f"mobilenet_v1_{arch.name.split('_', 1)[1]}"  # mobilenet_0.50_224 -> ..._v1_0.50_224
    folder = model_dir / stem
    return [folder / "frozen_graph.pb", folder / "quantized_graph.pb",
            model_dir / f"{stem}_frozen.tgz"]


def _find_codelab_graph(arch: Architecture, model_dir: Path, looked_in: list[str]):
    """The codelab's MobileNet v1 graph (float or quantized, folder or tarball) in the model folder."""
    if arch.family != "mobilenet_v1":
        return None
    for path in codelab_graph_candidates(arch, model_dir):
        looked_in.append(str(path))
        if path.is_file():
            return _graph_loader(path, arch, allow_size_mismatch=False)
    return None


# Where the codelab's retrain.py downloaded MobileNet v1 from, and the sha256 of the tarballs we
# could verify (Google publishes none; these were checked against the official files).
CODELAB_MOBILENET_URL = "http://download.tensorflow.org/models/"
CODELAB_TARBALL_SHA256 = {
    "mobilenet_v1_0.25_128_frozen.tgz":
        "30af63cf9039861bc03f86c7b8092fab754d51b27f042830c456ddbfa2b72fce",
    "mobilenet_v1_0.25_160_frozen.tgz":
        "2b2eb36110bc63f4cf749ef114063f45651be7e9d9eacb315eeedc023ab8a2f5",
    "mobilenet_v1_0.25_192_frozen.tgz":
        "a3872bf6231336e3e66778e95a2b6abf88d26cbaf3e772c6ea6ec2a422b95be6",
    "mobilenet_v1_0.25_224_frozen.tgz":
        "1cddeede49eb35af36061aaa66bf643b81f7ea89abc85f6ffef8f0bf00891756",
}


def _download_codelab_tarball(arch: Architecture, model_dir: Path, looked_in: list[str]):
    """The codelab's own download: `mobilenet_v1_<alpha>_<size>_frozen.tgz` into the model folder.

    Tried after the Keras file. Where no hash is known, the download is still checked for
    completeness, and the import itself rejects anything that is not a complete MobileNet graph.
    """
    if arch.family != "mobilenet_v1":
        return None
    dest = codelab_graph_candidates(arch, model_dir)[-1]
    url = CODELAB_MOBILENET_URL + dest.name
    looked_in.append(url)
    try:
        fetch_file(url, dest, sha256=CODELAB_TARBALL_SHA256.get(dest.name))
    except (DownloadError, OSError) as e:
        looked_in[-1] += f" (download failed: {e})"
        return None
    return _graph_loader(dest, arch, allow_size_mismatch=False)


def is_graph_file(path: Path) -> bool:
    return path.name.endswith((".pb", ".tgz", ".tar.gz"))


# Tried in order: local files before the network, the codelab's graphs before Keras files.
IMAGENET_FINDERS: list[Finder] = [_find_codelab_graph, _find_keras_file, _download_keras_file,
                                  _download_codelab_tarball]


def resolve_weights(arch: Architecture, weights: str, model_dir: Path,
                    allow_size_mismatch: bool = False, warn=None
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
    if is_graph_file(path):
        return _graph_loader(path, arch, allow_size_mismatch, warn)
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
                   seed: int = 0, allow_size_mismatch: bool = False, warn=None):
    """Returns (backbone keras.Model, WeightsInfo): [N, s, s, 3] scaled floats -> [N, d]."""
    import keras

    loader, info = resolve_weights(arch, weights, model_dir, allow_size_mismatch, warn)
    keras.utils.set_random_seed(seed)  # so that `--weights none` is reproducible
    backbone = arch.build_backbone()
    if loader is not None:
        loader(backbone)
    return backbone, info
