"""The `.onnx` export, for ONNX Runtime and every other ONNX runtime: the classifier written by
the same ONNX writer as the extraction engine (`backbone.onnx`), input `pixels` [N, s, s, 3]
float32 (0..255, or the codelab format), output `probabilities` [N, classes]. The model carries
its own metadata in metadata_props: `labels` (one per line), `preprocessing`, `input_format`,
`input`, and `poetslearn`, the whole metadata as JSON (the same facts as every other artefact)."""

from __future__ import annotations

from pathlib import Path

from poetslearn.artifacts.metadata import ModelFacts, build_metadata, input_scaling
from poetslearn.artifacts.onnx_file import onnx_metadata_props
from poetslearn.backbone.onnx import UnsupportedLayer
from poetslearn.errors import PoetslearnError
from poetslearn.export.onnx_classifier import convert_classifier_to_onnx
from poetslearn.outputs import write_atomic
from poetslearn.train.head import OutputLayer


def export_onnx(extractor, layer: OutputLayer, facts: ModelFacts, path: Path) -> dict[str, Path]:
    """Writes the .onnx classifier (atomically); returns {"onnx": path}."""
    mean, std = input_scaling(facts.input_format)
    meta = build_metadata(facts, "onnx")
    try:
        model = convert_classifier_to_onnx(
            extractor.arch,
            extractor.backbone,
            layer.weights,
            layer.biases,
            (std, mean) if facts.input_format == "codelab" else None,
            onnx_metadata_props(meta),
            layer.activation,
            facts.test_time_mirror,
        )
    except UnsupportedLayer as e:
        raise PoetslearnError(
            f"--onnx_output cannot write this network as ONNX ({e}). MobileNet v1 and Inception "
            f"V3 export; a TF Hub module does not: use --tflite_output or --saved_model_dir."
        ) from e
    write_atomic(Path(path), model)
    return {"onnx": Path(path)}
