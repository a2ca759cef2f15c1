"""The feature extractor: raw RGB pixels in, bottleneck vectors out.

Resizing and scaling live here, inside the TensorFlow function, so every caller (bottleneck
extraction, the exported graph, `label`) feeds plain 0..255 pixels of any size.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from poetslearn.backbone.architectures import Architecture
from poetslearn.backbone.block_features import (
    pooled_layers,
    resolve_bottleneck_blocks,
    with_block_features,
)
from poetslearn.backbone.cut import cut_at
from poetslearn.backbone.load import Backbone, load_backbone
from poetslearn.backbone.weights import weights_fingerprint
from poetslearn.context import warn_on_stderr
from poetslearn.data.images import resize_batch
from poetslearn.data.sources import calibration_images
from poetslearn.errors import EngineError, WeightsError
from poetslearn.extract.engine_choice import first_working_engine
from poetslearn.extract.engines import ENGINE_CHOICES, is_exact
from poetslearn.memory import return_freed_memory

if TYPE_CHECKING:  # the stage signature's types
    from poetslearn.config import RetrainConfig
    from poetslearn.context import RunContext
    from poetslearn.data.sources import Dataset

log = logging.getLogger(__name__)

# Bump when anything about how vectors are computed changes, to invalidate every cached vector.
EXTRACTOR_VERSION = 1


@dataclass(frozen=True)
class ExtractorSpec:
    """Everything needed to build the same extractor in any process, on any machine: plain
    values only (a worker receives this, never a live model). Equal specs build extractors with
    equal fingerprints, so their vectors share one cache."""

    architecture: str
    weights: str = "none"  # "none" (seeded random) or the weights file's path
    weights_sha256: str | None = None  # checked before the file is used
    seed: int = 0
    allow_size_mismatch: bool = False
    tfhub_module: str | None = None
    image_size: int | None = None
    engine: str = "auto"
    threads: int | None = None  # engine threads; None: all of the machine's cores
    # Where the frozen part of the network ends (None: the whole backbone, the bottleneck).
    cut: str | None = None
    # How many of the top blocks' pooled outputs make each bottleneck (`block_features`).
    bottleneck_blocks: int = 1
    int8_calibration: np.ndarray | None = field(default=None, compare=False, repr=False)

    def build(self, warn=warn_on_stderr) -> FeatureExtractor:
        backbone = load_backbone(
            self.architecture,
            self.weights,
            Path("."),
            self.seed,
            self.allow_size_mismatch,
            self.tfhub_module,
            self.image_size,
            warn,
        )
        if self.weights_sha256 and backbone.weights.sha256 != self.weights_sha256:
            raise WeightsError(
                f"{self.weights} has sha256 {backbone.weights.sha256}, not the "
                f"{self.weights_sha256} this extractor was described with; the "
                f"file changed. Give every machine the same weights file."
            )
        model = backbone.model if self.cut is None else cut_at(backbone.model, self.cut).bottom
        return FeatureExtractor(
            backbone.arch,
            model,
            self.engine,
            warn,
            self.int8_calibration,
            self.threads,
            description=self,
            cut=self.cut,
            bottleneck_blocks=self.bottleneck_blocks,
        )


def extractor_spec(
    backbone: Backbone,
    engine: str,
    seed: int = 0,
    allow_size_mismatch: bool = False,
    image_size: int | None = None,
    int8_calibration: np.ndarray | None = None,
    bottleneck_blocks: int = 1,
) -> ExtractorSpec:
    """The spec of an extractor over `backbone`: its weights pinned to a file and hash."""
    info = backbone.weights
    if info.kind == "tfhub":
        return ExtractorSpec(
            backbone.arch.name,
            "none",
            None,
            seed,
            False,
            info.path,
            image_size or backbone.arch.input_size,
            engine,
            int8_calibration=int8_calibration,
        )
    weights = info.path if info.path else "none"
    return ExtractorSpec(
        backbone.arch.name,
        weights,
        info.sha256,
        seed,
        allow_size_mismatch,
        engine=engine,
        int8_calibration=int8_calibration,
        bottleneck_blocks=bottleneck_blocks,
    )


def build_extractor(
    backbone: Backbone, config: RetrainConfig, dataset: Dataset, ctx: RunContext
) -> FeatureExtractor:
    """The retrain stage: the extractor over `backbone` with the engine `config` asks for; an
    approximate (int8) engine is calibrated on 100 training images."""
    calibration = None
    if not is_exact(config.engine):
        calibration = calibration_images(dataset.splits["train"], backbone.arch.input_size)
    blocks = resolve_bottleneck_blocks(backbone.arch, config.bottleneck_blocks)
    spec = extractor_spec(
        backbone,
        config.engine,
        config.seed,
        config.allow_size_mismatch,
        config.image_size,
        calibration,
        blocks,
    )
    extractor = FeatureExtractor(
        backbone.arch,
        backbone.model,
        config.engine,
        ctx.warn,
        calibration,
        description=spec,
        bottleneck_blocks=blocks,
    )
    if blocks > 1:
        ctx.log(
            f"Bottlenecks: the pooled outputs of the top {blocks} blocks "
            f"({', '.join(pooled_layers(backbone.arch, blocks))}), {extractor.feature_dim} "
            f"values each."
        )
    return extractor


class FeatureExtractor:
    """Wraps a backbone with its preprocessing; `extractor(pixels)` gives bottlenecks.

    `features` is the TensorFlow function (what the exported graph holds). Calling the extractor
    runs the chosen engine: with "auto", the first of the architecture's fast engines (TFLite or
    ONNX Runtime) that builds and agrees with TensorFlow on the first batch of each input size,
    else TensorFlow itself.
    """

    def __init__(
        self,
        arch: Architecture,
        backbone,
        engine: str = "tf",
        warn=warn_on_stderr,
        int8_calibration: np.ndarray | None = None,
        threads: int | None = None,
        description: ExtractorSpec | None = None,
        cut: str | None = None,
        bottleneck_blocks: int | str = 1,
    ) -> None:
        """`cut`: `backbone` is only the network's bottom, up to that layer (its activations,
        [N, h, w, c], are what it gives); None: the whole backbone, giving bottlenecks, made
        from the pooled outputs of its top `bottleneck_blocks` blocks (`block_features`)."""
        import tensorflow as tf

        if engine not in ENGINE_CHOICES:
            raise EngineError(
                f"--engine must be one of {', '.join(ENGINE_CHOICES)}; got {engine!r}."
            )
        # Approximate engines (int8) give other vectors: they need calibration images, and the
        # cache keeps their vectors apart (see `fingerprint`).
        self.exact = is_exact(engine)
        if not self.exact and (int8_calibration is None or len(int8_calibration) == 0):
            raise EngineError(f"The {engine} engine needs calibration images; none were given.")
        self.int8_calibration = None if self.exact else np.asarray(int8_calibration, np.float32)
        self.bottleneck_blocks = 1 if cut else resolve_bottleneck_blocks(arch, bottleneck_blocks)
        backbone = with_block_features(arch, backbone, self.bottleneck_blocks)
        self.arch, self.backbone, self.threads, self.cut = arch, backbone, threads, cut
        self.feature_dim = int(backbone.output_shape[-1])
        if cut is None and self.bottleneck_blocks == 1 and self.feature_dim != arch.feature_dim:
            raise ValueError(
                f"{arch.name} backbone gives {self.feature_dim} features, the "
                f"registry says {arch.feature_dim}"
            )
        self.fn = tf.function(
            self.features,
            input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name="input")],
        )
        self.requested_engine = engine
        # Decided on the first call, unless TensorFlow itself was asked for.
        self.engine_name: str | None = "tf" if engine == "tf" else None
        self._engines: dict[tuple[int, int], object] = {}  # engine per input size
        self._warn = warn
        self._fingerprint: str | None = None
        self.description = description or ExtractorSpec(
            arch.name, engine=engine, threads=threads, bottleneck_blocks=self.bottleneck_blocks
        )

    def features(self, images):
        """[N, H, W, 3] float32 0..255 -> [N, feature_dim] float32 bottlenecks."""
        return self.backbone(self.arch.preprocess(images), training=False)

    def prepare(self, images: np.ndarray) -> np.ndarray:
        """Shrinks images larger than the input size (antialiased, as the graph does).

        Smaller images are left alone: every engine enlarges them itself, on all cores. This
        runs in the thread that loads the next batch.
        """
        size = self.arch.input_size
        images = np.asarray(images, np.float32)
        if images.shape[1] <= size and images.shape[2] <= size:
            return images
        return resize_batch(images, (size, size))

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """[N, H, W, 3] float32 0..255 -> [N, feature_dim] float32 bottlenecks."""
        images = self.prepare(images)
        shape = tuple(images.shape[1:3])
        engine = self._engines.get(shape)
        if engine is None:
            engine = self._engines[shape] = self._build_engine(images)
        return engine(images)

    def release_engines(self) -> None:
        """Frees the engines (their models and buffers); a later call builds them again."""
        self._engines.clear()
        return_freed_memory()

    def _build_engine(self, sample: np.ndarray):
        """The first engine that builds for this input size and agrees with TensorFlow."""
        try:
            self.engine_name, engine = first_working_engine(self, sample, self._warn)
            return engine
        finally:
            return_freed_memory()  # conversion buffers and the check's activations

    def accuracy_caveat(self) -> str | None:
        """What to know about accuracies measured on this extractor's vectors, if anything."""
        if self.exact:
            return None
        return (
            f"Note: these accuracies are on {self.engine_name} bottlenecks. The exported "
            f"float graph computes float features, which the new layer was not trained on, "
            f"and scores lower (3 points on CIFAR-10 at mobilenet_0.50_224); the int8 TFLite "
            f"model (--tflite_output FILE --tflite_quantize int8) matches these figures. "
            f"Measure either with `poetslearn evaluate --graph FILE`."
        )

    @property
    def fingerprint(self) -> str:
        """Identifies everything that changes a vector: architecture, preprocessing, weights."""
        if self._fingerprint is None:
            facts = {
                "architecture": self.arch.name,
                "preprocessing": self.arch.preprocessing,
                "version": EXTRACTOR_VERSION,
                "weights": weights_fingerprint(self.backbone),
            }
            if self.cut is not None:  # activations at a cut, not bottlenecks
                facts["cut"] = self.cut
            if self.bottleneck_blocks > 1:  # one block keeps the keys every cache already has
                facts["pooled_layers"] = list(pooled_layers(self.arch, self.bottleneck_blocks))
            if not self.exact:  # exact engines share vectors; an approximate one has its own
                facts["engine"] = self.requested_engine
                facts["calibration"] = hashlib.sha256(self.int8_calibration.tobytes()).hexdigest()
            self._fingerprint = hashlib.sha256(
                json.dumps(facts, sort_keys=True).encode()
            ).hexdigest()
        return self._fingerprint
