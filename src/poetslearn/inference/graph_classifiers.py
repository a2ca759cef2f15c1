"""Classifying with a frozen graph: ours (pixels of any size in, preprocessing inside the graph)
or one fed as the codelab's `label_image.py` fed it (its own graphs, and ours exported with
`--input_format codelab`): decoded by TensorFlow, resized with TF1's `resize_bilinear`, then
(x - mean) / std, one image at a time."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from poetslearn.artifacts.frozen_graph import load_graph_function
from poetslearn.artifacts.metadata import metadata_path_for
from poetslearn.errors import ImageError
from poetslearn.inference.classifier import Classifier, chosen_labels
from poetslearn.inference.graph_engine import CONVERT_FROM, converted_engine
from poetslearn.inference.predictions import read_labels
from poetslearn.quiet import import_tensorflow


class _FrozenGraphClassifier(Classifier):
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
        self.check_outputs(n_out, labels_path, f"the graph's output {output.name}")

    def _run(self, batch: np.ndarray) -> np.ndarray:
        import tensorflow as tf

        probs = self.fn(tf.constant(np.asarray(batch, np.float32))).numpy()
        self.check_outputs(probs.shape[-1], "the labels", "the graph")
        return probs


class GraphClassifier(_FrozenGraphClassifier):
    """A poetslearn graph that takes raw pixels of any size and resizes and scales them itself.
    Told of many images, it converts itself for LiteRT (`graph_engine`) and scores with that."""

    def __init__(self, graph_path: Path, metadata: dict, labels: Path | None = None) -> None:
        names = None if labels is not None else list(metadata["labels"])
        labels_path = Path(labels) if labels is not None else metadata_path_for(graph_path)
        super().__init__(
            graph_path, metadata["input_tensor"], metadata["output_tensor"], names, labels_path
        )
        self.metadata = metadata
        self.size = tuple(metadata["input_size"])
        self.engine = None

    def expect(self, count: int) -> None:
        if self.engine is None and count >= CONVERT_FROM:
            self.engine = converted_engine(self.graph_path, self.metadata, self._run)

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        if self.engine is None:
            return self._run(pixels)
        return score_with_engine(self.engine, self.fitted(pixels), len(self.labels))


class ConvertedGraphClassifier(Classifier):
    """A poetslearn graph whose LiteRT conversion an earlier run made and checked: the graph's
    metadata and that model, no TensorFlow."""

    def __init__(self, graph_path: Path, metadata: dict, engine, labels: Path | None) -> None:
        self.graph_path, self.metadata, self.engine = Path(graph_path), metadata, engine
        self.labels = chosen_labels(labels, list(metadata["labels"]), self.graph_path)
        self.size = tuple(metadata["input_size"])
        self.check_outputs(engine.outputs, labels or metadata_path_for(self.graph_path))

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        return score_with_engine(self.engine, self.fitted(pixels), len(self.labels))


def score_with_engine(engine, images: list[np.ndarray], labels: int) -> np.ndarray:
    if not images:
        return np.zeros((0, labels))
    return engine(np.stack(images)).astype(np.float64)


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
        scaling: tuple[float, float],
        metadata: dict | None = None,
    ) -> None:
        super().__init__(graph_path, input_name, output_name, labels, labels_path)
        shape = self.input.shape.as_list() if self.input.shape.rank == 4 else [None] * 4
        self.size = (size[0] or shape[1] or 224, size[1] or shape[2] or 224)
        (self.mean, self.std), self.metadata = scaling, metadata

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
