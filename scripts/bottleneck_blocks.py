"""Accuracy of the new layer on bottlenecks made from the top N blocks (`--bottleneck_blocks N`).

Every block's pooled output is computed once (`--bottleneck_blocks all`, the cache `retrain`
uses too); the bottleneck of the top N blocks is the last columns of it, so each N costs only
its head's training. The head is retrain's, with retrain's defaults. Prints validation, CIFAR-10
test rows 0-999 (lossless in ../shared) and the whole 10k test set, the width, and seconds.

    python scripts/bottleneck_blocks.py --architecture mobilenet_0.50_224 --blocks 1,2,4,6,all
"""

from __future__ import annotations

import time

import click
import numpy as np
from _common import cifar10_bottlenecks, cifar10_options

from poetslearn.backbone.block_features import resolve_bottleneck_blocks
from poetslearn.config import RetrainConfig
from poetslearn.train.head import HeadParams, accuracy, train_output_layer
from poetslearn.train.schedule import new_layer_steps


def block_widths(arch) -> list[int]:
    """Channels of each block's output, bottom to top (the widths of its pooled columns): the
    network's shape alone, so no weights are loaded for it."""
    network = arch.build_backbone()
    return [int(network.get_layer(name).output.shape[-1]) for name in arch.block_outputs]


def head_on_top_blocks(arch, widths, vectors, splits, blocks: str, params):
    """retrain's head on the pooled outputs of the top `blocks` blocks ("all" or a number):
    (what it trained, the (train, validation, test) features it used, its seconds)."""
    n = resolve_bottleneck_blocks(arch, blocks if blocks == "all" else int(blocks))
    columns = slice(-sum(widths[-n:]), None)
    features = tuple(vectors[s][:, columns] for s in ("train", "validation", "test"))
    labels = [splits[s].labels for s in ("train", "validation")]
    start = time.perf_counter()
    trained = train_output_layer(
        np.ascontiguousarray(features[0]), labels[0], features[1], labels[1], 10, params,
        log=lambda *_: None,
    )  # fmt: skip
    return trained, features, time.perf_counter() - start


@click.command()
@cifar10_options
@click.option("--blocks", default="1,2,4,6,all", help="The N to compare, comma-separated.")
@click.option(
    "--weight_decay",
    type=float,
    default=RetrainConfig.weight_decay,
    show_default=True,
    help="The head's L2 weight decay (retrain's --weight_decay).",
)
def main(architecture, weights, model_dir, data_dir, bottleneck_dir, blocks, weight_decay) -> None:
    start = time.perf_counter()
    vectors, splits, arch, info = cifar10_bottlenecks(
        architecture, weights, model_dir, data_dir, bottleneck_dir, bottleneck_blocks="all"
    )
    print(
        f"{arch.name}, {info.description}; every block's bottleneck: "
        f"{time.perf_counter() - start:.0f} s (extraction, or reading the cache); head weight "
        f"decay {weight_decay:g}"
    )
    widths = block_widths(arch)
    d = RetrainConfig()
    params = HeadParams.from_config(
        d,
        new_layer_steps(len(splits["train"]), d.train_batch_size),
        validation_batch_size=-1,
        weight_decay=weight_decay,
    )
    ty, vy, sy = (splits[s].labels for s in ("train", "validation", "test"))
    print(
        f"{'N':>4s} {'width':>6s} {'val':>7s} {'0-999':>7s} {'10k':>7s} {'best':>6s} "
        f"{'seconds':>8s}"
    )
    for text in blocks.split(","):
        trained, (tx, vx, sx), seconds = head_on_top_blocks(
            arch, widths, vectors, splits, text, params
        )
        layer = trained.layer
        print(
            f"{text:>4s} {tx.shape[1]:6d} {accuracy(layer, vx, vy):7.1%} "
            f"{accuracy(layer, sx[:1000], sy[:1000]):7.1%} {accuracy(layer, sx, sy):7.1%} "
            f"{trained.best_step:6d} {seconds:8.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
