"""What a plan costs on this machine: the rates measured on this data (`measure`), the shape of
each network (its multiply-adds, and for MobileNet each block's), and the seconds each stage of
a plan should take from them.

Extraction time scales with a network's multiply-adds from the networks timed, plus the images'
loading, which shares the cores with the engine, plus the bytes the cache is written.
Fine-tuning a block costs about three times its forward pass per image (forward, and the
gradients of inputs and weights), at the share of the engine's rate that training reaches:
BENCHMARKS.md, "Training speed against the FP32 peak", has the step alone at 0.50/224 K=4 (560
img/s x 3 x 46 M multiply-adds) at about the engine's own rate (545 img/s x 150 M) and at
0.25/128 at 0.65 of it; a real run reads the cached activations too, 0.77x the step alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from poetslearn.backbone.architectures import Architecture, get_architecture

# The part of the default network's time per image that does not shrink with a smaller network:
# BENCHMARKS.md's full runs read 4,060-4,194 img/s at 0.25/128 (14 M multiply-adds) and 530-554
# at 0.50/224 (150 M), 7.5x apart for 10.7x the work, which 15% of 0.50/224's time, fixed,
# explains (the CIFAR-10 budget runs of 0.50/128 confirm it).
ENGINE_OVERHEAD_SHARE = 0.15
# Fine-tuning's multiply-adds per second as a share of the engine's rate, for the plans whose
# own step was not timed (`measure.measure_training_share`, run before one is chosen).
TRAINING_SHARE = 0.6
# The frozen graph, labels and metadata: 0.6-2 s in every BENCHMARKS.md budget run (14 runs,
# two hosts), with room for a slow disk.
EXPORT_SECONDS = 2.0
EXTRA_EXPORT_SECONDS = 15.0  # each further format asked for (SavedModel, TFLite, ONNX)
# Filling a cache costs beyond the engine the probe times: each vector's or activation map's
# bytes encoded, checksummed and written. About 12 s a GB on the Xeon of BENCHMARKS.md ("More
# fine-tuned blocks"): 0.75/128's activations took 39 s at 24.6 KB an image and 48 s at 49 KB
# where its network below the cut was planned at 21 and 15, and its 14 pooled blocks'
# bottlenecks (18 KB an image) 58 s where 42 were planned.
CACHE_SECONDS_PER_GB = 12.0
# MobileNet v1's 13 separable blocks: (depthwise stride, output channels at alpha 1).
MOBILENET_BLOCKS = (
    (1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512),
    (1, 512), (1, 512), (1, 512), (1, 512), (1, 512), (2, 1024), (1, 1024),
)  # fmt: skip


@dataclass(frozen=True)
class Rates:
    """This machine on this data, measured by `measure.measure_rates`."""

    macs_per_second: float  # the engine's multiply-adds per second on all cores
    # One image read and resized: the wall time of loading a batch by several threads, on
    # all cores, as the pipeline loads it beside the engine.
    load_seconds: float
    build_seconds: float  # a network loaded (its weights imported) and its engine built
    head_step_seconds: tuple[float, float, float, float]  # (width a, seconds a, width b, b)
    engine_overhead: float = 0.0  # seconds per image whatever the network's size
    # (architecture, fine-tuned blocks) -> fine-tuning's share of the engine's rate, measured
    # (`measure.measure_training_share`); TRAINING_SHARE for the others.
    training_shares: dict = field(default_factory=dict)
    engine_build_seconds: float = 0.0  # the part of build_seconds that builds the engine
    # Networks this process has loaded already: their weights' import is cached, so the run's
    # own load costs a fraction of a second and only the engine is built again.
    loaded: frozenset = frozenset()
    # architecture -> (engine seconds, loading seconds) per image on all cores, for each
    # network whose extraction was timed here (the reference first).
    extraction: dict = field(default_factory=dict)

    def build_seconds_for(self, architecture: str) -> float:
        if architecture in self.loaded:
            return self.engine_build_seconds
        return self.build_seconds

    def training_share(self, architecture: str, blocks) -> float:
        return self.training_shares.get((architecture, blocks), TRAINING_SHARE)

    def with_training_share(self, architecture: str, blocks, share: float) -> Rates:
        """These rates with `share` measured for fine-tuning `blocks` of `architecture`; timing
        its step loaded that network, so it counts as loaded too."""
        shares = {**self.training_shares, (architecture, blocks): share}
        return replace(self, training_shares=shares, loaded=self.loaded | {architecture})

    def with_extraction(self, architecture: str, engine: float, load: float) -> Rates:
        """These rates with `architecture`'s extraction timed: `engine` and `load` seconds per
        image. Timing it loaded that network, so it counts as loaded too."""
        extraction = {**self.extraction, architecture: (engine, load)}
        return replace(self, extraction=extraction, loaded=self.loaded | {architecture})

    @classmethod
    def from_reference(cls, macs: float, engine_seconds: float, **measured) -> Rates:
        """The rates from one network of `macs` million multiply-adds taking `engine_seconds`
        an image: a share of that (ENGINE_OVERHEAD_SHARE) does not scale with the network."""
        overhead = ENGINE_OVERHEAD_SHARE * engine_seconds
        rate = macs * 1e6 / (engine_seconds - overhead)
        return cls(macs_per_second=rate, engine_overhead=overhead, **measured)

    def extraction_seconds(self, arch: Architecture, share: float = 1.0) -> float:
        """Seconds per image for `arch`'s bottleneck: the engine (`share` of the network: the
        part below a fine-tuning cut), and the loading beside it; as timed where it was, else
        scaled by multiply-adds from the networks timed."""
        engine, load = self.extraction.get(arch.name, (None, self.load_seconds))
        if engine is None:
            engine = self._scaled_engine_seconds(arch.million_macs)
        return engine * share + load

    def _scaled_engine_seconds(self, million_macs: float) -> float:
        """The engine's seconds per image for a network of `million_macs`: from the reference
        alone, a fixed share (ENGINE_OVERHEAD_SHARE) and the rest in proportion; from two or
        more networks timed, the least-squares line through them (never below zero at zero
        work, never falling with more work)."""
        proportional = self.engine_overhead + million_macs * 1e6 / self.macs_per_second
        timed = {get_architecture(n).million_macs: e for n, (e, _) in self.extraction.items()}
        if len(timed) < 2:
            return proportional
        macs, seconds = np.array(list(timed)), np.array(list(timed.values()))
        slope, intercept = np.polyfit(macs, seconds, 1)
        if slope <= 0:
            return proportional
        if intercept < 0:  # through the origin instead
            slope, intercept = float(macs @ seconds / (macs @ macs)), 0.0
        return float(intercept + slope * million_macs)

    def head_seconds(self, width: int, steps: int) -> float:
        """The new layer's training at `width` features (linear between the two widths timed)."""
        wa, sa, wb, sb = self.head_step_seconds
        per_step = sa + (sb - sa) * (width - wa) / (wb - wa)
        return steps * max(per_step, 0.2 * sa)


