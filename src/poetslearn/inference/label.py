"""Classifying images with an exported graph: ours (with metadata) or the codelab's.

Our graphs carry a metadata file, so the input size and preprocessing are known and applied
inside the graph. A graph without one (such as the codelab's `retrained_graph.pb`) is fed the way
the codelab's `label_image.py` fed it: resized to the graph's input size, then (x - mean) / std,
one image at a time.
"""

from __future__ import annotations

from pathlib import Path

from poetslearn.config import DEFAULT_LABELS_FILE, LabelConfig
from poetslearn.export.metadata import metadata_path_for, read_metadata
from poetslearn.inference.graph_classifiers import CodelabGraphClassifier, GraphClassifier
from poetslearn.inference.onnx_classifier import ONNXClassifier, is_onnx_file
from poetslearn.inference.predictions import Prediction
from poetslearn.inference.tflite_classifier import TFLiteClassifier, is_tflite_file

__all__ = ["ONNXClassifier", "Prediction", "TFLiteClassifier", "load_classifier"]


def load_classifier(config: LabelConfig, warn=print):
    """The right classifier for the file: a .tflite or .onnx model, a poetslearn graph (raw pixels
    or `--input_format codelab`) or a codelab graph without metadata (fed as its flags say)."""
    graph = Path(config.graph)
    if is_tflite_file(graph):
        return TFLiteClassifier(config, warn)
    if is_onnx_file(graph):
        return ONNXClassifier(config, warn)
    metadata = read_metadata(graph, "frozen_graph")
    if metadata is None:
        labels_path = Path(config.labels or DEFAULT_LABELS_FILE)
        return CodelabGraphClassifier(
            graph,
            config.input_layer,
            config.output_layer,
            None,
            labels_path,
            (config.input_height, config.input_width),
            config.input_mean,
            config.input_std,
        )
    if metadata.get("input_format", "pixels") == "pixels":
        return GraphClassifier(graph, metadata, config.labels)
    labels_path = Path(config.labels) if config.labels else metadata_path_for(graph)
    labels = None if config.labels else list(metadata["labels"])
    return CodelabGraphClassifier(
        graph,
        metadata["input_tensor"],
        metadata["output_tensor"],
        labels,
        labels_path,
        tuple(metadata["input_size"]),
        metadata["input_mean"],
        metadata["input_std"],
        metadata,
    )
