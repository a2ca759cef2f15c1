"""Image files whose loading waits at a gate, for tests that kill a process during extraction.

Ray's workers load the images of their batches, so a test that must kill a worker (or the
driver) while extraction is under way cannot hold the driver's code as `held_run.py` does. A
`GatedFiles` source travels with each batch instead: in whatever process loads it, a batch whose
first image is at position `hold_from` or later writes `started-<pid>-<position>` into the gate
folder, then waits until the file `open` exists there. The test therefore knows which processes
are inside a batch and when, on any machine, fast or slow. Workers import this module by name:
the test puts this folder on the PYTHONPATH of the Ray nodes it starts.

Run as a script, it is a driver for the driver-kill test:
`python tests/ray_gate.py ADDRESS IMAGE_DIR CACHE_DIR GATE_DIR HOLD_FROM BATCH` computes the
folder's bottlenecks (test_tiny, random weights) on the cluster into CACHE_DIR and prints the
counts as JSON.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from poetslearn.data.sources import FileImages

GATE_LIMIT_S = 600  # a guard only: a test that never opens the gate does not hang for ever


class GatedFiles(FileImages):
    def __init__(self, paths, names, keys, gate: Path, hold_from: int, positions=None) -> None:
        super().__init__(paths, names, keys)
        self.gate, self.hold_from = Path(gate), hold_from
        self.positions = list(positions) if positions is not None else list(range(len(paths)))

    def subset(self, indices: list[int]) -> GatedFiles:
        return GatedFiles(
            [self.paths[i] for i in indices],
            [self.names[i] for i in indices],
            [self.keys()[i] for i in indices],
            self.gate,
            self.hold_from,
            [self.positions[i] for i in indices],
        )

    def load_batch(self, indices, size):
        first = self.positions[indices[0]]
        if first >= self.hold_from:
            (self.gate / f"started-{os.getpid()}-{first}").write_text("")
            deadline = time.monotonic() + GATE_LIMIT_S
            while not (self.gate / "open").exists() and time.monotonic() < deadline:
                time.sleep(0.02)
        return super().load_batch(indices, size)


def gated_splits(image_dir: Path, gate: Path, hold_from: int):
    """Every image of the folder as one split, loaded through the gate."""
    import numpy as np

    from poetslearn.data.image_folder import load_image_folder
    from poetslearn.data.sources import Split

    dataset = load_image_folder(image_dir, show_progress=False)
    images = [
        (p, n, k, label)
        for split in dataset.splits.values()
        for p, n, k, label in zip(
            split.images.paths, split.images.names, split.images.keys(), split.labels
        )
    ]
    paths, names, keys, labels = map(list, zip(*images))
    return {"train": Split(GatedFiles(paths, names, keys, gate, hold_from), np.array(labels))}


def tiny_extractor():
    """The tiny test network with seeded random weights: every process builds the same one."""
    from poetslearn.extract.extractor import ExtractorSpec

    return ExtractorSpec("test_tiny").build()


def main(address, image_dir, cache_dir, gate, hold_from, batch) -> None:
    from poetslearn.extract.backends.ray import RayExtraction
    from poetslearn.extract.bottleneck_cache import BottleneckCache
    from poetslearn.extract.bottlenecks import compute_bottlenecks

    extractor = tiny_extractor()
    cache = BottleneckCache(
        Path(cache_dir), "test_tiny", extractor.fingerprint, extractor.feature_dim
    )
    splits = gated_splits(Path(image_dir), Path(gate), int(hold_from))
    _, _, stats = compute_bottlenecks(
        splits, extractor, cache, int(batch), show_progress=False, backend=RayExtraction(address)
    )
    print(
        json.dumps({"cached": stats.cached, "computed": stats.computed, "by_node": stats.by_node})
    )


if __name__ == "__main__":
    import ray_gate  # the classes by their module's name, which the workers import too

    ray_gate.main(*sys.argv[1:])
