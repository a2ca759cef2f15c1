"""The `.onnx` model's metadata, written and read back: the model carries it in its
metadata_props, `labels` (one per line), `preprocessing`, `input_format`, `input` for any ONNX
reader to show, and `poetslearn`, the whole metadata as JSON (the same facts as every other
artefact), which `label` and `evaluate` read."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from poetslearn.artifacts.metadata_check import checked_metadata
from poetslearn.errors import GraphError

FACTS_KEY = "poetslearn"


def is_onnx_file(path: Path) -> bool:
    return Path(path).suffix.lower() == ".onnx"


def onnx_metadata_props(meta: dict) -> dict[str, str]:
    """What an ONNX reader shows (strings only)."""
    return {
        "labels": "\n".join(meta["labels"]),
        "preprocessing": str(meta["preprocessing"]),
        "input_format": meta["input_format"],
        "input": meta["input"],
        FACTS_KEY: json.dumps(meta, ensure_ascii=False),
    }


def facts_from_props(props: dict[str, str], path: Path) -> dict:
    """poetslearn's metadata from a model's metadata_props, checked."""
    if FACTS_KEY not in props:
        raise GraphError(
            f"{path} carries no poetslearn metadata: `label` and `evaluate` read the .onnx "
            f"models `retrain --onnx_output` writes. Run this one with ONNX Runtime."
        )
    try:
        facts = json.loads(props[FACTS_KEY])
    except (ValueError, RecursionError) as e:
        raise GraphError(f"{path}'s poetslearn metadata is damaged ({e}); export it again.") from e
    return checked_metadata(facts, f"{path}'s poetslearn metadata", names_tensors=False)


@dataclass(frozen=True)
class OnnxFile:
    path: Path
    session: object  # an onnxruntime.InferenceSession
    facts: dict


def read_onnx(path: Path) -> OnnxFile:
    import onnxruntime

    path = Path(path)
    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - ONNX Runtime raises its own kinds
        raise GraphError(f"{path} cannot be loaded as an ONNX model ({e}).") from e
    return OnnxFile(
        path, session, facts_from_props(session.get_modelmeta().custom_metadata_map, path)
    )
