"""Classifying with a `.tflite` model from `retrain --tflite_output`: LiteRT, Pillow and NumPy
only, so labelling never imports TensorFlow."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from poetslearn.config import LabelConfig
from poetslearn.data.images import load_image_without_tensorflow, resize_antialiased
from poetslearn.errors import GraphError
from poetslearn.export.metadata import read_metadata
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
    """A .tflite model exported by `retrain --tflite_output`, fed one image at a time."""

    def __init__(self, config: LabelConfig, warn=print) -> None:
        from poetslearn.extract.engines import interpreter_class

        self.graph_path = Path(config.graph)
        meta = read_metadata(self.graph_path, "tflite")
        if config.labels is not None:
            self.labels = read_labels(Path(config.labels))
        elif meta is not None:
            self.labels = list(meta["labels"])
        else:
            raise GraphError(f"{self.graph_path} has no metadata file beside it; pass --labels.")
        try:
            with native_stderr_silenced():  # LiteRT announces its XNNPACK delegate
                self.interpreter = interpreter_class()(model_path=str(self.graph_path))
                self.interpreter.allocate_tensors()
        except Exception as e:  # noqa: BLE001 - the runtime raises ValueError/RuntimeError
            raise GraphError(f"{self.graph_path} cannot be loaded as a TFLite model ({e}).") from e
        inp = self.interpreter.get_input_details()[0]
        out = self.interpreter.get_output_details()[0]
        self.input_index, self.output_index = inp["index"], out["index"]
        self.size = (int(inp["shape"][1]), int(inp["shape"][2]))
        self.metadata = meta
        self._invoked = False
        # A codelab-format model takes (x - 128) / 128; a pixels model takes 0..255 itself.
        codelab = (meta or {}).get("input_format") == "codelab"
        self.mean, self.std = (meta["input_mean"], meta["input_std"]) if codelab else (0.0, 1.0)
        if int(out["shape"][-1]) != len(self.labels):
            raise GraphError(
                f"There are {len(self.labels)} labels but {self.graph_path} gives "
                f"{int(out['shape'][-1])} scores; pass the matching labels file."
            )

    def load_pixels(self, path: Path) -> np.ndarray:
        # NumPy only: labelling with a .tflite model never imports TensorFlow (2 s saved).
        return load_image_without_tensorflow(path, self.size[0])

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        """[N, H, W, 3] float32 pixels 0..255 -> [N, classes], one invocation per image."""
        out = []
        for image in np.asarray(pixels, np.float32):
            if image.shape[:2] != self.size:
                image = resize_antialiased(image, *self.size)
            scaled = ((image - self.mean) / self.std).astype(np.float32)
            self.interpreter.set_tensor(self.input_index, scaled[np.newaxis])
            if self._invoked:
                self.interpreter.invoke()
            else:  # LiteRT may announce its XNNPACK delegate on the first run
                with native_stderr_silenced():
                    self.interpreter.invoke()
                self._invoked = True
            out.append(self.interpreter.get_tensor(self.output_index)[0].astype(np.float64))
        return np.stack(out)

    def classify(self, path: Path, top_k: int = 5) -> list[Prediction]:
        return top_predictions(
            self.probabilities(self.load_pixels(path)[np.newaxis])[0], self.labels, top_k
        )
