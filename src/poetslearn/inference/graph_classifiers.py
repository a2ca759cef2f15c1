"""Classifying with a frozen graph: ours (pixels of any size in, preprocessing inside the graph)
or one fed as the codelab's `label_image.py` fed it (its own graphs, and ours exported with
`--input_format codelab`): decoded by TensorFlow, resized with TF1's `resize_bilinear`, then
(x - mean) / std, one image at a time."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from poetslearn.data.images import load_image
from poetslearn.errors import GraphError, ImageError
from poetslearn.export.metadata import metadata_path_for
from poetslearn.inference.predictions import Prediction, read_labels, top_predictions
from poetslearn.quiet import import_tensorflow


def load_graph_function(graph_path: Path, input_name: str, output_name: str):
    """Imports a frozen GraphDef and returns a function input -> output tensor."""
    import tensorflow as tf
    from google.protobuf.message import DecodeError

    try:
        data = Path(graph_path).read_bytes()
    except OSError as e:
        raise GraphError(
            f"Cannot read the graph {graph_path} ({e.strerror or e}). Run "
            f"`poetslearn retrain` first or pass --graph."
        ) from e
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
            raise GraphError(
                f"{graph_path} has no tensor {tensor_name}; name the right one with {flag}."
            ) from e
    return wrapped.prune(feeds=tensors[0], fetches=tensors[1]), tensors[0], tensors[1]


class _FrozenGraphClassifier:
    """A frozen graph's input -> output function, with its labels checked against its output."""

    def __init__(
        self,
        graph_path: Path,
        input_name: str,
        output_name: str,
        labels: list[str] | None,
        labels_path: Path,
    ) -> None:
        """`labels` None: read from `labels_path`, once the graph itself has loaded."""
        import_tensorflow()  # the first import: without its start-up lines
        self.graph_path = Path(graph_path)
        self.fn, self.input, output = load_graph_function(self.graph_path, input_name, output_name)
        self.labels = labels if labels is not None else read_labels(labels_path)
        n_out = output.shape[-1] if output.shape.rank else None
        if n_out is not None and n_out != len(self.labels):
            raise GraphError(
                f"{labels_path} has {len(self.labels)} labels but the graph's output "
                f"{output.name} has {n_out} classes; pass the labels file written "
                f"with this graph."
            )

    def _run(self, batch: np.ndarray) -> np.ndarray:
        import tensorflow as tf

        probs = self.fn(tf.constant(np.asarray(batch, np.float32))).numpy()
        if probs.shape[-1] != len(self.labels):
            raise GraphError(
                f"The graph gives {probs.shape[-1]} scores but there are "
                f"{len(self.labels)} labels; pass the matching labels file."
            )
        return probs

    def classify(self, path: Path, top_k: int = 5) -> list[Prediction]:
        """Raises ImageError when the file cannot be decoded."""
        return top_predictions(
            self.probabilities(self.load_pixels(path)[np.newaxis])[0], self.labels, top_k
        )


class GraphClassifier(_FrozenGraphClassifier):
    """A poetslearn graph that takes raw pixels of any size and resizes and scales them itself."""

    def __init__(self, graph_path: Path, metadata: dict, labels: Path | None = None) -> None:
        labels_path = Path(labels) if labels is not None else metadata_path_for(graph_path)
        names = None if labels is not None else list(metadata["labels"])
        super().__init__(
            graph_path, metadata["input_tensor"], metadata["output_tensor"], names, labels_path
        )
        self.metadata = metadata
        self.size = tuple(metadata["input_size"])

    def load_pixels(self, path: Path) -> np.ndarray:
        """[size, size, 3] float32 0..255, decoded and resized exactly as in training."""
        return load_image(path, self.size[0])

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        """[N, H, W, 3] float32 pixels 0..255 -> [N, classes], in one batch."""
        return self._run(pixels)


class CodelabGraphClassifier(_FrozenGraphClassifier):
    """A graph fed exactly as the codelab's `label_image.py` feeds it: decoded by TensorFlow's
    decoder for the file's extension, resized with TF1's `resize_bilinear` (no half-pixel
    centres, no antialiasing), scaled as (x - mean) / std, one image at a time. For graphs made
    by the codelab's retrain.py and by `retrain --input_format codelab`."""

    def __init__(
        self,
        graph_path: Path,
        input_name: str,
        output_name: str,
        labels: list[str] | None,
        labels_path: Path,
        size: tuple[int | None, int | None],
        mean: float,
        std: float,
        metadata: dict | None = None,
    ) -> None:
        super().__init__(graph_path, input_name, output_name, labels, labels_path)
        shape = self.input.shape.as_list() if self.input.shape.rank == 4 else [None] * 4
        self.size = (size[0] or shape[1] or 224, size[1] or shape[2] or 224)
        self.mean, self.std, self.metadata = mean, std, metadata

    def load_pixels(self, path: Path) -> np.ndarray:
        """[h, w, 3] float32 0..255 as `label_image.py` decodes the file (no resize yet)."""
        return decode_like_label_image(path)

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        import tensorflow as tf

        out = []
        for image in pixels:
            # TF1's resize_bilinear: the op with both of its TF1 defaults spelled out.
            resized = tf.raw_ops.ResizeBilinear(
                images=tf.constant(np.asarray(image, np.float32)[np.newaxis]),
                size=self.size,
                align_corners=False,
                half_pixel_centers=False,
            )
            out.append(self._run((resized.numpy() - self.mean) / self.std))
        return np.concatenate(out)


def decode_like_label_image(path: Path) -> np.ndarray:
    """The codelab's `read_tensor_from_image_file` up to the resize: TensorFlow's PNG, GIF, BMP or
    JPEG decoder chosen by the file name's ending, then a float cast. Where the codelab would
    crash (an animated GIF, a BMP with alpha, a PNG named .jpg) the first frame, the RGB channels,
    or the decoder for the actual content is used instead."""
    import tensorflow as tf

    name = str(path)
    try:
        data = tf.io.read_file(name)
    except (tf.errors.OpError, ValueError) as e:
        raise ImageError(
            f"{path} cannot be read ({e.message if hasattr(e, 'message') else e})."
        ) from e
    try:
        try:
            if name.endswith(".png"):
                image = tf.io.decode_png(data, channels=3)
            elif name.endswith(".gif"):
                image = tf.io.decode_gif(data)[0]
            elif name.endswith(".bmp"):
                image = tf.io.decode_bmp(data)[..., :3]
            else:
                image = tf.io.decode_jpeg(data, channels=3)
        except tf.errors.InvalidArgumentError:  # the ending lies about the content
            image = tf.io.decode_image(data, channels=3, expand_animations=False)
    except tf.errors.InvalidArgumentError as e:
        raise ImageError(f"{path} is not a readable image ({e.message}).") from e
    return tf.cast(image, tf.float32).numpy()
