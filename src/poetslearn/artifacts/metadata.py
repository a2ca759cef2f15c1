"""The metadata that travels with every exported model: one set of facts, one builder, one
naming rule.

Every artefact (frozen graph, TFLite model) gets its metadata from `build_metadata(facts, kind)`,
so the data set, its split percentages, the labels and the preprocessing are recorded the same
way everywhere and `evaluate` cuts the same test split whichever model it is given. The file sits
beside the artefact under the artefact's whole name plus `.json` (`model.pb` -> `model.pb.json`,
`model.tflite` -> `model.tflite.json`): two artefacts never share one. Earlier versions wrote
`model.json` for both; `read_metadata` still reads that name, and only when it describes this
kind of artefact.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from poetslearn import __version__
from poetslearn.artifacts.metadata_check import METADATA_FORMAT, checked_metadata
from poetslearn.errors import GraphError

INPUT_NAME = "input"
OUTPUT_NAME = "final_result"
BOTTLENECK_NAME = "bottleneck"
# --input_format codelab: what the codelab's label_image.py flags and Android apps use.
CODELAB_MEAN, CODELAB_STD = 128.0, 128.0


def input_scaling(input_format: str) -> tuple[float, float]:
    """(mean, std) that turn pixels 0..255 into the input of a model of `input_format`."""
    return (CODELAB_MEAN, CODELAB_STD) if input_format == "codelab" else (0.0, 1.0)


def recorded_scaling(meta: dict) -> tuple[float, float]:
    """(mean, std) as checked metadata records them: the codelab format's own, else none."""
    if meta.get("input_format") == "codelab":
        return float(meta["input_mean"]), float(meta["input_std"])
    return 0.0, 1.0


@dataclass(frozen=True)
class ModelFacts:
    """What is true of the trained classifier whatever file it is written to."""

    architecture: str
    input_size: int
    preprocessing: str
    input_format: str  # "pixels" or "codelab"
    labels: list[str]
    feature_dim: int
    bottleneck_blocks: int = 1
    pooled_layers: list[str] = field(default_factory=list)
    run: dict = field(default_factory=dict)  # data set and split, weights, accuracy, training
    # Multi-label: a sigmoid per label, and the threshold per label chosen on validation
    # (`label` prints every label at or above its own).
    thresholds: list[float] | None = None
    # --test_time_mirror: the model averages each image's features with its mirror image's.
    test_time_mirror: bool = False

    def output_facts(self) -> dict:
        """What the output means: softmax over the labels, or a probability per label."""
        if self.thresholds is None:
            return {"multi_label": False, "output": "softmax over the labels"}
        return {
            "multi_label": True,
            "output": "sigmoid: an independent probability per label",
            "thresholds": {label: float(t) for label, t in zip(self.labels, self.thresholds)},
        }


@dataclass(frozen=True)
class ArtifactKind:
    """How one kind of exported file takes its input, and what only it records."""

    name: str
    fixed_size: bool  # [batch, s, s, 3] only: the caller resizes
    tensors: bool  # names its input, output and bottleneck tensors (a TensorFlow graph)
    batch: str = "1"  # how many images one call takes, for the input's description


ARTIFACTS = {
    kind.name: kind
    for kind in (
        ArtifactKind("frozen_graph", fixed_size=False, tensors=True),
        ArtifactKind("tflite", fixed_size=True, tensors=False),
        ArtifactKind("onnx", fixed_size=True, tensors=False, batch="N"),
    )
}


def metadata_path_for(artifact: Path) -> Path:
    """`tf_files/retrained_graph.pb` -> `tf_files/retrained_graph.pb.json`."""
    artifact = Path(artifact)
    return artifact.with_name(artifact.name + ".json")


def legacy_metadata_path_for(artifact: Path) -> Path:
    """The name versions before 0.2 used for every artefact: the suffix replaced by `.json`."""
    artifact = Path(artifact)
    return artifact.with_name(artifact.stem + ".json")


