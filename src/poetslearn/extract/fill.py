"""The one loop that fills a cache: plan the images whose rows are missing (each distinct image
once), hand the batches to an extraction backend, and store every result as it arrives, in the
cache and wherever else the caller wants it. Bottlenecks and activations both fill this way."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from poetslearn.extract.backends import BatchResult, ExtractionBackend, NodeCounts
from poetslearn.progress import printing_around, progress


@dataclass
class WorkPlan:
    """The images whose rows must be computed: one per distinct missing key."""

    batches: list[tuple[str, list[int]]]  # (split, indices), at most batch_size each
    repeats: dict[bytes, list[tuple[str, int]]]  # key -> further rows that get its result
    count: int


@dataclass
class FillResult:
    failed: set[bytes] = field(default_factory=set)  # keys of images that could not be loaded
    stopped: bool = False  # `stop` said so before every batch was done
    by_node: NodeCounts = field(default_factory=NodeCounts)  # rows computed per other machine
    remote_engines: set[str] = field(default_factory=set)


def plan_work(
    keys_of: dict[str, list[bytes]],
    found: dict[str, np.ndarray],
    batch_size: int,
    shuffle_seed: int | None = None,
) -> WorkPlan:
    """Groups the rows not `found` into per-split batches; a key seen again (the same image
    twice) is computed once, and `repeats` says which other rows get its result. With a
    `shuffle_seed`, each split's rows come in a seeded random order, so that work stopped
    early leaves a sample of every class done rather than the first classes."""
    first: set[bytes] = set()
    repeats: dict[bytes, list[tuple[str, int]]] = {}
    batches: list[tuple[str, list[int]]] = []
    for name, keys in keys_of.items():
        todo, missing = [], np.flatnonzero(~found[name])
        if shuffle_seed is not None:
            missing = np.random.default_rng(shuffle_seed).permutation(missing)
        for i in missing.tolist():
            if keys[i] in first:
                repeats.setdefault(keys[i], []).append((name, i))
            else:
                first.add(keys[i])
                todo.append(i)
        batches.extend((name, todo[j : j + batch_size]) for j in range(0, len(todo), batch_size))
    return WorkPlan(batches, repeats, len(first))


def store_results(
    results: Iterator[BatchResult],
    keys_of: dict[str, list[bytes]],
    cache,
    bar,
    warn,
    on_rows: Callable[[BatchResult, list[bytes]], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> FillResult:
    """Adds each batch's rows to `cache` as it arrives (and hands them to `on_rows`); whatever
    is complete is flushed to the cache even on Ctrl-C, so the next run resumes from there.
    `stop()` true after a batch ends the work there (a --time_budget run out of time)."""
    filled = FillResult()
    try:
        for result in results:
            keys = keys_of[result.split]
            for i, reason in result.failures.items():
                printing_around(bar, warn)(f"Skipping {reason}")
                filled.failed.add(keys[i])
            if result.ok:
                ok_keys = [keys[i] for i in result.ok]
                cache.add(ok_keys, result.vectors)
                if on_rows is not None:
                    on_rows(result, ok_keys)
            if result.where is not None:
                filled.by_node.add(result)
                filled.remote_engines.add(result.engine)
            bar.update(len(result.indices))
            if stop is not None and stop():
                filled.stopped = True
                break
    finally:
        cache.flush()
    return filled


def fill_cache(
    plan: WorkPlan,
    splits: dict,
    keys_of: dict[str, list[bytes]],
    cache,
    extractor,
    backend: ExtractionBackend,
    what: str,
    show_progress: bool,
    warn,
    on_rows: Callable[[BatchResult, list[bytes]], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> FillResult:
    """Computes `plan` with `backend` and stores the results, under a progress bar named
    `what` ("Computing bottlenecks"), until `stop()` says otherwise; then frees the engine's
    buffers."""
    if not plan.count:
        return FillResult()
    with progress(plan.count, what, "img", show_progress) as bar:
        results = backend.run(plan.batches, splits, extractor)
        try:
            filled = store_results(results, keys_of, cache, bar, warn, on_rows, stop)
        finally:
            close = getattr(results, "close", None)
            if close is not None:  # a generator left early: its threads or actors stop now
                close()
    # The engine's buffers (300 MB and more for Inception V3) are not needed any more.
    extractor.release_engines()
    return filled
