"""Bottleneck vectors for every split: read from the cache, the missing ones computed in batches.

`get_or_create_bottlenecks` is the retrain stage: it adds the distorted copies of the training
images when distortions are asked for, fills one array per split from the cache and the engine,
and checks that no class lost all its images to unreadable files.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from poetslearn.config import RetrainConfig
from poetslearn.context import RunContext, warn_on_stderr
from poetslearn.data.distortions import Distortions, distorted_split
from poetslearn.data.mirror import MIRROR_SUFFIX, average_with_mirror, mirrored_splits
from poetslearn.data.sources import Dataset, Split
from poetslearn.extract.backends import BatchResult, ExtractionBackend, LocalExtraction, NodeCounts
from poetslearn.extract.bottleneck_cache import BottleneckCache
from poetslearn.extract.extractor import FeatureExtractor
from poetslearn.extract.fill import fill_cache, plan_work


@dataclass
class ExtractionStats:
    total: int = 0
    cached: int = 0
    computed: int = 0
    failed: int = 0
    seconds: float = 0.0
    # Vectors computed per machine, and their engines, when other machines computed them.
    by_node: NodeCounts = field(default_factory=NodeCounts)
    remote_engines: set[str] = field(default_factory=set)
    engine: str | None = None  # what computed the vectors (None: nothing was computed)
    unfinished: int = 0  # images left without a vector when the time ran out

    def describe(self) -> str:
        if self.computed == 0 and self.failed == 0:
            return f"All {self.total:,} bottlenecks were cached; computed none."
        rate = self.computed / self.seconds if self.seconds > 0 else 0.0
        return (
            f"Computed {self.computed:,} bottlenecks in {self.seconds:.1f} s "
            f"({rate:,.0f} img/s); {self.cached:,} were cached"
            + (f"; {self.failed:,} image(s) failed" if self.failed else "")
            + (
                f"; out of time (--time_budget), {self.unfinished:,} images are left out"
                if self.unfinished
                else ""
            )
            + "."
        )


def compute_bottlenecks(
    splits: dict[str, Split],
    extractor,
    cache: BottleneckCache,
    batch_size: int = 128,
    show_progress: bool = True,
    warn=warn_on_stderr,
    backend: ExtractionBackend | None = None,
    stop=None,
) -> tuple[dict[str, np.ndarray], dict[str, Split], ExtractionStats]:
    """Returns {split: [N, dim] float32 vectors} for every split, computing only cache misses.

    Each split's array is allocated once and filled in place, from the cache and from the
    engine, so no vector is held twice. Images that fail to decode are warned about and dropped
    from their split; the returned splits are the ones the vectors belong to. Vectors are flushed
    to disk as they are made, and on Ctrl-C whatever is complete is flushed before the interrupt
    propagates, so the next run resumes where this one stopped. `backend` computes the missing
    vectors (default: in this process). `stop()` true ends the work early (--time_budget): the
    images are then taken in a random order, and those left without a vector are dropped.
    """
    stats = ExtractionStats(total=sum(len(s) for s in splits.values()))
    keys_of, vectors, found = _read_cached(splits, cache)
    stats.cached = sum(int(mask.sum()) for mask in found.values())
    plan = plan_work(keys_of, found, batch_size, None if stop is None else 0)
    done: set[bytes] = set()

    def into_arrays(result: BatchResult, ok_keys: list[bytes]) -> None:
        done.update(ok_keys)
        vectors[result.split][result.ok] = result.vectors
        for key, vector in zip(ok_keys, result.vectors):
            for other, row in plan.repeats.get(key, ()):
                vectors[other][row] = vector

    start = time.perf_counter()
    filled = fill_cache(
        plan,
        splits,
        keys_of,
        cache,
        extractor,
        backend or LocalExtraction(),
        "Computing bottlenecks",
        show_progress,
        warn,
        into_arrays,
        stop,
    )
    failed = filled.failed
    stats.by_node, stats.remote_engines = filled.by_node, filled.remote_engines
    stats.seconds = time.perf_counter() - start
    stats.failed = len(failed)
    if filled.stopped:  # out of time: the images not done are left out, as unreadable ones
        unfinished = {keys_of[n][i] for n, rows in plan.batches for i in rows} - done - failed
        stats.unfinished, failed = len(unfinished), failed | unfinished
    stats.computed = plan.count - stats.failed - stats.unfinished

    return (*_without(failed, splits, keys_of, vectors), stats)


def _read_cached(splits: dict[str, Split], cache: BottleneckCache):
    """(keys per split, an array per split with the cached rows filled, which rows were)."""
    keys_of = {name: split.images.keys() for name, split in splits.items()}
    vectors = {
        name: np.empty((len(split), cache.dim), np.float32) for name, split in splits.items()
    }
    found = dict(zip(splits, cache.fill([(keys_of[name], vectors[name]) for name in splits])))
    return keys_of, vectors, found


def _without(dropped: set[bytes], splits: dict, keys_of: dict, vectors: dict):
    """(vectors, splits) without the rows whose keys were `dropped`."""
    kept = {}
    for name, split in splits.items():
        keep = np.array([k not in dropped for k in keys_of[name]], dtype=bool)
        kept[name] = split.subset(keep)
        if not keep.all():
            vectors[name] = vectors[name][keep]
    return vectors, kept


@dataclass
class Bottlenecks:
    """Every split's vectors, and the splits they belong to (unreadable images dropped)."""

    vectors: dict[str, np.ndarray]  # split -> [N, dim] float32
    splits: dict[str, Split]
    stats: ExtractionStats
    train_x: np.ndarray = field(repr=False, default=None)  # training vectors + distorted copies
    train_y: np.ndarray = field(repr=False, default=None)
    # --test_time_mirror: the scored splits' mirror images ("validation_mirror", ...); their
    # vectors are already averaged into `vectors`, fine-tuning reads their activations.
    mirrored: dict[str, Split] = field(default_factory=dict)

    def release(self) -> None:
        """Drops every vector (the splits stay): room for building the export."""
        self.vectors, self.train_x = {}, None


