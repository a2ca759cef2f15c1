"""Measuring this machine on this data before planning: one batch of the data set's own images
loaded and run through a reference network (the planner scales the other networks from it), the
new layer's step timed at two widths, and what the bottleneck cache already holds."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from poetslearn.backbone.architectures import get_architecture
from poetslearn.backbone.load import fetch_backbone
from poetslearn.budget.costs import Rates, top_blocks_macs
from poetslearn.config import RetrainConfig
from poetslearn.context import RunContext
from poetslearn.data.sources import Dataset
from poetslearn.extract.extractor import build_extractor
from poetslearn.extract.shard_store import DAMAGED_SHARD_ERRORS
from poetslearn.train.head import HeadParams, train_output_layer

PROBE_IMAGES = 256
# Images loaded before the probe's loading is timed: the first load of a photo folder compiles
# the resize (4.6 ms an image over the probe, where the run loads at 0.6-1.0).
LOAD_WARM_UP = 8
# The engine's time per image: the median of repeated runs over the probe, after one that warms
# it up. One run is not enough on a shared host: the better of two half-second runs read 36.7
# GMAC/s where the run it planned went at twice that, and 72 where the run went at 44
# (BENCHMARKS.md, "`--time_budget` runs"). At least ENGINE_RUNS, then more until
# ENGINE_PROBE_SECONDS have passed, MAX_ENGINE_RUNS at most.
ENGINE_RUNS = 3
ENGINE_PROBE_SECONDS = 2.0
MAX_ENGINE_RUNS = 9
# Fine-tuning's step, timed on random activations: at least FINE_TUNE_STEPS after the one that
# traces it, more until FINE_TUNE_PROBE_SECONDS have passed. A real epoch also reads and decodes
# the cached activations: 0.77x the step alone (BENCHMARKS.md, "Training speed against the FP32
# peak").
FINE_TUNE_STEPS = 3
FINE_TUNE_PROBE_SECONDS = 1.5
CACHED_READ_SHARE = 0.77
HEAD_WIDTHS = (64, 1024)
HEAD_PROBE_ROWS = 16384
HEAD_PROBE_STEPS = (20, 120)  # a short run and a longer one: their difference is 100 steps


def _probe_indices(dataset: Dataset) -> list[int]:
    return list(range(min(PROBE_IMAGES, len(dataset.splits["train"]))))


def measure_rates(dataset: Dataset, config: RetrainConfig, reference: str, ctx: RunContext):
    """Rates of this machine on `dataset`, with `reference` as the network that is run."""
    timed = _time_extraction(dataset, config, reference, ctx)
    return Rates.from_reference(
        get_architecture(reference).million_macs,
        timed.engine_seconds,
        load_seconds=timed.load_seconds,
        build_seconds=timed.build_seconds,
        engine_build_seconds=timed.engine_build_seconds,
        loaded=frozenset({reference}),
        head_step_seconds=_head_step_seconds(len(dataset.class_names), config),
        extraction={reference: (timed.engine_seconds, timed.load_seconds)},
    )


def measure_extraction(
    dataset: Dataset, config: RetrainConfig, architecture: str, rates: Rates, ctx: RunContext
) -> Rates:
    """`rates` with `architecture`'s own extraction timed here on `dataset`. Scaled from the
    reference's by multiply-adds it erred by up to 1.6x: 0.50/128's bottlenecks were planned
    at 63 s from 0.50/224 and took 39 s (BENCHMARKS.md, "Again on another host")."""
    timed = _time_extraction(dataset, config, architecture, ctx)
    return rates.with_extraction(architecture, timed.engine_seconds, timed.load_seconds)


@dataclass(frozen=True)
class _Timed:
    engine_seconds: float  # per image, all cores
    load_seconds: float  # per image, all cores (several loading threads)
    build_seconds: float  # the weights imported and the engine built
    engine_build_seconds: float


def _time_extraction(dataset: Dataset, config: RetrainConfig, name: str, ctx) -> _Timed:
    """One batch of `dataset`'s training images loaded at `name`'s input size and run through
    its extraction engine (the one retrain builds)."""
    quiet = RunContext(lambda _: None, ctx.warn, False)
    started = time.perf_counter()
    config = replace(config, architecture=name, bottleneck_blocks=1)
    backbone = fetch_backbone(config, quiet)
    extractor = build_extractor(backbone=backbone, config=config, dataset=dataset, ctx=quiet)
    images, size = dataset.splits["train"].images, backbone.arch.input_size
    probe = _probe_indices(dataset)
    warming = time.perf_counter()
    images.load_batch(probe[:LOAD_WARM_UP], size)  # compiles the resize, opens the files
    loading = time.perf_counter()
    pixels, _ = images.load_batch(probe, size)
    pixels = extractor.prepare(pixels)
    load_seconds = (time.perf_counter() - loading) / len(probe)
    started += loading - warming  # neither counts as the network's build
    building = time.perf_counter()
    extractor(pixels[:8])  # builds the engine
    engine_build_seconds = time.perf_counter() - building
    build_seconds = time.perf_counter() - started - load_seconds * len(probe)
    engine_seconds = _engine_seconds(extractor, pixels) / len(probe)
    extractor.release_engines()
    return _Timed(engine_seconds, load_seconds, build_seconds, engine_build_seconds)


def _engine_seconds(extractor, pixels) -> float:
    """The engine's median time over `pixels` (see ENGINE_PROBE_SECONDS)."""
    extractor(pixels)  # warms it up
    runs, started = [], time.perf_counter()
    while len(runs) < ENGINE_RUNS or (
        len(runs) < MAX_ENGINE_RUNS and time.perf_counter() - started < ENGINE_PROBE_SECONDS
    ):
        start = time.perf_counter()
        extractor(pixels)
        runs.append(time.perf_counter() - start)
    return float(np.median(runs))