def input_facts(facts: ModelFacts, kind: ArtifactKind) -> dict:
    """What the metadata says about the model's input, for `label` and for people."""
    size = facts.input_size
    if facts.input_format == "codelab":
        return {
            "input_format": "codelab",
            "input_mean": CODELAB_MEAN,
            "input_std": CODELAB_STD,
            "input": f"RGB, float32, [{kind.batch}, {size}, {size}, 3], resized by the caller "
            f"and scaled "
            f"as (x - {CODELAB_MEAN:g}) / {CODELAB_STD:g} (label_image.py "
            f"--input_mean {CODELAB_MEAN:g} --input_std {CODELAB_STD:g})",
        }
    if kind.fixed_size:
        return {
            "input_format": "pixels",
            "input": f"RGB pixels, float32 0..255, [{kind.batch}, {size}, {size}, 3] (resize "
            f"before feeding)",
        }
    return {
        "input_format": "pixels",
        "input": "RGB pixels, float32 0..255, [N, H, W, 3], any size (resized inside the graph)",
    }


def build_metadata(facts: ModelFacts, kind: str, **extra) -> dict:
    """The metadata of one artefact of `kind` ("frozen_graph" or "tflite"); `extra` holds what
    only that file knows (its labels file's name, its quantization)."""
    artifact = ARTIFACTS[kind]
    tensors = (
        {
            "input_tensor": f"{INPUT_NAME}:0",
            "output_tensor": f"{OUTPUT_NAME}:0",
            "bottleneck_tensor": f"{BOTTLENECK_NAME}:0",
        }
        if artifact.tensors
        else {}
    )
    return {
        "format": METADATA_FORMAT,
        "artifact": kind,
        "poetslearn_version": __version__,
        "architecture": facts.architecture,
        "input_size": [facts.input_size, facts.input_size],
        **tensors,
        "feature_dim": facts.feature_dim,
        "bottleneck_blocks": facts.bottleneck_blocks,
        **({"pooled_layers": list(facts.pooled_layers)} if facts.bottleneck_blocks > 1 else {}),
        **input_facts(facts, artifact),
        "preprocessing": facts.preprocessing,
        "labels": list(facts.labels),
        **facts.output_facts(),
        "test_time_mirror": facts.test_time_mirror,
        **extra,
        **facts.run,
    }


def metadata_bytes(meta: dict) -> bytes:
    return (json.dumps(meta, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _describes(meta: dict, kind: str) -> bool:
    """Whether metadata (of any version) is that of an artefact of `kind`: files from before
    the `artifact` field tell by their fields (only graphs named tensors)."""
    if "artifact" in meta:
        return meta["artifact"] == kind
    return ("input_tensor" in meta) == ARTIFACTS[kind].tensors


def _parsed(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
        raise GraphError(
            f"The metadata file {path} cannot be read ({e}); delete it to treat "
            f"the graph as a codelab graph, or export it again."
        ) from e


def read_metadata(artifact: Path, kind: str) -> dict | None:
    """The metadata of `artifact`, from its own file or the name earlier versions used, checked;
    None when there is none (a codelab graph). An old-named file that describes another kind of
    artefact (both exports once wrote `model.json`, the later replacing the earlier) is an error
    that says so, never metadata applied to the wrong model."""
    names_tensors = ARTIFACTS[kind].tensors
    path = metadata_path_for(artifact)
    if path.is_file():
        return checked_metadata(_parsed(path), str(path), names_tensors)
    legacy = legacy_metadata_path_for(artifact)
    if not legacy.is_file():
        return None
    meta = _parsed(legacy)
    if (
        isinstance(meta, dict)
        and meta.get("format") == METADATA_FORMAT
        and not _describes(meta, kind)
    ):
        other = meta.get("artifact") or ("frozen graph" if "input_tensor" in meta else "tflite")
        raise GraphError(
            f"{legacy} describes a {other} model, not {artifact}: an earlier poetslearn wrote the "
            f"metadata of both exports to that one file. Export again with this version (it "
            f"writes {path.name} beside it)."
        )
    return checked_metadata(meta, str(legacy), names_tensors)
