"""Classifying with a `.tflite` model from `retrain --tflite_output`: LiteRT, Pillow and NumPy
only, so labelling never imports TensorFlow."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from poetslearn.config import LabelConfig
from poetslearn.data.images import load_image, resize_antialiased
from poetslearn.errors import GraphError
from poetslearn.export.metadata import metadata_path_for, read_metadata
from poetslearn.export.tflite_bundle import read_embedded
from poetslearn.export.tflite_metadata import ClassifierMetadata, classifier_metadata
from poetslearn.inference.predictions import Prediction, read_labels, top_predictions
from poetslearn.quiet import native_stderr_silenced


def is_tflite_file(path: Path) -> bool:
    """TFLite flatbuffers carry the identifier "TFL3" at bytes 4-8, whatever the file is called."""
    try:
        with open(path, "rb") as f:
            return f.read(8)[4:8] == b"TFL3"
    except OSError:
        return False


class TFLiteClassifier:
    """A .tflite image classifier fed one image at a time: poetslearn's (labels, preprocessing and
    data set read from the metadata inside it, or from the JSON beside models from before 0.3),
    or any other with standard TFLite Model Metadata (labels and normalization)."""

    def __init__(self, config: LabelConfig, warn=print) -> None:
        from poetslearn.extract.engines import interpreter_class

        self.graph_path = Path(config.graph)
        contents = _read(self.graph_path)  # read once: for its metadata and for LiteRT
        embedded = _embedded_metadata(self.graph_path, contents)
        self.metadata = embedded.facts or read_metadata(self.graph_path, "tflite")
        self.labels = self._labels(config, embedded)
        try:
            with native_stderr_silenced():  # LiteRT announces its XNNPACK delegate
                self.interpreter = interpreter_class()(model_content=contents)
                self.interpreter.allocate_tensors()
        except Exception as e:  # noqa: BLE001 - the runtime raises ValueError/RuntimeError
            raise GraphError(f"{self.graph_path} cannot be loaded as a TFLite model ({e}).") from e
        inp = self.interpreter.get_input_details()[0]
        out = self.interpreter.get_output_details()[0]
        self.input_index, self.output_index = inp["index"], out["index"]
        self.size = (int(inp["shape"][1]), int(inp["shape"][2]))
        self.input_dtype = inp["dtype"]
        self.output_scale, self.output_zero = out["quantization"]
        self._invoked = False
        self.mean, self.std = self._normalization(embedded)
        if int(out["shape"][-1]) != len(self.labels):
            raise GraphError(
                f"There are {len(self.labels)} labels but {self.graph_path} gives "
                f"{int(out['shape'][-1])} scores; pass the matching labels file."
            )

    def _labels(self, config: LabelConfig, embedded: ClassifierMetadata) -> list[str]:
        if config.labels is not None:
            return read_labels(Path(config.labels))
        if embedded.labels is not None:
            return embedded.labels
        if self.metadata is not None:
            return list(self.metadata["labels"])
        raise GraphError(
            f"{self.graph_path} carries no labels: no TFLite metadata in it and no "
            f"{metadata_path_for(self.graph_path).name} beside it; pass --labels."
        )

    def _normalization(self, embedded: ClassifierMetadata) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) per channel that turn pixels 0..255 into the model's input."""
        if embedded.normalized:
            mean, std = embedded.mean, embedded.std
        elif (self.metadata or {}).get("input_format") == "codelab":
            mean, std = [self.metadata["input_mean"]], [self.metadata["input_std"]]
        else:
            mean, std = [0.0], [1.0]
        return np.asarray(mean, np.float32), np.asarray(std, np.float32)

    def load_pixels(self, path: Path) -> np.ndarray:
        # NumPy only: labelling with a .tflite model never imports TensorFlow (2 s saved).
        return load_image(path, self.size[0])

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        """[N, H, W, 3] float32 pixels 0..255 -> [N, classes], one invocation per image."""
        out = []
        for image in np.asarray(pixels, np.float32):
            if image.shape[:2] != self.size:
                image = resize_antialiased(image, *self.size)
            self.interpreter.set_tensor(self.input_index, self._input(image)[np.newaxis])
            if self._invoked:
                self.interpreter.invoke()
            else:  # LiteRT may announce its XNNPACK delegate on the first run
                with native_stderr_silenced():
                    self.interpreter.invoke()
                self._invoked = True
            out.append(self._scores(self.interpreter.get_tensor(self.output_index)[0]))
        return np.stack(out)

    def _input(self, image: np.ndarray) -> np.ndarray:
        if self.input_dtype == np.uint8:  # quantized image models take the pixels themselves
            return np.clip(np.rint(image), 0, 255).astype(np.uint8)
        return ((image - self.mean) / self.std).astype(np.float32)

    def _scores(self, raw: np.ndarray) -> np.ndarray:
        if raw.dtype in (np.uint8, np.int8):  # a quantized output: its real values
            return (raw.astype(np.float64) - self.output_zero) * self.output_scale
        return raw.astype(np.float64)

    def classify(self, path: Path, top_k: int = 5) -> list[Prediction]:
        return top_predictions(
            self.probabilities(self.load_pixels(path)[np.newaxis])[0], self.labels, top_k
        )


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise GraphError(f"Cannot read {path} ({e.strerror or e}).") from e


def _embedded_metadata(path: Path, contents: bytes) -> ClassifierMetadata:
    try:
        return classifier_metadata(*read_embedded(contents))
    except GraphError as e:
        raise GraphError(f"{path} cannot be loaded as a TFLite model: {e}. Export it again.") from e