def measure_training_share(
    config: RetrainConfig, architecture: str, blocks: int, classes: int, rates: Rates, ctx
) -> float:
    """Fine-tuning `architecture`'s top `blocks` blocks here: the multiply-adds per second of
    the very step retrain runs, read from the cache as an epoch does, as a share of the engine's
    rate measured by `measure_rates`."""
    from poetslearn.backbone.cut import cut_backbone
    from poetslearn.train.fine_tuning.model import step_on_random_activations

    quiet = RunContext(lambda _: None, ctx.warn, False)
    backbone = fetch_backbone(replace(config, architecture=architecture), quiet)
    split = cut_backbone(backbone.arch, backbone.model, blocks)
    batch = config.fine_tune_batch_size
    step, x, y = step_on_random_activations(split, classes, batch)
    float(step(x, y)[0])  # traces the step
    steps, started = 0, time.perf_counter()
    while steps < FINE_TUNE_STEPS or time.perf_counter() - started < FINE_TUNE_PROBE_SECONDS:
        float(step(x, y)[0])
        steps += 1
    images_per_second = steps * batch / (time.perf_counter() - started)
    macs = 3 * top_blocks_macs(backbone.arch, blocks) * 1e6  # forward and both gradients
    return CACHED_READ_SHARE * images_per_second * macs / rates.macs_per_second


def _head_step_seconds(classes: int, config: RetrainConfig) -> tuple[float, float, float, float]:
    """Seconds of one step of the new layer at two widths, on random features: the difference
    of a short and a longer run, so the fixed costs of a run (standardising the features,
    choosing the kept step) do not count as steps."""
    rng = np.random.default_rng(0)
    timed = []
    for width in HEAD_WIDTHS:
        # As many rows as make the features outgrow the CPU's caches, as a data set's do: the
        # step's cost is mostly gathering its batch from them.
        x = rng.standard_normal((HEAD_PROBE_ROWS, width), dtype=np.float32)
        y = rng.integers(0, classes, HEAD_PROBE_ROWS)
        seconds = []
        for steps in HEAD_PROBE_STEPS:  # the better of two runs each: the first warms up
            params = HeadParams.from_config(config, steps, 100, validation_batch_size=-1)
            seconds.append(min(_head_run(x, y, classes, params) for _ in range(2)))
        steps = HEAD_PROBE_STEPS[1] - HEAD_PROBE_STEPS[0]
        timed += [width, max(seconds[1] - seconds[0], 1e-6) / steps]
    return tuple(timed)


def _head_run(x, y, classes: int, params: HeadParams) -> float:
    start = time.perf_counter()
    train_output_layer(x, y, x[:256], y[:256], classes, params, log=lambda *_: None)
    return time.perf_counter() - start


def cached_bottlenecks(bottleneck_dir: Path, keys: set[bytes]) -> dict[tuple[str, int], int]:
    """{(architecture, width): how many of `keys` the bottleneck cache holds}, from every
    folder of `bottleneck_dir` (the planner's estimate: the run itself checks each vector)."""
    held: dict[tuple[str, int], set[bytes]] = {}
    for shard in sorted(Path(bottleneck_dir).glob("*_*/shard-*.npz")):
        architecture = shard.parent.name.rsplit("_", 1)[0]  # <architecture>_<fingerprint>
        try:
            with np.load(shard, allow_pickle=False) as data:
                width = _stored_width(data)
                found = {k.tobytes() for k in data["keys"]}
        except DAMAGED_SHARD_ERRORS:  # the run itself reports it, and recomputes its rows
            continue
        held.setdefault((architecture, width), set()).update(found & keys)
    return {where: len(found) for where, found in held.items()}


def _stored_width(npz) -> int | None:
    """The vectors' width from the member's header, without reading the vectors."""
    fmt = np.lib.format
    with npz.zip.open("vectors.npy") as member:
        version = fmt.read_magic(member)
        read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, _, _ = read(member)
    return shape[1] if len(shape) == 2 else None
