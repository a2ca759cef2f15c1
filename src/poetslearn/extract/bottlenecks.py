"""Bottleneck vectors for every split: read from the cache, the missing ones computed in batches.

`get_or_create_bottlenecks` is the retrain stage: it adds the distorted copies of the training
images when distortions are asked for, fills one array per split from the cache and the engine,
and checks that no class lost all its images to unreadable files.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from poetslearn.extract.bottleneck_cache import BottleneckCache
from poetslearn.data.distortions import Distortions, distorted_split
from poetslearn.extract.backends import BatchResult, ExtractionBackend, LocalExtraction, NodeCounts
from poetslearn.progress import printing_around, progress
from poetslearn.data.sources import Dataset, Split


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

    def describe(self) -> str:
        if self.computed == 0 and self.failed == 0:
            return f"All {self.total:,} bottlenecks were cached; computed none."
        rate = self.computed / self.seconds if self.seconds > 0 else 0.0
        return (f"Computed {self.computed:,} bottlenecks in {self.seconds:.1f} s "
                f"({rate:,.0f} img/s); {self.cached:,} were cached"
                + (f"; {self.failed:,} image(s) failed" if self.failed else "") + ".")


@dataclass
class _WorkPlan:
    """The images whose vectors must be computed: one per distinct missing key."""

    batches: list[tuple[str, list[int]]]  # (split, indices), at most batch_size each
    repeats: dict[bytes, list[tuple[str, int]]]  # key -> further rows that get its vector
    count: int


def _plan_work(keys_of: dict[str, list[bytes]], found: dict[str, np.ndarray],
               batch_size: int) -> _WorkPlan:
    """Groups cache misses into per-split batches; a key seen again (the same image twice)
    is computed once and its vector copied to the other rows."""
    first: set[bytes] = set()
    repeats: dict[bytes, list[tuple[str, int]]] = {}
    batches: list[tuple[str, list[int]]] = []
    for name, keys in keys_of.items():
        todo = []
        for i in np.flatnonzero(~found[name]).tolist():
            if keys[i] in first:
                repeats.setdefault(keys[i], []).append((name, i))
            else:
                first.add(keys[i])
                todo.append(i)
        batches.extend((name, todo[j:j + batch_size]) for j in range(0, len(todo), batch_size))
    return _WorkPlan(batches, repeats, len(first))


def _store(results: Iterator[BatchResult], keys_of: dict[str, list[bytes]],
           vectors: dict[str, np.ndarray], cache: BottleneckCache,
           repeats: dict[bytes, list[tuple[str, int]]], bar, warn,
           stats: ExtractionStats) -> set[bytes]:
    """Puts each batch's vectors into the split arrays and the cache as it arrives; returns the
    keys of images that failed to load, and notes in `stats` where they were computed.
    Whatever is complete is flushed to the cache even on Ctrl-C, so the next run resumes from
    there."""
    failed: set[bytes] = set()
    try:
        for result in results:
            keys = keys_of[result.split]
            for i, reason in result.failures.items():
                printing_around(bar, warn)(f"Skipping {reason}")
                failed.add(keys[i])
            ok = result.ok
            if ok:
                vectors[result.split][ok] = result.vectors
                ok_keys = [keys[i] for i in ok]
                cache.add(ok_keys, result.vectors)
                for key, vector in zip(ok_keys, result.vectors):
                    for other, row in repeats.get(key, ()):
                        vectors[other][row] = vector
            if result.where is not None:
                stats.by_node.add(result)
                stats.remote_engines.add(result.engine)
            bar.update(len(result.indices))
    finally:
        cache.flush()
    return failed


def compute_bottlenecks(splits: dict[str, Split], extractor, cache: BottleneckCache,
                        batch_size: int = 128, show_progress: bool = True, warn=print,
                        backend: ExtractionBackend | None = None
                        ) -> tuple[dict[str, np.ndarray], dict[str, Split], ExtractionStats]:
    """Returns {split: [N, dim] float32 vectors} for every split, computing only cache misses.

    Each split's array is allocated once and filled in place, from the cache and from the
    engine, so no vector is held twice. Images that fail to decode are warned about and dropped
    from their split; the returned splits are the ones the vectors belong to. Vectors are flushed
    to disk as they are made, and on Ctrl-C whatever is complete is flushed before the interrupt
    propagates, so the next run resumes where this one stopped. `backend` computes the missing
    vectors (default: in this process).
    """
    stats = ExtractionStats(total=sum(len(s) for s in splits.values()))
    keys_of = {name: split.images.keys() for name, split in splits.items()}
    vectors = {name: np.empty((len(split), cache.dim), np.float32)
               for name, split in splits.items()}
    found = dict(zip(splits, cache.fill([(keys_of[name], vectors[name]) for name in splits])))
    stats.cached = sum(int(mask.sum()) for mask in found.values())
    plan = _plan_work(keys_of, found, batch_size)
    failed: set[bytes] = set()
    start = time.perf_counter()
    if plan.count:
        with progress(plan.count, "Computing bottlenecks", "img", show_progress) as bar:
            results = (backend or LocalExtraction()).run(plan.batches, splits, extractor)
            failed = _store(results, keys_of, vectors, cache, plan.repeats, bar, warn, stats)
        # The engine's buffers (300 MB and more for Inception V3) are not needed any more.
        extractor.release_engines()
    stats.seconds = time.perf_counter() - start
    stats.failed = len(failed)
    stats.computed = plan.count - stats.failed

    kept = {}
    for name, split in splits.items():
        keep = np.array([k not in failed for k in keys_of[name]], dtype=bool)
        kept[name] = split.subset(keep)
        if not keep.all():
            vectors[name] = vectors[name][keep]
    return vectors, kept, stats


@dataclass
class Bottlenecks:
    """Every split's vectors, and the splits they belong to (unreadable images dropped)."""

    vectors: dict[str, np.ndarray]  # split -> [N, dim] float32
    splits: dict[str, Split]
    stats: ExtractionStats
    train_x: np.ndarray = field(repr=False, default=None)  # training vectors + distorted copies
    train_y: np.ndarray = field(repr=False, default=None)

    def release(self) -> None:
        """Drops every vector (the splits stay): room for building the export."""
        self.vectors, self.train_x = {}, None


