"""The photo pipeline's two kinds of parallelism, shared by `retrain` (local and on Ray
workers), `label` and `evaluate`:

- `load_each`: the images of one batch decoded and resized by several threads at once (Pillow
  and NumPy release the GIL), results in input order, a file that fails reported alone;
- `prefetched`: the next batches loaded while the caller runs the network on this one, at most
  `ahead` of them, so memory stays bounded whatever the folder's size.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from poetslearn.errors import ImageError

T = TypeVar("T")
R = TypeVar("R")

# Decoding threads: one per core and two more, so a thread waiting on the disk leaves no core
# idle; eight at most (more only adds memory).
DECODERS = min(8, (os.cpu_count() or 1) + 2)
AHEAD = 2  # batches loaded ahead of the network: enough to hide a slow batch, little memory


def load_each(
    load_one: Callable[[T], R],
    items: list[T],
    workers: int = DECODERS,
    errors: tuple[type[BaseException], ...] = (ImageError,),
) -> tuple[list[R], dict[int, str]]:
    """(the results of the items that loaded, in order; {position: why} for those that did
    not). Only `errors` are per-item failures; anything else is a bug and is raised."""

    def attempt(item: T):
        try:
            return load_one(item)
        except errors as e:
            return _Failed(str(e))

    if workers <= 1 or len(items) <= 1:
        results = [attempt(item) for item in items]
    else:
        with ThreadPoolExecutor(min(workers, len(items))) as pool:
            results = list(pool.map(attempt, items))
    failures = {i: r.reason for i, r in enumerate(results) if isinstance(r, _Failed)}
    return [r for r in results if not isinstance(r, _Failed)], failures


class _Failed:
    def __init__(self, reason: str) -> None:
        self.reason = reason


def prefetched(batches: Iterable[T], load: Callable[[T], R], ahead: int = AHEAD) -> Iterator[R]:
    """`load(batch)` for every batch, in order, with up to `ahead` batches loading in the
    background while the caller uses the current one. Stopping early (an error, Ctrl-C, a
    `break`) cancels the batches not yet started."""
    pending: deque = deque()
    batches = iter(batches)
    with ThreadPoolExecutor(max(ahead, 1)) as pool:
        try:
            for batch in batches:
                pending.append(pool.submit(load, batch))
                if len(pending) > ahead:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
