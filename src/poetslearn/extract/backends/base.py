"""What every extraction backend shares: the batches it is given, the results it yields, and
the protocol it follows. Backends import this module; it imports none of them.

A backend takes the planned batches (which images of which split) and yields, batch by batch,
the vectors of the images that loaded and the reasons the others did not; the caller
(`bottlenecks.compute_bottlenecks`) stores them in the cache and the split arrays as they arrive,
so a backend never touches the cache. `local` runs the extractor in this process; a backend that
spreads the batches over other processes or machines builds its extractors there from
`extractor.description` (a picklable `ExtractorSpec`) and registers beside it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from poetslearn.data.sources import Split

Batch = tuple[str, list[int]]  # (split name, image indices)


@dataclass
class BatchResult:
    split: str
    indices: list[int]  # every index of the batch, in order
    vectors: np.ndarray  # [n_ok, dim] float32: the indices that loaded, in order
    failures: dict[int, str]  # index -> why it could not be loaded
    where: str | None = None  # the machine that computed it, when not this process
    engine: str | None = None  # the engine that computed it there

    @property
    def ok(self) -> list[int]:
        return [i for i in self.indices if i not in self.failures]


class NodeCounts(dict):
    """{machine: vectors it computed}, for results computed elsewhere than this process."""

    def add(self, result: BatchResult) -> None:
        if result.where is not None:
            self[result.where] = self.get(result.where, 0) + len(result.ok)

    def describe(self, what: str) -> str:
        """'<what> computed per node (N): <node> <count>, ...'; empty when nothing was remote."""
        if not self:
            return ""
        counts = ", ".join(f"{node} {count:,}" for node, count in sorted(self.items()))
        return f"{what} computed per node ({len(self)}): {counts}."


class ExtractionBackend(Protocol):
    def run(
        self, batches: list[Batch], splits: dict[str, Split], extractor
    ) -> Iterator[BatchResult]:
        """Computes every batch; results may arrive in any order."""
