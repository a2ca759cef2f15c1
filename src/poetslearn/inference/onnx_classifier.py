"""Classifying with an `.onnx` model from `retrain --onnx_output`: ONNX Runtime, Pillow and NumPy
only (no TensorFlow). The model carries poetslearn's metadata in its metadata_props (labels, input
size and format, data set and split), so `label` and `evaluate` need nothing beside it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from poetslearn.artifacts.metadata import recorded_scaling
from poetslearn.artifacts.onnx_file import read_onnx
from poetslearn.config import LabelConfig
from poetslearn.inference.classifier import Classifier, chosen_labels

BATCH = 64  # images per run: the model takes a batch of any size


class ONNXClassifier(Classifier):
    """A poetslearn ONNX classifier: input `pixels` [N, s, s, 3] (0..255, or the codelab
    format), output `probabilities` [N, labels]."""

    def __init__(self, config: LabelConfig) -> None:
        model = read_onnx(Path(config.graph))
        self.graph_path, self.session, self.metadata = model.path, model.session, model.facts
        self.labels = chosen_labels(config.labels, self.metadata["labels"], self.graph_path)
        self.size = tuple(self.metadata["input_size"])
        self.mean, self.std = recorded_scaling(self.metadata)
        outputs = self.session.get_outputs()[0].shape[-1]
        source = config.labels or f"{self.graph_path}'s metadata"
        self.check_outputs(outputs if isinstance(outputs, int) else None, source)

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        images = self.fitted(pixels)
        out = [
            self.session.run(["probabilities"], {"pixels": self._input(images[i : i + BATCH])})[0]
            for i in range(0, len(images), BATCH)
        ]
        return np.concatenate(out).astype(np.float64) if out else np.zeros((0, len(self.labels)))

    def _input(self, images: list[np.ndarray]) -> np.ndarray:
        return ((np.stack(images) - self.mean) / self.std).astype(np.float32)
