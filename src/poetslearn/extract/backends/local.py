"""The `local` extraction backend: the extractor in this process."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from poetslearn.data.parallel import prefetched
from poetslearn.data.sources import Split
from poetslearn.extract.backends.base import Batch, BatchResult


class LocalExtraction:
    """The extractor in this process; while the engine runs one batch, the next ones are decoded
    by several threads (`data.parallel`; the engines and Pillow release the GIL)."""

    def run(
        self, batches: list[Batch], splits: dict[str, Split], extractor
    ) -> Iterator[BatchResult]:
        size = extractor.arch.input_size

        def load(batch: Batch):
            pixels, failures = splits[batch[0]].images.load_batch(batch[1], size)
            return extractor.prepare(pixels), failures

        for (name, indices), (pixels, failures) in zip(batches, prefetched(batches, load)):
            loaded = len(indices) > len(failures)
            vectors = extractor(pixels) if loaded else np.zeros((0, 0), np.float32)
            yield BatchResult(name, indices, vectors, failures)
