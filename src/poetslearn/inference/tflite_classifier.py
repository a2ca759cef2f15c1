"""Classifying with a `.tflite` model from `retrain --tflite_output` (or any image classifier with
standard TFLite Model Metadata): LiteRT, Pillow and NumPy only, so labelling never imports
TensorFlow."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from poetslearn.artifacts.metadata import metadata_path_for
from poetslearn.artifacts.tflite_file import interpreter_class, read_tflite
from poetslearn.config import LabelConfig
from poetslearn.errors import GraphError
from poetslearn.inference.classifier import Classifier, chosen_labels
from poetslearn.quiet import native_stderr_silenced


class TFLiteClassifier(Classifier):
    """A .tflite image classifier fed one image at a time: labels, preprocessing and data set
    from the metadata inside it (or from the JSON beside models from before 0.3)."""

    def __init__(self, config: LabelConfig) -> None:
        model = read_tflite(Path(config.graph))
        self.graph_path, self.metadata = model.path, model.facts
        self.labels = chosen_labels(config.labels, model.labels, self.graph_path)
        try:
            with native_stderr_silenced():  # LiteRT announces its XNNPACK delegate
                # Every core: LiteRT's default is one thread for the whole network.
                self.interpreter = interpreter_class()(
                    model_content=model.contents, num_threads=os.cpu_count() or 1
                )
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
        self.mean, self.std = np.asarray(model.mean, np.float32), np.asarray(model.std, np.float32)
        source = config.labels or metadata_path_for(self.graph_path)
        self.check_outputs(int(out["shape"][-1]), source)

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        """One invocation per image (the model takes a batch of one)."""
        out = []
        for image in self.fitted(pixels):
            self.interpreter.set_tensor(self.input_index, self._input(image)[np.newaxis])
            if self._invoked:
                self.interpreter.invoke()
            else:  # LiteRT may announce its XNNPACK delegate on the first run
                with native_stderr_silenced():
                    self.interpreter.invoke()
                self._invoked = True
            out.append(self._scores(self.interpreter.get_tensor(self.output_index)[0]))
        return np.stack(out) if out else np.zeros((0, len(self.labels)))

    def _input(self, image: np.ndarray) -> np.ndarray:
        if self.input_dtype == np.uint8:  # quantized image models take the pixels themselves
            return np.clip(np.rint(image), 0, 255).astype(np.uint8)
        return ((image - self.mean) / self.std).astype(np.float32)

    def _scores(self, raw: np.ndarray) -> np.ndarray:
        if raw.dtype in (np.uint8, np.int8):  # a quantized output: its real values
            return (raw.astype(np.float64) - self.output_zero) * self.output_scale
        return raw.astype(np.float64)
