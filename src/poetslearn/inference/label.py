"""Opening an exported classifier, whatever its format: a `.tflite` or `.onnx` model, a poetslearn
graph (raw pixels, or `--input_format codelab`), or a graph without metadata such as the
codelab's `retrained_graph.pb`, fed as the codelab's `label_image.py` fed it (resized to the
graph's input size, then (x - mean) / std, one image at a time, as its flags say).
"""

from __future__ import annotations

from pathlib import Path

from poetslearn.artifacts.metadata import metadata_path_for, read_metadata, recorded_scaling
from poetslearn.artifacts.onnx_file import is_onnx_file
from poetslearn.artifacts.tflite_file import is_tflite_file
from poetslearn.config import DEFAULT_LABELS_FILE, LabelConfig
from poetslearn.inference.classifier import Classifier
from poetslearn.inference.graph_classifiers import (
    CodelabGraphClassifier,
    ConvertedGraphClassifier,
    GraphClassifier,
)
from poetslearn.inference.graph_engine import cached_engine
from poetslearn.inference.onnx_classifier import ONNXClassifier
from poetslearn.inference.predictions import Prediction
from poetslearn.inference.tflite_classifier import TFLiteClassifier

__all__ = ["Classifier", "ONNXClassifier", "Prediction", "TFLiteClassifier", "load_classifier"]


def load_classifier(config: LabelConfig) -> Classifier:
    """The right classifier for the file (by its content for `.tflite`, by its name for
    `.onnx`, else a frozen graph with or without poetslearn metadata)."""
    graph = Path(config.graph)
    if is_tflite_file(graph):
        return TFLiteClassifier(config)
    if is_onnx_file(graph):
        return ONNXClassifier(config)
    metadata = read_metadata(graph, "frozen_graph")
    if metadata is None:
        return CodelabGraphClassifier(
            graph,
            config.input_layer,
            config.output_layer,
            None,
            Path(config.labels or DEFAULT_LABELS_FILE),
            (config.input_height, config.input_width),
            (config.input_mean, config.input_std),
        )
    if metadata.get("input_format", "pixels") == "pixels":
        engine = cached_engine(graph)  # converted and checked by an earlier run
        if engine is not None:
            return ConvertedGraphClassifier(graph, metadata, engine, config.labels)
        return GraphClassifier(graph, metadata, config.labels)
    return CodelabGraphClassifier(
        graph,
        metadata["input_tensor"],
        metadata["output_tensor"],
        None if config.labels else list(metadata["labels"]),
        Path(config.labels) if config.labels else metadata_path_for(graph),
        tuple(metadata["input_size"]),
        recorded_scaling(metadata),
        metadata,
    )
