"""The activations where the frozen part of the network ends, for fine-tuning: read from the
activation cache, the missing ones computed by the run's extraction backend (this process, or a
Ray cluster) and stored as they arrive, by the same fill loop as the bottlenecks."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from poetslearn.backbone.cut import ActivationCodec, CutBackbone
from poetslearn.clock import OutOfTime
from poetslearn.config import RetrainConfig
from poetslearn.context import RunContext
from poetslearn.extract.activation_cache import ActivationCache, ActivationReader
from poetslearn.extract.backends import ExtractionBackend, NodeCounts
from poetslearn.extract.extractor import FeatureExtractor
from poetslearn.extract.fill import fill_cache, plan_work

# A damaged segment found on verification is recomputed; a disk that keeps damaging what was just
# written is not worth looping on.
_ATTEMPTS = 2


def _bottom_extractor(extractor: FeatureExtractor, split: CutBackbone, warn) -> FeatureExtractor:
    """The frozen part, described like the extractor but cut where it ends: a Ray worker builds
    the same one from its description."""
    engine = extractor.requested_engine if extractor.exact else "auto"
    spec = replace(
        extractor.description,
        engine=engine,
        cut=split.cut,
        int8_calibration=None,
        bottleneck_blocks=1,
    )
    return FeatureExtractor(
        extractor.arch, split.bottom, engine, warn, cut=split.cut, description=spec
    )


def get_or_create_activations(
    splits: dict,
    split: CutBackbone,
    extractor: FeatureExtractor,
    config: RetrainConfig,
    backend: ExtractionBackend,
    ctx: RunContext,
) -> dict[str, ActivationReader]:
    """A reader per split of the activations at the cut, computing the ones not cached yet; every
    segment is verified before its first use (a damaged one is computed again)."""
    bottom = _bottom_extractor(extractor, split, ctx.warn)
    cache = ActivationCache(
        config.bottleneck_dir,
        extractor.arch.name,
        bottom.fingerprint,
        split.activation_shape,
        ActivationCodec.for_architecture(extractor.arch),
        ctx.warn,
    )
    keys_of = {name: s.images.keys() for name, s in splits.items()}
    computed, by_node = 0, NodeCounts()
    for _ in range(_ATTEMPTS):
        found = {
            name: np.array([key in cache for key in keys], bool) for name, keys in keys_of.items()
        }
        plan = plan_work(keys_of, found, config.bottleneck_batch_size)
        if plan.count:
            cache.check_room(plan.count, ctx.log)
        filled = fill_cache(
            plan,
            splits,
            keys_of,
            cache,
            bottom,
            backend,
            "Computing activations",
            ctx.show_progress,
            ctx.warn,
            stop=None if ctx.clock is None else ctx.clock.passed,
        )
        if filled.stopped:  # what is done stays cached; fine-tuning needs every image's
            raise OutOfTime("the activations were not all computed in time")
        computed += plan.count
        for node, count in filled.by_node.items():
            by_node[node] = by_node.get(node, 0) + count
        if not cache.verify([key for keys in keys_of.values() for key in keys]):
            break
    total = sum(len(s) for s in splits.values())
    ctx.log(
        f"Activations at {split.cut} ({'x'.join(map(str, split.activation_shape))}): "
        f"computed {computed:,}, {total - computed:,} were cached. Cache: {cache.dir}"
    )
    if by_node:
        ctx.log(by_node.describe("Activations"))
    return {name: cache.reader(keys) for name, keys in keys_of.items()}
