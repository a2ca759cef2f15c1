"""The `local` extraction backend: the extractor in this process."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from poetslearn.data.sources import Split
from poetslearn.extract.backends.base import Batch, BatchResult


class LocalExtraction:
    """The extractor in this process; one thread decodes the next batch while the engine runs
    this one (the engines release the GIL)."""

    def run(
        self, batches: list[Batch], splits: dict[str, Split], extractor
    ) -> Iterator[BatchResult]:
        size = extractor.arch.input_size

        def load(batch: Batch):
            pixels, failures = splits[batch[0]].images.load_batch(batch[1], size)
            return extractor.prepare(pixels), failures

        with ThreadPoolExecutor(1) as prefetch:
            future = prefetch.submit(load, batches[0])
            for k, (name, indices) in enumerate(batches):
                pixels, failures = future.result()
                if k + 1 < len(batches):
                    future = prefetch.submit(load, batches[k + 1])
                loaded = len(indices) > len(failures)
                vectors = extractor(pixels) if loaded else np.zeros((0, 0), np.float32)
                yield BatchResult(name, indices, vectors, failures)