def _mobilenet_layers(arch: Architecture) -> list[tuple[int, int, float]]:
    """(output side, output channels, million multiply-adds) of the stem and each block."""
    alpha, side = arch.alpha or 1.0, arch.input_size // 2
    channels = int(32 * alpha)
    layers = [(side, channels, side * side * 27 * channels / 1e6)]
    for stride, width in MOBILENET_BLOCKS:
        out, side = int(width * alpha), side // stride
        layers.append((side, out, side * side * (9 * channels + channels * out) / 1e6))
        channels = out
    return layers


def mobilenet_shape(arch: Architecture) -> list[tuple[int, float]]:
    """(output channels, million multiply-adds) of the stem and each of the 13 blocks."""
    return [(channels, macs) for _, channels, macs in _mobilenet_layers(arch)]


def is_mobilenet(arch: Architecture) -> bool:
    return arch.family == "mobilenet_v1"


def bottleneck_width(arch: Architecture, blocks: int) -> int:
    """The width of a bottleneck made of the top `blocks` blocks' pooled outputs."""
    if blocks == 1 or not is_mobilenet(arch):
        return arch.feature_dim
    return sum(c for c, _ in mobilenet_shape(arch)[-blocks:])


def bottleneck_bytes(arch: Architecture, blocks: int) -> int:
    """One image's bottleneck in the cache: float32."""
    return 4 * bottleneck_width(arch, blocks)


def activation_bytes(arch: Architecture, blocks: int) -> int:
    """One image's activation map in the cache, one byte a value: what the top `blocks` blocks
    take in (of another family: 0, not known here)."""
    if not is_mobilenet(arch):
        return 0
    side, channels, _ = _mobilenet_layers(arch)[-1 - blocks]  # the last layer under the cut
    return side * side * channels


def cache_seconds(count: int, bytes_each: int) -> float:
    return count * bytes_each * CACHE_SECONDS_PER_GB / 1e9


def top_blocks_macs(arch: Architecture, blocks: int) -> float:
    """Million multiply-adds of the top `blocks` blocks, the part fine-tuning trains (of
    another family: the whole network's, an upper bound)."""
    if not is_mobilenet(arch):
        return arch.million_macs
    return sum(m for _, m in mobilenet_shape(arch)[-blocks:])


def export_seconds(config) -> float:
    extra = [config.saved_model_dir, config.tflite_output, config.onnx_output]
    return EXPORT_SECONDS + EXTRA_EXPORT_SECONDS * sum(x is not None for x in extra)
