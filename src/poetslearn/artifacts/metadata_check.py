"""Metadata a reader is handed is checked before anything uses it: a `.pb.json` edited by hand, a
`.tflite` whose embedded `poetslearn.json` was damaged, an ONNX model whose metadata_props were
rewritten by another tool. Every field `label` and `evaluate` read is checked for its type here,
once, so a bad file is one `GraphError` naming the field and the fix, never a KeyError or
TypeError from deep inside a classifier.

Only what is read is checked: other fields (accuracy, weights, training) are for people, and
files from earlier versions lack some fields, which keep their defaults.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from poetslearn.errors import GraphError

METADATA_FORMAT = "poetslearn-graph/1"
INPUT_FORMATS = ("pixels", "codelab")


def _text(value) -> bool:
    return isinstance(value, str) and value != ""


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _labels(value) -> bool:
    return (
        isinstance(value, list)
        and len(value) > 0
        and all(_text(label) and "\n" not in label and "\r" not in label for label in value)
    )


def _input_size(value) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 8192 for v in value)
    )


def _thresholds(value) -> bool:
    return isinstance(value, dict) and all(_number(t) for t in value.values())


def _dataset(value) -> bool:
    if not isinstance(value, dict):
        return False
    percentages = [value.get(k, 10.0) for k in ("validation_percentage", "testing_percentage")]
    return (
        all(_number(p) and 0 < p < 100 for p in percentages)
        and sum(percentages) < 100
        and isinstance(value.get("multi_label", False), bool)
    )


# Field -> (whether the value is usable, what it should be), for every field a reader uses.
FIELDS: dict[str, tuple[Callable[[object], bool], str]] = {
    "labels": (_labels, "a non-empty list of label names, one line each"),
    "input_size": (_input_size, "[height, width], two positive whole numbers"),
    "input_format": (lambda v: v in INPUT_FORMATS, "'pixels' or 'codelab'"),
    "input_mean": (_number, "a number"),
    "input_std": (lambda v: _number(v) and v != 0, "a number other than 0"),
    "input_tensor": (_text, "a tensor name such as 'input:0'"),
    "output_tensor": (_text, "a tensor name such as 'final_result:0'"),
    "thresholds": (_thresholds, "{label: number}"),
    "dataset": (_dataset, "the data set and its split percentages (each 0-100, summing under 100)"),
    "test_time_mirror": (lambda v: isinstance(v, bool), "true or false"),
}
ALWAYS = ("labels", "input_size")
# Fields only some models need: a graph names its tensors, the codelab format its scaling.
GRAPH_FIELDS = ("input_tensor", "output_tensor")
CODELAB_FIELDS = ("input_mean", "input_std")


def checked_metadata(meta: object, source: str, names_tensors: bool) -> dict:
    """`meta` when every field a reader uses is there and usable; else a GraphError that names
    the field. `names_tensors`: the metadata of a TensorFlow graph (input and output tensors)."""
    if not isinstance(meta, dict) or meta.get("format") != METADATA_FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise GraphError(
            f"{source} is not poetslearn metadata (format {found!r}, expected "
            f"{METADATA_FORMAT!r}); export the model again with `poetslearn retrain`."
        )
    needed = [*ALWAYS, *(GRAPH_FIELDS if names_tensors else ())]
    if meta.get("input_format") == "codelab":
        needed += CODELAB_FIELDS
    for name in needed:
        if name not in meta:
            raise GraphError(
                f"{source} has no {name!r} field; expected {FIELDS[name][1]}. Export the model "
                f"again, or restore the file written with it."
            )
    for name, value in meta.items():
        usable, expected = FIELDS.get(name, (None, ""))
        if usable is not None and not usable(value):
            raise GraphError(
                f"{source}: the {name!r} field is {_shown(value)}; expected {expected}. Export "
                f"the model again, or restore the file written with it."
            )
    return meta


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
