"""`retrain --fine_tune_blocks all`: the whole network trained with the new layer, on the images.

Cutting at the network's input leaves nothing frozen to cache, so this trainer reads, decodes and
resizes the images again in every epoch and runs the whole network forward and backward on them:
the usual way of fine-tuning, for machines where TensorFlow has a GPU (on two CPU cores it
takes hours on CIFAR-10; `--fine_tune_blocks K` is the CPU route). Everything else is the
fine-tuning trainer's: the new layer trained on bottlenecks first, batch norm frozen, AdamW with a
cosine schedule, the best epoch kept, a checkpoint per epoch, the export carrying the weights.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from poetslearn.backbone.cut import whole_network
from poetslearn.errors import DataError
from poetslearn.train.fine_tuning.top_blocks import run_fine_tuning
from poetslearn.train.head import TrainResult

if TYPE_CHECKING:  # the stage signature's types
    from poetslearn.config import RetrainConfig
    from poetslearn.context import RunContext
    from poetslearn.data.sources import Dataset
    from poetslearn.extract.backends import ExtractionBackend
    from poetslearn.extract.bottlenecks import Bottlenecks
    from poetslearn.extract.extractor import FeatureExtractor


class ImageReader:
    """A split's images as network input ([n, s, s, 3], preprocessed), read batch by batch:
    what the activation cache's reader gives when the cut is the input itself."""

    def __init__(self, images, arch) -> None:
        self.images, self.arch = images, arch

    def __len__(self) -> int:
        return len(self.images)

    def read(self, indices) -> np.ndarray:
        indices = [int(i) for i in indices]
        pixels, failures = self.images.load_batch(indices, self.arch.input_size)
        if failures:  # readable when the bottlenecks were made: changed since
            index, reason = next(iter(failures.items()))
            raise DataError(
                f"{reason}; it was readable when this run started. Put it back, "
                f"or run again to leave it out."
            )
        return self.arch.preprocess(pixels).numpy()

    def close(self) -> None:
        pass


def fine_tune_all(
    bottlenecks: Bottlenecks,
    dataset: Dataset,
    extractor: FeatureExtractor,
    config: RetrainConfig,
    backend: ExtractionBackend | None,
    ctx: RunContext,
) -> TrainResult:
    """The trainer for --fine_tune_blocks all."""
    import tensorflow as tf

    where = (
        "on the GPU"
        if tf.config.list_physical_devices("GPU")
        else "on the CPU: slow, --fine_tune_blocks K is the fast route without a GPU"
    )
    ctx.log(
        f"Fine-tuning the whole network on the images themselves (no activation cache), {where}."
    )
    return run_fine_tuning(
        whole_network(extractor.backbone),
        bottlenecks,
        dataset,
        extractor,
        config,
        ctx,
        lambda: {
            name: ImageReader(s.images, extractor.arch)
            for name, s in {**bottlenecks.splits, **bottlenecks.mirrored}.items()
        },
    )
