"""Compares ways of training the new layer on the same cached CIFAR-10 bottlenecks.

Prints validation and test accuracy for: poetslearn's default head, variations of it, and the
codelab's head (plain SGD at 0.01, 4,000 steps of 100, last step kept, raw features). Every
choice of default is made on validation accuracy; test figures are printed for the README only.

    python scripts/compare_heads.py --architecture mobilenet_0.25_128 --model_dir ../shared/models
"""

from __future__ import annotations

import time
from dataclasses import replace

import click
import numpy as np
from _common import cifar10_bottlenecks, cifar10_options

from poetslearn.config import RetrainConfig
from poetslearn.train.head import HeadParams, OutputLayer, accuracy, train_output_layer
from poetslearn.train.objectives import softmax
from poetslearn.train.schedule import new_layer_steps


def codelab_head(x, y, n_classes, steps=4000, lr=0.01, batch=100, seed=0) -> OutputLayer:
    """The codelab's retrain.py head: SGD on raw bottlenecks, truncated-normal init, last step."""
    rng = np.random.default_rng(seed)
    w = np.clip(rng.normal(0, 0.001, (x.shape[1], n_classes)), -0.002, 0.002).astype(np.float32)
    b = np.zeros(n_classes, np.float32)
    for _ in range(steps):
        idx = rng.integers(0, len(x), batch)  # the codelab samples with replacement
        p = softmax(x[idx] @ w + b)
        p[np.arange(batch), y[idx]] -= 1.0
        p /= batch
        w -= lr * (x[idx].T @ p)
        b -= lr * p.sum(axis=0)
    return OutputLayer(w, b)


@click.command()
@cifar10_options
def main(architecture, weights, model_dir, data_dir, bottleneck_dir) -> None:
    vectors, splits, arch, info = cifar10_bottlenecks(
        architecture, weights, model_dir, data_dir, bottleneck_dir
    )
    tx, ty = vectors["train"], splits["train"].labels
    vx, vy = vectors["validation"], splits["validation"].labels
    sx, sy = vectors["test"], splits["test"].labels

    d = RetrainConfig()
    base = HeadParams.from_config(
        d, new_layer_steps(len(tx), d.train_batch_size), validation_batch_size=-1, seed=0
    )
    variants = {
        "default": base,
        "Adam, 4,000 x 100": replace(base, steps=4000, batch_size=100),
        "wd 0": replace(base, weight_decay=0.0),
        "wd 1e-3": replace(base, weight_decay=1e-3),
        "wd 1e-2": replace(base, weight_decay=1e-2),
        "lr 3e-4": replace(base, learning_rate=3e-4),
        "lr 3e-3": replace(base, learning_rate=3e-3),
        "batch 256": replace(base, batch_size=256),
        "batch 256, 8000 steps": replace(base, batch_size=256, steps=8000),
        "2000 steps": replace(base, steps=2000),
    }
    print(f"{arch.name}, {info.description}")
    print(f"{'head':28s} {'val':>7s} {'test':>7s} {'0-999':>7s} {'seconds':>8s}")
    for name, params in variants.items():
        t = time.perf_counter()
        layer = train_output_layer(tx, ty, vx, vy, 10, params, log=lambda *_: None).layer
        s = time.perf_counter() - t
        print(
            f"{name:28s} {accuracy(layer, vx, vy):7.1%} {accuracy(layer, sx, sy):7.1%} "
            f"{accuracy(layer, sx[:1000], sy[:1000]):7.1%} {s:8.1f}"
        )
    t = time.perf_counter()
    layer = codelab_head(tx, ty, 10)
    s = time.perf_counter() - t
    print(
        f"{'codelab (SGD 0.01, 4000x100)':28s} {accuracy(layer, vx, vy):7.1%} "
        f"{accuracy(layer, sx, sy):7.1%} "
        f"{accuracy(layer, sx[:1000], sy[:1000]):7.1%} {s:8.1f}"
    )


if __name__ == "__main__":
    main()
