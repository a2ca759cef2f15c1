"""Classifying images with an exported graph: ours (with metadata) or the codelab's.

Our graphs carry a metadata file, so the input size and preprocessing are known and applied
inside the graph. A graph without one (such as the codelab's `retrained_graph.pb`) is fed the way
the codelab's `label_image.py` fed it: resized to the graph's input size, then (x - mean) / std,
one image at a time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from poetslearn.config import DEFAULT_LABELS_FILE, LabelConfig
from poetslearn.errors import GraphError
from poetslearn.export import METADATA_FORMAT
from poetslearn.outputs import metadata_path_for
from poetslearn.images import load_image, read_image_file


@dataclass
class Prediction:
    label: str
    score: float


def read_labels(path: Path) -> list[str]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise GraphError(f"Cannot read the labels file {path} ({e.strerror or e}). Pass the "
                         f"labels written by retrain with --labels.") from e
    return [line.rstrip("\r\n") for line in text.splitlines() if line.strip()]


def read_metadata(graph_path: Path) -> dict | None:
    path = metadata_path_for(graph_path)
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise GraphError(f"The metadata file {path} cannot be read ({e}); delete it to treat "
                         f"the graph as a codelab graph, or export it again.") from e
    if not isinstance(meta, dict) or meta.get("format") != METADATA_FORMAT:
        raise GraphError(f"{path} is not a poetslearn metadata file (format "
                         f"{meta.get('format') if isinstance(meta, dict) else None!r}, expected "
                         f"{METADATA_FORMAT!r}).")
    return meta


def load_graph_function(graph_path: Path, input_name: str, output_name: str):
    """Imports a frozen GraphDef and returns a function input -> output tensor."""
    import tensorflow as tf
    from google.protobuf.message import DecodeError

    try:
        data = Path(graph_path).read_bytes()
    except OSError as e:
        raise GraphError(f"Cannot read the graph {graph_path} ({e.strerror or e}). Run "
                         f"`poetslearn retrain` first or pass --graph.") from e
    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(data)
    except DecodeError as e:
        raise GraphError(f"{graph_path} is not a TensorFlow GraphDef (.pb) file.") from e
    if not graph_def.node:
        raise GraphError(f"{graph_path} holds no graph nodes; it is not a frozen graph.")

    def import_graph():
        tf.compat.v1.import_graph_def(graph_def, name="")

    try:
        wrapped = tf.compat.v1.wrap_function(import_graph, [])
    except Exception as e:  # noqa: BLE001 - TF raises many types for a broken graph
        raise GraphError(f"{graph_path} cannot be imported into TensorFlow ({e}).") from e
    tensors = []
    for name, flag in ((input_name, "--input_layer"), (output_name, "--output_layer")):
        tensor_name = name if ":" in name else f"{name}:0"
        try:
            tensors.append(wrapped.graph.get_tensor_by_name(tensor_name))
        except (KeyError, ValueError) as e:
            raise GraphError(f"{graph_path} has no tensor {tensor_name}; name the right one "
                             f"with {flag}.") from e
    return wrapped.prune(feeds=tensors[0], fetches=tensors[1]), tensors[0], tensors[1]


class GraphClassifier:
    """A loaded graph plus how to feed it; `classify(path)` returns predictions best first."""

    def __init__(self, config: LabelConfig, warn=print) -> None:
        self.graph_path = Path(config.graph)
        self.metadata = read_metadata(self.graph_path)
        if self.metadata is not None:
            m = self.metadata
            fn, inp, out = load_graph_function(self.graph_path, m["input_tensor"],
                                               m["output_tensor"])
            self.size = tuple(m["input_size"])
            if config.labels is not None:
                labels_path = Path(config.labels)
                self.labels = read_labels(labels_path)
            else:
                self.labels = list(m["labels"])
                labels_path = metadata_path_for(self.graph_path)
            self.mode = "poetslearn"
        else:
            fn, inp, out = load_graph_function(self.graph_path, config.input_layer,
                                               config.output_layer)
            labels_path = Path(config.labels or DEFAULT_LABELS_FILE)
            self.labels = read_labels(labels_path)
            shape = inp.shape.as_list() if inp.shape.rank == 4 else [None] * 4
            self.size = (config.input_height or shape[1] or 224, config.input_width or shape[2]
                         or 224)
            self.mean, self.std = config.input_mean, config.input_std
            self.mode = "codelab"
        self.fn = fn
        n_out = out.shape[-1] if out.shape.rank else None
        if n_out is not None and n_out != len(self.labels):
            raise GraphError(f"{labels_path} has {len(self.labels)} labels but the graph's output "
                             f"{out.name} has {n_out} classes; pass the labels file written with "
                             f"this graph.")

    def load_pixels(self, path: Path) -> np.ndarray:
        """[h, w, 3] float32 0..255 for `probabilities`; raises ImageError for a bad file."""
        if self.mode == "poetslearn":
            return load_image(path, self.size[0])
        return read_image_file(path).astype(np.float32)

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        """[N, H, W, 3] float32 pixels 0..255 -> [N, classes] probabilities."""
        import tensorflow as tf

        if self.mode == "poetslearn":  # the graph resizes and scales by itself, in one batch
            probs = self.fn(tf.constant(np.asarray(pixels, np.float32))).numpy()
        else:
            # The codelab's label_image.py: plain bilinear resize, (x - mean) / std, batch of 1.
            probs = np.concatenate([self.fn(tf.constant(
                (tf.image.resize(p[np.newaxis], self.size, method="bilinear").numpy()
                 - self.mean) / self.std)).numpy() for p in pixels])
        if probs.shape[-1] != len(self.labels):
            raise GraphError(f"The graph gives {probs.shape[-1]} scores but there are "
                             f"{len(self.labels)} labels; pass the matching labels file.")
        return probs

    def classify(self, path: Path, top_k: int = 5) -> list[Prediction]:
        """Raises ImageError when the file cannot be decoded."""
        return top_predictions(self.probabilities(self.load_pixels(path)[np.newaxis])[0],
                               self.labels, top_k)


def top_predictions(probs: np.ndarray, labels: list[str], top_k: int) -> list[Prediction]:
    order = np.argsort(-probs, kind="stable")[:top_k]
    return [Prediction(labels[i], float(probs[i])) for i in order]


def is_tflite_file(path: Path) -> bool:
    """TFLite flatbuffers carry the identifier "TFL3" at bytes 4-8, whatever the file is called."""
    try:
        with open(path, "rb") as f:
            return f.read(8)[4:8] == b"TFL3"
    except OSError:
        return False


class TFLiteClassifier:
    """A .tflite model exported by `retrain --tflite_output`, fed one image at a time."""

    def __init__(self, config: LabelConfig, warn=print) -> None:
        from poetslearn.engines import _interpreter_class

        self.graph_path = Path(config.graph)
        meta = read_metadata(self.graph_path)
        if config.labels is not None:
            self.labels = read_labels(Path(config.labels))
        elif meta is not None:
            self.labels = list(meta["labels"])
        else:
            raise GraphError(f"{self.graph_path} has no metadata file beside it; pass --labels.")
        try:
            self.interpreter = _interpreter_class()(model_path=str(self.graph_path))
            self.interpreter.allocate_tensors()
        except Exception as e:  # noqa: BLE001 - the runtime raises ValueError/RuntimeError
            raise GraphError(f"{self.graph_path} cannot be loaded as a TFLite model ({e}).") from e
        inp = self.interpreter.get_input_details()[0]
        out = self.interpreter.get_output_details()[0]
        self.input_index, self.output_index = inp["index"], out["index"]
        self.size = (int(inp["shape"][1]), int(inp["shape"][2]))
        if int(out["shape"][-1]) != len(self.labels):
            raise GraphError(f"There are {len(self.labels)} labels but {self.graph_path} gives "
                             f"{int(out['shape'][-1])} scores; pass the matching labels file.")

    def load_pixels(self, path: Path) -> np.ndarray:
        return load_image(path, self.size[0])

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        """[N, H, W, 3] float32 pixels 0..255 -> [N, classes], one invocation per image."""
        import tensorflow as tf

        out = []
        for image in np.asarray(pixels, np.float32):
            if image.shape[:2] != self.size:
                image = tf.image.resize(image[np.newaxis], self.size, method="bilinear",
                                        antialias=True).numpy()[0]
            self.interpreter.set_tensor(self.input_index, image[np.newaxis])
            self.interpreter.invoke()
            out.append(self.interpreter.get_tensor(self.output_index)[0].astype(np.float64))
        return np.stack(out)

    def classify(self, path: Path, top_k: int = 5) -> list[Prediction]:
        return top_predictions(self.probabilities(self.load_pixels(path)[np.newaxis])[0],
                               self.labels, top_k)


def load_classifier(config: LabelConfig, warn=print):
    """The right classifier for the file: a .tflite model or a frozen GraphDef."""
    if is_tflite_file(Path(config.graph)):
        return TFLiteClassifier(config, warn)
    return GraphClassifier(config, warn)
