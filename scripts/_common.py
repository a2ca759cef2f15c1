"""What the measurement scripts share: the usual options and cached CIFAR-10 bottlenecks."""

from __future__ import annotations

from pathlib import Path

import click

from poetslearn.backbone.architectures import get_architecture
from poetslearn.backbone.weights import build_backbone
from poetslearn.data.cifar10 import load_cifar10
from poetslearn.extract.bottleneck_cache import BottleneckCache
from poetslearn.extract.bottlenecks import compute_bottlenecks
from poetslearn.extract.extractor import FeatureExtractor


def cifar10_options(function):
    """--architecture, --weights, --model_dir, --data_dir, --bottleneck_dir."""
    for option in reversed(
        [
            click.option("--architecture", default="mobilenet_0.25_128"),
            click.option("--weights", default="imagenet"),
            click.option(
                "--model_dir", type=click.Path(path_type=Path), default=Path("../shared/models")
            ),
            click.option(
                "--data_dir", type=click.Path(path_type=Path), default=Path("../shared/data")
            ),
            click.option(
                "--bottleneck_dir",
                type=click.Path(path_type=Path),
                default=Path("tf_files/bottlenecks"),
            ),
        ]
    ):
        function = option(function)
    return function


def cifar10_bottlenecks(
    architecture, weights, model_dir, data_dir, bottleneck_dir, bottleneck_blocks=1
):
    """({split: vectors}, {split: Split}, architecture, weights info), from the cache when filled
    (the one `retrain --bottleneck_blocks` uses)."""
    arch = get_architecture(architecture)
    data = load_cifar10(data_dir, download=False, show_progress=False)
    backbone, info = build_backbone(arch, weights, model_dir)
    extractor = FeatureExtractor(arch, backbone, engine="auto", bottleneck_blocks=bottleneck_blocks)
    cache = BottleneckCache(bottleneck_dir, arch.name, extractor.fingerprint, extractor.feature_dim)
    vectors, splits, _ = compute_bottlenecks(data.splits, extractor, cache)
    return vectors, splits, arch, info
