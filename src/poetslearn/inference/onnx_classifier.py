"""Classifying with an `.onnx` model from `retrain --onnx_output`: ONNX Runtime, Pillow and NumPy
only (no TensorFlow). The model carries poetslearn's metadata in its metadata_props (labels, input
size and format, data set and split), so `label` and `evaluate` need nothing beside it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from poetslearn.config import LabelConfig
from poetslearn.data.images import load_image, resize_antialiased
from poetslearn.errors import GraphError
from poetslearn.inference.predictions import Prediction, read_labels, top_predictions

BATCH = 64  # images per run: the model takes a batch of any size


def is_onnx_file(path: Path) -> bool:
    return Path(path).suffix.lower() == ".onnx"


class ONNXClassifier:
    """A poetslearn ONNX classifier: input `pixels` [N, s, s, 3] (0..255, or the codelab
    format), output `probabilities` [N, labels]."""

    def __init__(self, config: LabelConfig, warn=print) -> None:
        import onnxruntime

        self.graph_path = Path(config.graph)
        try:
            self.session = onnxruntime.InferenceSession(
                str(self.graph_path), providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # noqa: BLE001 - ONNX Runtime raises its own kinds
            raise GraphError(f"{self.graph_path} cannot be loaded as an ONNX model ({e}).") from e
        props = self.session.get_modelmeta().custom_metadata_map
        if "poetslearn" not in props:
            raise GraphError(
                f"{self.graph_path} carries no poetslearn metadata: `label` and `evaluate` read "
                f"the .onnx models `retrain --onnx_output` writes. Run this one with ONNX Runtime."
            )
        self.metadata = json.loads(props["poetslearn"])
        self.labels = (
            read_labels(Path(config.labels)) if config.labels else list(self.metadata["labels"])
        )
        self.size = tuple(self.metadata["input_size"])
        classes = self.session.get_outputs()[0].shape[-1]
        if classes != len(self.labels):
            raise GraphError(
                f"There are {len(self.labels)} labels but {self.graph_path} gives {classes} "
                f"scores; pass the matching labels file."
            )
        codelab = self.metadata.get("input_format") == "codelab"
        self.mean, self.std = (
            (self.metadata["input_mean"], self.metadata["input_std"]) if codelab else (0.0, 1.0)
        )

    def load_pixels(self, path: Path) -> np.ndarray:
        """[size, size, 3] float32 0..255, decoded and resized exactly as in training."""
        return load_image(path, self.size[0])

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        """[N, H, W, 3] float32 pixels 0..255 -> [N, classes]."""
        images = [
            image if image.shape[:2] == self.size else resize_antialiased(image, *self.size)
            for image in np.asarray(pixels, np.float32)
        ]
        out = [
            self.session.run(["probabilities"], {"pixels": self._input(images[i : i + BATCH])})[0]
            for i in range(0, len(images), BATCH)
        ]
        return np.concatenate(out).astype(np.float64) if out else np.zeros((0, len(self.labels)))

    def _input(self, images: list[np.ndarray]) -> np.ndarray:
        return ((np.stack(images) - self.mean) / self.std).astype(np.float32)

    def classify(self, path: Path, top_k: int = 5) -> list[Prediction]:
        return top_predictions(
            self.probabilities(self.load_pixels(path)[np.newaxis])[0], self.labels, top_k
        )
