"""ImageNet MobileNet v1 weights from the codelab's frozen graphs: found in the model folder in
the codelab's layout (float or weight-quantized, folder or tarball), or downloaded as the codelab
did; imported into our Keras MobileNet once and cached by the graph's sha256."""

from __future__ import annotations

from pathlib import Path

from poetslearn.backbone.architectures import Architecture
from poetslearn.backbone.weights_info import Loader, WeightsInfo
from poetslearn.context import warn_on_stderr
from poetslearn.download import fetch_file, hash_file
from poetslearn.errors import DownloadError, WeightsError
from poetslearn.outputs import cache_dir, write_atomic


def imported_weights_cache_dir() -> Path:
    """Home of converted graph weights: `$POETSLEARN_CACHE_DIR/imported` (default
    `~/.cache/poetslearn/imported`)."""
    return cache_dir() / "imported"


def _import_graph_cached(path: Path, sha256: str, warn=warn_on_stderr):
    """Imports a MobileNet graph once; the converted arrays are cached keyed by the source hash."""
    from poetslearn.backbone import graph_import

    cached = imported_weights_cache_dir() / f"{path.name}.poetslearn-{sha256[:16]}.npz"
    if cached.is_file():
        try:
            return graph_import.from_npz_bytes(cached.read_bytes())
        except (OSError, ValueError, KeyError) as e:  # damaged: import again
            warn(f"Warning: ignoring the damaged {cached} ({e}); importing the graph again.")
    weights = graph_import.read_mobilenet_graph(graph_import.read_graph_bytes(path), str(path))
    try:
        write_atomic(cached, graph_import.to_npz_bytes(weights))
    except OSError as e:  # a read-only home: the import works, it is just not remembered
        warn(f"Warning: could not cache the imported weights in {cached.parent} ({e}).")
    return weights


def graph_loader(
    path: Path, arch: Architecture, allow_size_mismatch: bool, warn=warn_on_stderr
) -> tuple[Loader, WeightsInfo]:
    """Loads MobileNet v1 weights from a codelab frozen graph, checking alpha and size first."""
    if arch.family != "mobilenet_v1":
        raise WeightsError(
            f"{path} is a MobileNet v1 graph; it cannot give weights to {arch.name}."
            f" Use --architecture mobilenet_<alpha>_<size>."
        )
    sha256 = hash_file(path)
    imported = _import_graph_cached(path, sha256, warn)
    if abs(imported.alpha - arch.alpha) > 1e-6:
        raise WeightsError(
            f"{path} holds MobileNet v1 with alpha {imported.alpha:g}, but "
            f"--architecture {arch.name} has alpha {arch.alpha:g}. Use "
            f"--architecture mobilenet_{imported.alpha:.2f}_{imported.input_size or 224}".replace(
                "1.00", "1.0"
            )
            + " or a graph of the matching alpha."
        )
    if imported.input_size and imported.input_size != arch.input_size:
        message = (
            f"{path} was trained at {imported.input_size}x{imported.input_size}, but "
            f"--architecture {arch.name} runs at {arch.input_size}x{arch.input_size}."
        )
        if not allow_size_mismatch:
            raise WeightsError(
                message + " MobileNet weights are trained per resolution; use the "
                "graph of the matching size, or pass --allow_size_mismatch to use "
                "these weights anyway."
            )
        warn("Warning: " + message + " Features will be worse than at the trained resolution.")

    def load(model) -> None:
        from poetslearn.backbone.graph_import import apply_to_keras

        apply_to_keras(imported, model)

    return load, WeightsInfo("imagenet", f"ImageNet MobileNet v1 graph {path}", str(path), sha256)


def codelab_graph_candidates(arch: Architecture, model_dir: Path) -> list[Path]:
    """Where the codelab's layout keeps the graph for an architecture, best first."""
    stem = f"mobilenet_v1_{arch.name.split('_', 1)[1]}"  # mobilenet_0.50_224 -> ..._v1_0.50_224
    folder = model_dir / stem
    return [
        folder / "frozen_graph.pb",
        folder / "quantized_graph.pb",
        model_dir / f"{stem}_frozen.tgz",
    ]


def find_codelab_graph(arch: Architecture, model_dir: Path, looked_in: list[str]):
    """The codelab's MobileNet v1 graph (float or quantized, folder or tarball) in the model
    folder."""
    if arch.family != "mobilenet_v1":
        return None
    for path in codelab_graph_candidates(arch, model_dir):
        looked_in.append(str(path))
        if path.is_file():
            return graph_loader(path, arch, allow_size_mismatch=False)
    return None


def download_codelab_tarball(arch: Architecture, model_dir: Path, looked_in: list[str]):
    """The codelab's own download: `mobilenet_v1_<alpha>_<size>_frozen.tgz` into the model folder.

    Tried after the Keras file. Where no hash is known, the download is still checked for
    completeness, and the import itself rejects anything that is not a complete MobileNet graph.
    """
    spec = arch.codelab_tarball
    if spec is None:
        return None
    dest = codelab_graph_candidates(arch, model_dir)[-1]
    looked_in.append(spec.url)
    try:
        fetch_file(spec.url, dest, sha256=spec.sha256, md5=spec.md5)
    except (DownloadError, OSError) as e:
        looked_in[-1] += f" (download failed: {e})"
        return None
    return graph_loader(dest, arch, allow_size_mismatch=False)


def is_graph_file(path: Path) -> bool:
    return path.name.endswith((".pb", ".tgz", ".tar.gz"))
