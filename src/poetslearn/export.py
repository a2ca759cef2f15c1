"""Writing the trained classifier: frozen graph, labels file and metadata, each atomically.

The frozen graph holds preprocessing, backbone and the new layer, so it takes raw RGB pixels:
input `input` ([N, H, W, 3] float32, 0..255, any size), output `final_result` ([N, classes]
softmax); `bottleneck` is the feature vector in between. The metadata file beside it records
everything `label` would otherwise need flags for.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from poetslearn import __version__
from poetslearn.errors import PoetslearnError
from poetslearn.head import SoftmaxLayer

INPUT_NAME = "input"
OUTPUT_NAME = "final_result"
BOTTLENECK_NAME = "bottleneck"
METADATA_FORMAT = "poetslearn-graph/1"


def metadata_path_for(graph_path: Path) -> Path:
    """`tf_files/retrained_graph.pb` -> `tf_files/retrained_graph.json`."""
    graph_path = Path(graph_path)
    return graph_path.with_name(graph_path.stem + ".json")


def write_atomic(path: Path, data: bytes) -> None:
    """Writes `data` to a temporary file beside `path`, then renames it over `path`.

    A crash, Ctrl-C or full disk leaves either the old file or the new one, never a mix, and the
    temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_writable(paths: list[Path]) -> None:
    """Creates the parent folders and proves each can take a new file, before any long work."""
    for path in paths:
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=path.parent):
                pass
        except OSError as e:
            raise PoetslearnError(f"Cannot write {path}: {e.strerror or e}. Choose another "
                                  f"location or fix the folder's permissions.") from e
        if path.is_dir():
            raise PoetslearnError(f"Cannot write {path}: it is a folder; give a file name.")


def build_frozen_graph(extractor, layer: SoftmaxLayer):
    """Returns a GraphDef with every variable folded into constants."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2)

    @tf.function(input_signature=[
        tf.TensorSpec([None, None, None, 3], tf.float32, name=INPUT_NAME)])
    def classify(images):
        # Made inside the function so the graph keeps these names (a reader can find the layer).
        weights = tf.constant(layer.weights, name="final_weights")
        biases = tf.constant(layer.biases, name="final_biases")
        features = tf.identity(extractor.features(images), name=BOTTLENECK_NAME)
        logits = tf.matmul(features, weights) + biases
        return tf.nn.softmax(logits, name=OUTPUT_NAME)

    frozen = convert_variables_to_constants_v2(classify.get_concrete_function())
    return frozen.graph.as_graph_def()


def export_classifier(extractor, layer: SoftmaxLayer, class_names: list[str], graph_path: Path,
                      labels_path: Path, metadata: dict) -> dict[str, Path]:
    """Writes graph, labels and metadata; returns {what: path}."""
    graph_def = build_frozen_graph(extractor, layer)
    arch = extractor.arch
    meta = {
        "format": METADATA_FORMAT,
        "poetslearn_version": __version__,
        "architecture": arch.name,
        "input_size": [arch.input_size, arch.input_size],
        "input_tensor": f"{INPUT_NAME}:0",
        "output_tensor": f"{OUTPUT_NAME}:0",
        "bottleneck_tensor": f"{BOTTLENECK_NAME}:0",
        "feature_dim": extractor.feature_dim,
        "input": "RGB pixels, float32 0..255, [N, H, W, 3], any size (resized inside the graph)",
        "preprocessing": arch.preprocessing,
        "labels": list(class_names),
        "labels_file": Path(labels_path).name,
        **metadata,
    }
    metadata_path = metadata_path_for(graph_path)
    write_atomic(graph_path, graph_def.SerializeToString())
    write_atomic(labels_path, "".join(f"{name}\n" for name in class_names).encode("utf-8"))
    write_atomic(metadata_path, (json.dumps(meta, indent=2, ensure_ascii=False) + "\n"
                                 ).encode("utf-8"))
    return {"graph": Path(graph_path), "labels": Path(labels_path), "metadata": metadata_path}
