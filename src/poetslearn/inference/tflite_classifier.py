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
from poetslearn.extract.engines import ENGINE_BATCH
from poetslearn.inference.classifier import Classifier, chosen_labels
from poetslearn.quiet import native_stderr_silenced


class TFLiteClassifier(Classifier):
    """A .tflite image classifier fed one image at a time: labels, preprocessing and data set
    from the metadata inside it (or from the JSON beside models from before 0.3)."""

    def __init__(self, config: LabelConfig) -> None:
        model = read_tflite(Path(config.graph))
        self.graph_path, self.metadata, self.contents = model.path, model.facts, model.contents
        self.labels = chosen_labels(config.labels, model.labels, self.graph_path)
        try:
            self.interpreter = self._interpreter()
        except Exception as e:  # noqa: BLE001 - the runtime raises ValueError/RuntimeError
            raise GraphError(f"{self.graph_path} cannot be loaded as a TFLite model ({e}).") from e
        self.batch = 1
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

    def _interpreter(self, batch: int | None = None):
        """A new interpreter of the model, on every core (LiteRT's default is one thread for
        the whole network); with `batch`, its input resized to take that many images."""
        with native_stderr_silenced():  # LiteRT announces its XNNPACK delegate
            interpreter = interpreter_class()(
                model_content=self.contents, num_threads=os.cpu_count() or 1
            )
            if batch is not None:
                inp = interpreter.get_input_details()[0]
                interpreter.resize_tensor_input(inp["index"], [batch, *inp["shape"][1:]])
            interpreter.allocate_tensors()
        return interpreter

    def expect(self, count: int) -> None:
        """Many images: the model resized to take ENGINE_BATCH at once (14% faster at
        mobilenet_0.50_224), where it allows it and answers as it did one image at a time."""
        if count < 2 * ENGINE_BATCH or self.batch != 1:
            return
        probe = np.random.default_rng(0).uniform(0, 255, (2, *self.size, 3)).astype(np.float32)
        one_at_a_time = self.probabilities(probe)
        single = self.interpreter
        try:
            self.interpreter, self.batch = self._interpreter(ENGINE_BATCH), ENGINE_BATCH
            self._invoked = False  # its first run may announce XNNPACK again
            agrees = np.allclose(self.probabilities(probe), one_at_a_time, rtol=0, atol=1e-5)
        except (ValueError, RuntimeError):  # an op that takes one image only
            agrees = False
        if not agrees:
            self.interpreter, self.batch = single, 1

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        """`self.batch` images an invocation (one, unless `expect` resized the model), the last
        chunk padded."""
        images = [self._input(image) for image in self.fitted(pixels)]
        out = []
        for start in range(0, len(images), self.batch):
            chunk = images[start : start + self.batch]
            padded = chunk + [np.zeros_like(chunk[0])] * (self.batch - len(chunk))
            self.interpreter.set_tensor(self.input_index, np.stack(padded))
            if self._invoked:
                self.interpreter.invoke()
            else:  # LiteRT may announce its XNNPACK delegate on the first run
                with native_stderr_silenced():
                    self.interpreter.invoke()
                self._invoked = True
            raw = self.interpreter.get_tensor(self.output_index)[: len(chunk)]
            out.extend(self._scores(row) for row in raw)
        return np.stack(out) if out else np.zeros((0, len(self.labels)))

    def _input(self, image: np.ndarray) -> np.ndarray:
        if self.input_dtype == np.uint8:  # quantized image models take the pixels themselves
            return np.clip(np.rint(image), 0, 255).astype(np.uint8)
        return ((image - self.mean) / self.std).astype(np.float32)

    def _scores(self, raw: np.ndarray) -> np.ndarray:
        if raw.dtype in (np.uint8, np.int8):  # a quantized output: its real values
            return (raw.astype(np.float64) - self.output_zero) * self.output_scale
        return raw.astype(np.float64)
