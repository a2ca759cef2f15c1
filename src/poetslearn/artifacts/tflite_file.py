"""Reading a `.tflite` model back: its bytes, the interpreter that runs it, and what it says of
itself. poetslearn's own models carry their metadata inside (labels, normalization and
`poetslearn.json`); models from before 0.3 have it in the JSON file beside them; any other image
classifier with standard TFLite Model Metadata gives its labels and normalization."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from poetslearn.artifacts.metadata import read_metadata, recorded_scaling
from poetslearn.artifacts.metadata_check import checked_metadata
from poetslearn.artifacts.tflite_bundle import read_embedded
from poetslearn.artifacts.tflite_metadata import FACTS_FILE, classifier_metadata
from poetslearn.errors import GraphError


def is_tflite_file(path: Path) -> bool:
    """TFLite flatbuffers carry the identifier "TFL3" at bytes 4-8, whatever the file is called."""
    try:
        with open(path, "rb") as f:
            return f.read(8)[4:8] == b"TFL3"
    except OSError:
        return False


def interpreter_class():
    """LiteRT's interpreter, or TensorFlow's deprecated copy of it when LiteRT is missing."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter
    except ImportError:
        import tensorflow as tf

        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
        return tf.lite.Interpreter


@dataclass(frozen=True)
class TFLiteFile:
    path: Path
    contents: bytes  # read once: for the metadata and for the interpreter
    facts: dict | None  # poetslearn's metadata, checked; None for another tool's model
    labels: list[str] | None  # the labels packed in the model, else the facts'; None: neither
    mean: list[float]  # per channel: what turns pixels 0..255 into the model's input
    std: list[float]


def read_tflite(path: Path) -> TFLiteFile:
    path = Path(path)
    try:
        contents = path.read_bytes()
    except OSError as e:
        raise GraphError(f"Cannot read {path} ({e.strerror or e}).") from e
    try:
        embedded = classifier_metadata(*read_embedded(contents))
    except GraphError as e:
        raise GraphError(f"{path} cannot be loaded as a TFLite model: {e}. Export it again.") from e
    if embedded.facts is not None:
        facts = checked_metadata(embedded.facts, f"{path}'s {FACTS_FILE}", names_tensors=False)
    else:
        facts = read_metadata(path, "tflite")
    labels = embedded.labels if embedded.labels is not None else (facts or {}).get("labels")
    if embedded.normalized:
        mean, std = list(embedded.mean), list(embedded.std)
    else:
        scaling = recorded_scaling(facts or {})
        mean, std = [scaling[0]], [scaling[1]]
    return TFLiteFile(path, contents, facts, labels, mean, std)
