"""What a poetslearn `.tflite` says about itself in standard TFLite Model Metadata, and what
`label` reads back from any image classifier's metadata.

Written: the input as an RGB image with the normalization its input format needs (pixels 0..255:
mean 0, std 1; the codelab format: mean 128, std 128), the output as probabilities with the
labels as an associated `labels.txt`, and poetslearn's own metadata (architecture, preprocessing,
data set and split) as an associated `poetslearn.json`, the same bytes as the file beside the
model. MediaPipe Tasks' ImageClassifier needs exactly the first two; the third is for clients
that know it, `label` and `evaluate` among them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from poetslearn import __version__
from poetslearn.artifacts.metadata import input_scaling, metadata_bytes
from poetslearn.artifacts.tflite_metadata_schema import (
    ASSOCIATED_FILE_TYPES,
    COLOR_SPACES,
    SCHEMA_VERSION,
)
from poetslearn.errors import GraphError

LABELS_FILE = "labels.txt"
FACTS_FILE = "poetslearn.json"
AXIS_LABELS = ASSOCIATED_FILE_TYPES.index("TENSOR_AXIS_LABELS")
RGB = COLOR_SPACES.index("RGB")


def model_metadata(meta: dict) -> dict:
    """The ModelMetadata (schema-shaped dicts) of the `.tflite` whose poetslearn metadata is
    `meta` (from `build_metadata(facts, "tflite")`)."""
    labels, size = meta["labels"], meta["input_size"][0]
    mean, std = input_scaling(meta["input_format"])
    shown = ", ".join(labels[:5]) + (", ..." if len(labels) > 5 else "")
    dataset = meta.get("dataset", {}).get("name", "the user's images")
    image = {
        "name": "image",
        "description": f"An RGB image, {size}x{size}, pixels 0..255 scaled as (x - {mean:g}) / "
        f"{std:g}.",
        "content": {"content_properties": ("ImageProperties", {"color_space": RGB})},
        "process_units": [{"options": ("NormalizationOptions", {"mean": [mean], "std": [std]})}],
        "stats": {"max": [(255.0 - mean) / std], "min": [(0.0 - mean) / std]},
    }
    probabilities = {
        "name": "probability",
        "description": f"Probabilities of the {len(labels)} labels, in {LABELS_FILE}'s order.",
        "content": {"content_properties": ("FeatureProperties", {})},
        "stats": {"max": [1.0], "min": [0.0]},
        "associated_files": [
            {"name": LABELS_FILE, "description": "The labels, one per line.", "type": AXIS_LABELS}
        ],
    }
    return {
        "name": f"poetslearn {meta['architecture']} image classifier",
        "description": f"Identifies {len(labels)} classes ({shown}) in an RGB image. Retrained "
        f"by poetslearn from {meta['architecture']} (ImageNet) on {dataset}.",
        "version": __version__,
        "author": "poetslearn",
        "subgraph_metadata": [
            {"input_tensor_metadata": [image], "output_tensor_metadata": [probabilities]}
        ],
        "associated_files": [
            {"name": FACTS_FILE, "description": "poetslearn's metadata of this model (JSON)."}
        ],
        "min_parser_version": SCHEMA_VERSION,
    }


def associated_files(meta: dict) -> dict[str, bytes]:
    return {
        LABELS_FILE: ("\n".join(meta["labels"]) + "\n").encode("utf-8"),
        FACTS_FILE: metadata_bytes(meta),
    }


@dataclass(frozen=True)
class ClassifierMetadata:
    """What `label` needs from a `.tflite`'s own metadata, whoever wrote it."""

    labels: list[str] | None
    mean: list[float] = field(default_factory=lambda: [0.0])
    std: list[float] = field(default_factory=lambda: [1.0])
    facts: dict | None = None  # poetslearn's metadata, when a poetslearn export
    normalized: bool = False  # whether the metadata gave the input's normalization


def classifier_metadata(metadata: dict | None, files: dict[str, bytes]) -> ClassifierMetadata:
    """Labels and normalization from embedded metadata; for a model without any, no labels."""
    try:
        facts = json.loads(files[FACTS_FILE].decode("utf-8")) if FACTS_FILE in files else None
    except ValueError as e:  # UnicodeDecodeError is one
        raise GraphError(f"its {FACTS_FILE} is damaged ({e})") from e
    if metadata is None:
        return ClassifierMetadata(labels=None, facts=facts)
    subgraph = (metadata.get("subgraph_metadata") or [{}])[0]
    image = (subgraph.get("input_tensor_metadata") or [{}])[0]
    output = (subgraph.get("output_tensor_metadata") or [{}])[0]
    for unit in image.get("process_units", []):
        kind, options = unit.get("options", (None, {}))
        if kind == "NormalizationOptions" and options.get("mean") and options.get("std"):
            labels = _labels(output, files)
            return ClassifierMetadata(labels, options["mean"], options["std"], facts, True)
    return ClassifierMetadata(_labels(output, files), facts=facts)


def _labels(output: dict, files: dict[str, bytes]) -> list[str] | None:
    for associated in output.get("associated_files", []):
        if associated.get("type") != AXIS_LABELS:
            continue
        name = associated.get("name")
        if name not in files:
            raise GraphError(
                f"The model's metadata names the labels file {name!r}, which is not packed "
                f"in the model; pass --labels."
            )
        text = files[name].decode("utf-8")
        return [line.rstrip("\r") for line in text.split("\n") if line.strip()]
    return None
