"""Measuring this machine on this data before planning: one batch of the data set's own images
loaded and run through a reference network (the planner scales the other networks from it), the
new layer's step timed at two widths, and what the bottleneck cache already holds."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from poetslearn.backbone.load import fetch_backbone
from poetslearn.budget.costs import Rates
from poetslearn.config import RetrainConfig
from poetslearn.context import RunContext
from poetslearn.data.sources import Dataset
from poetslearn.extract.extractor import build_extractor
from poetslearn.train.head import HeadParams, train_output_layer

PROBE_IMAGES = 128
HEAD_WIDTHS = (256, 2048)
HEAD_PROBE_STEPS = 30


def _probe_indices(dataset: Dataset) -> list[int]:
    return list(range(min(PROBE_IMAGES, len(dataset.splits["train"]))))


def measure_rates(dataset: Dataset, config: RetrainConfig, reference: str, ctx: RunContext):
    """Rates of this machine on `dataset`, with `reference` as the network that is run."""
    quiet = RunContext(lambda _: None, ctx.warn, False)
    started = time.perf_counter()
    config = replace(config, architecture=reference, bottleneck_blocks=1)
    backbone = fetch_backbone(config, quiet)
    extractor = build_extractor(backbone=backbone, config=config, dataset=dataset, ctx=quiet)
    images, size = dataset.splits["train"].images, backbone.arch.input_size
    probe = _probe_indices(dataset)
    loading = time.perf_counter()
    pixels, _ = images.load_batch(probe, size)
    pixels = extractor.prepare(pixels)
    load_seconds = (time.perf_counter() - loading) / len(probe)
    extractor(pixels[:8])  # builds the engine
    build_seconds = time.perf_counter() - started - load_seconds * len(probe)
    running = time.perf_counter()
    extractor(pixels)
    engine_seconds = (time.perf_counter() - running) / len(probe)
    extractor.release_engines()
    return Rates(
        macs_per_second=backbone.arch.million_macs * 1e6 / engine_seconds,
        load_seconds=load_seconds,
        cores=os.cpu_count() or 1,
        build_seconds=build_seconds,
        head_step_seconds=_head_step_seconds(len(dataset.class_names), config),
    )


def _head_step_seconds(classes: int, config: RetrainConfig) -> tuple[float, float, float, float]:
    """Seconds of one step of the new layer at two widths (its validation checks included, on a
    validation split of the data set's proportions), on random features."""
    rng = np.random.default_rng(0)
    timed = []
    for width in HEAD_WIDTHS:
        x = rng.standard_normal((2048, width), dtype=np.float32)
        y = rng.integers(0, classes, 2048)
        params = HeadParams.from_config(
            config, HEAD_PROBE_STEPS, HEAD_PROBE_STEPS, validation_batch_size=-1
        )
        start = time.perf_counter()
        train_output_layer(x, y, x[:256], y[:256], classes, params, log=lambda *_: None)
        timed += [width, (time.perf_counter() - start) / HEAD_PROBE_STEPS]
    return tuple(timed)


def cached_bottlenecks(bottleneck_dir: Path, architecture: str, width: int, keys: set[bytes]):
    """How many of `keys` the bottleneck cache holds for `architecture` at `width` values a
    vector (any of its folders: the planner's estimate; the run itself checks each vector)."""
    found: set[bytes] = set()
    for shard in Path(bottleneck_dir).glob(f"{architecture}_*/shard-*.npz"):
        try:
            with np.load(shard, allow_pickle=False) as data:
                if _stored_width(data) != width:
                    continue
                found.update(k.tobytes() for k in data["keys"])
        except (OSError, ValueError, KeyError):  # a damaged shard: the run reports it
            continue
    return len(found & keys)


def _stored_width(npz) -> int | None:
    """The vectors' width from the member's header, without reading the vectors."""
    fmt = np.lib.format
    with npz.zip.open("vectors.npy") as member:
        version = fmt.read_magic(member)
        read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, _, _ = read(member)
    return shape[1] if len(shape) == 2 else None