def get_or_create_bottlenecks(dataset: Dataset, extractor, config,
                              backend: ExtractionBackend | None = None, log=print,
                              warn=print) -> Bottlenecks:
    """The retrain stage: every split's bottlenecks, plus distorted training copies if asked."""
    cache = BottleneckCache(config.bottleneck_dir, extractor.arch.name, extractor.fingerprint,
                            extractor.feature_dim, warn)
    distortions = Distortions.from_config(config)
    to_compute = dict(dataset.splits)
    if distortions.enabled:
        to_compute["distorted"] = distorted_split(dataset.splits["train"], distortions)
    vectors, splits, stats = compute_bottlenecks(
        to_compute, extractor, cache, config.bottleneck_batch_size, config.show_progress, warn,
        backend)
    if stats.computed:
        stats.engine = ", ".join(sorted(map(str, stats.remote_engines))) or extractor.engine_name
    log(stats.describe() + (f" Engine: {stats.engine}." if stats.engine else "")
        + f" Cache: {cache.dir}")
    if stats.by_node:
        log(stats.by_node.describe("Vectors"))
    dataset.check_every_class_present(splits)
    train_x, train_y = vectors["train"], splits["train"].labels
    if "distorted" in splits:
        train_x = np.concatenate([train_x, vectors.pop("distorted")])
        train_y = np.concatenate([train_y, splits.pop("distorted").labels])
        log(f"Training on {len(splits['train']):,} images and {len(train_y) - len(splits['train']):,}"
            f" distorted copies ({distortions.describe()}).")
    return Bottlenecks(vectors, splits, stats, train_x, train_y)
