"""Fetching the pretrained network `retrain` takes features from: an architecture of the registry
with its weights (found, downloaded or imported by `weights`), or a TF Hub module."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from poetslearn.backbone.architectures import Architecture, get_architecture
from poetslearn.backbone.tfhub import hub_architecture
from poetslearn.backbone.weights import WeightsInfo, build_backbone
from poetslearn.context import warn_on_stderr
from poetslearn.quiet import import_tensorflow

if TYPE_CHECKING:  # the stage signature's types
    from poetslearn.config import RetrainConfig
    from poetslearn.context import RunContext


@dataclass
class Backbone:
    arch: Architecture
    model: object  # [N, s, s, 3] scaled floats -> [N, feature_dim] (a Keras model or hub module)
    weights: WeightsInfo

    def describe(self) -> str:
        arch = self.arch
        return (
            f"Architecture {arch.name}: {arch.input_size}x{arch.input_size} input, "
            f"{arch.feature_dim} features; weights: {self.weights.description}"
            + (f" (sha256 {self.weights.sha256})" if self.weights.sha256 else "")
        )


RANDOM_WEIGHTS_WARNING = (
    "Warning: --weights none uses random weights; the classifier will be "
    "far worse than with ImageNet weights. Use it for quick tests only."
)


def load_backbone(
    architecture: str,
    weights: str = "imagenet",
    model_dir: Path = Path("."),
    seed: int = 0,
    allow_size_mismatch: bool = False,
    tfhub_module: str | None = None,
    image_size: int | None = None,
    warn=warn_on_stderr,
) -> Backbone:
    """The TF Hub module when one is named, else the architecture with its weights."""
    import_tensorflow()  # the first import: without its start-up lines
    if tfhub_module:
        return Backbone(*hub_architecture(tfhub_module, image_size))
    arch = get_architecture(architecture)
    model, info = build_backbone(arch, weights, model_dir, seed, allow_size_mismatch, warn)
    return Backbone(arch, model, info)


def fetch_backbone(config: RetrainConfig, ctx: RunContext) -> Backbone:
    """The retrain stage: the backbone `config` asks for, announced (and warned about)."""
    backbone = load_backbone(
        config.architecture,
        config.weights,
        config.model_dir,
        config.seed,
        config.allow_size_mismatch,
        config.tfhub_module,
        config.image_size,
        ctx.warn,
    )
    ctx.log(backbone.describe())
    if backbone.weights.kind == "random":
        ctx.warn(RANDOM_WEIGHTS_WARNING)
    return backbone
