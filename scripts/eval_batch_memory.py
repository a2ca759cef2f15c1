"""Peak memory of running the top K blocks in inference over a batch of cached activations: what
fine-tuning does for its validation and test features (`EVAL_BATCH` of
train/fine_tuning/model.py at a time).

    python scripts/eval_batch_memory.py --architecture mobilenet_1.0_224 --blocks 4 --batch 256

Run once per setting: the peak of a process only grows.
"""

from __future__ import annotations

import click
import numpy as np

from poetslearn.backbone.architectures import get_architecture
from poetslearn.backbone.cut import cut_backbone
from poetslearn.backbone.weights import build_backbone
from poetslearn.memory import peak_memory_mb


@click.command()
@click.option("--architecture", default="mobilenet_1.0_224")
@click.option("--blocks", type=int, default=4, help="K, as in --fine_tune_blocks.")
@click.option("--batch", type=int, default=64, help="Activations per pass.")
def main(architecture: str, blocks: int, batch: int) -> None:
    arch = get_architecture(architecture)
    split = cut_backbone(arch, build_backbone(arch, "none")[0], blocks)  # weights change nothing
    x = np.random.default_rng(0).uniform(0, 6, (batch, *split.activation_shape)).astype(np.float32)
    before = peak_memory_mb()
    for _ in range(3):
        split.top(x, training=False).numpy()
    print(
        f"{architecture} K={blocks}, {batch} activations a pass: peak {before:.0f} MB before, "
        f"{peak_memory_mb():.0f} MB after"
    )


if __name__ == "__main__":
    main()