def bottleneck_cache_for(
    config: RetrainConfig, extractor: FeatureExtractor, warn
) -> BottleneckCache:
    """The cache of `extractor`'s vectors in --bottleneck_dir: the one retrain and check share."""
    return BottleneckCache(
        config.bottleneck_dir,
        extractor.arch.name,
        extractor.fingerprint,
        extractor.feature_dim,
        warn,
    )


def _out_of_time(clock):
    """True once what is left would no longer hold the new layer's training after extraction."""
    return lambda: not clock.affords("new_layer")


def get_or_create_bottlenecks(
    dataset: Dataset,
    extractor: FeatureExtractor,
    config: RetrainConfig,
    backend: ExtractionBackend,
    ctx: RunContext,
) -> Bottlenecks:
    """The retrain stage: every split's bottlenecks, plus distorted training copies if asked."""
    log, warn = ctx.log, ctx.warn
    cache = bottleneck_cache_for(config, extractor, warn)
    distortions = Distortions.from_config(config)
    to_compute = dict(dataset.splits)
    if distortions.enabled:
        to_compute["distorted"] = distorted_split(dataset.splits["train"], distortions)
    if config.test_time_mirror:
        to_compute.update(mirrored_splits(dataset.splits))
    stop = None
    if ctx.clock is not None:  # the scored splits first; training takes what the time leaves
        last = {"train": 1, "distorted": 2}
        to_compute = dict(sorted(to_compute.items(), key=lambda item: last.get(item[0], 0)))
        stop = _out_of_time(ctx.clock)
    vectors, splits, stats = compute_bottlenecks(
        to_compute,
        extractor,
        cache,
        config.bottleneck_batch_size,
        ctx.show_progress,
        warn,
        backend,
        stop,
    )
    if stats.computed:
        stats.engine = ", ".join(sorted(map(str, stats.remote_engines))) or extractor.engine_name
    log(
        stats.describe()
        + (f" Engine: {stats.engine}." if stats.engine else "")
        + f" Cache: {cache.dir}"
    )
    if stats.by_node:
        log(stats.by_node.describe("Vectors"))
    mirrored = {name: splits.pop(name) for name in list(splits) if name.endswith(MIRROR_SUFFIX)}
    if mirrored:
        log(
            "Scoring each validation and test image with its mirror image, averaged "
            "(--test_time_mirror); every export does the same."
        )
    vectors = average_with_mirror(vectors)
    dataset.check_every_class_present(splits)
    train_x, train_y = vectors["train"], splits["train"].labels
    if "distorted" in splits:
        train_x = np.concatenate([train_x, vectors.pop("distorted")])
        train_y = np.concatenate([train_y, splits.pop("distorted").labels])
        log(
            f"Training on {len(splits['train']):,} images and "
            f"{len(train_y) - len(splits['train']):,} distorted copies ({distortions.describe()})."
        )
    return Bottlenecks(vectors, splits, stats, train_x, train_y, mirrored)
