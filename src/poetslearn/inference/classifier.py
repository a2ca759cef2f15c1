"""What every classifier is, whatever file it runs: its labels, the input size it is fed, its
metadata, how it decodes an image and what it answers. A format's classifier (`graph_classifiers`,
`tflite_classifier`, `onnx_classifier`) opens its file with the format's reader in `artifacts/`
and adds only `probabilities`, the scoring of a batch."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np

from poetslearn.data.images import load_image, resize_antialiased
from poetslearn.errors import GraphError
from poetslearn.inference.predictions import (
    Prediction,
    labels_above,
    read_labels,
    top_predictions,
)


class Classifier:
    graph_path: Path
    labels: list[str]
    size: tuple[int, int]  # (height, width) the model takes
    metadata: dict | None = None  # poetslearn's metadata (checked); None: another tool's model

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        """[N, H, W, 3] float32 pixels 0..255 -> [N, labels] scores, in one call."""
        raise NotImplementedError

    def expect(self, count: int) -> None:
        """Told that `count` images follow (`label` of a folder, `evaluate`): a classifier may
        prepare a faster way that pays only over many images. Nothing to do by default."""

    def load_pixels(self, path: Path) -> np.ndarray:
        """[size, size, 3] float32 0..255, decoded and resized exactly as in training."""
        return load_image(path, self.size[0])

    def fitted(self, images: np.ndarray) -> list[np.ndarray]:
        """Each image at the model's input size (a model of a fixed size gets what it takes)."""
        return [
            image if image.shape[:2] == self.size else resize_antialiased(image, *self.size)
            for image in np.asarray(images, np.float32)
        ]

    @cached_property  # read for every image `label` answers: worked out once
    def thresholds(self) -> np.ndarray | None:
        """A multi-label model's threshold per label (its metadata records them, by label), in
        the order of its labels; None for a model of one label per image."""
        recorded = (self.metadata or {}).get("thresholds")
        if not recorded:
            return None
        return np.array([recorded.get(label, 0.5) for label in self.labels], np.float32)

    def classify(self, path: Path, top_k: int = 5) -> list[Prediction]:
        """The top k labels of one image file, best first (raises ImageError when it cannot
        be decoded)."""
        probs = self.probabilities(self.load_pixels(path)[np.newaxis])[0]
        return top_predictions(probs, self.labels, top_k)

    def decided(self, probs: np.ndarray) -> list[Prediction]:
        """A multi-label model's answer for one image: every label at or above its threshold."""
        return labels_above(probs, self.labels, self.thresholds)

    def check_outputs(self, outputs: int | None, labels_source: Path | str, of: str = "") -> None:
        """The model's output count against its labels: a labels file of another model is the
        usual cause of a mismatch. `of`: what gives the outputs, for the message."""
        if outputs is not None and outputs != len(self.labels):
            raise GraphError(
                f"{labels_source} has {len(self.labels)} labels but "
                f"{of or self.graph_path} has {outputs} classes; pass the labels file written "
                f"with this model."
            )


def chosen_labels(labels_file: Path | None, carried: list[str] | None, path: Path) -> list[str]:
    """The labels a classifier uses: `--labels` when given, else those the model carries."""
    if labels_file is not None:
        return read_labels(Path(labels_file))
    if carried is not None:
        return list(carried)
    raise GraphError(
        f"{path} carries no labels: no metadata in it and no metadata file beside it; pass "
        f"--labels."
    )
