"""retrain's bottleneck stage (cold cache) under two or more versions of poetslearn, interleaved
round by round, each reading in a fresh process: the before/after of a change to extraction, on
a photo folder or on CIFAR-10's first training images.

    git archive HEAD src | tar -x -C /tmp/before
    python scripts/compare_extraction.py --src before=/tmp/before/src --src after=src \\
        --data tf_files/photo_bench/photos_1000_500x375 --data cifar10:10000 --rounds 3

Each `--src NAME=PATH` is put first on PYTHONPATH of its readings. Prints the host, then each
version's median images per second, the share of the cores busy and peak memory, by data;
last, one JSON line.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from host import host_line, measure_host  # noqa: E402

SHARED = Path(os.environ.get("POETSLEARN_SHARED_DIR") or ROOT / ".." / "shared")


def _splits(data: str, data_dir: Path):
    """The data's splits: every image of a folder, or CIFAR-10's first N training images (from
    `data_dir`)."""
    if data.startswith("cifar10:"):
        from poetslearn.data.cifar10 import load_cifar10
        from poetslearn.data.sources import Split

        train = load_cifar10(data_dir, download=False, show_progress=False).splits["train"]
        rows = list(range(int(data.split(":", 1)[1])))
        return {"train": Split(train.images.subset(rows), train.labels[rows])}
    from poetslearn.data.image_folder import load_image_folder

    return load_image_folder(Path(data), 0, 0, show_progress=False).splits


@click.group(invoke_without_command=True)
@click.pass_context
@click.option("--src", "sources", multiple=True, help="NAME=PATH of a src tree.")
@click.option("--data", "datas", multiple=True, help="A photo folder, or cifar10:N.")
@click.option("--architecture", default="mobilenet_0.50_224")
@click.option("--weights", default="imagenet")
@click.option("--model_dir", type=click.Path(path_type=Path), default=SHARED / "models")
@click.option("--data_dir", type=click.Path(path_type=Path), default=SHARED / "data")
@click.option("--rounds", default=3)
@click.option("--matmul_seconds", default=2.0, help="Per reading of TensorFlow's matmul rate.")
def main(ctx, sources, datas, rounds, matmul_seconds, **network) -> None:
    if ctx.invoked_subcommand is not None:
        return
    trees = dict(source.split("=", 1) for source in sources)
    host = measure_host(matmul_seconds)
    readings = {data: {name: [] for name in trees} for data in datas}
    args = [str(network[key]) for key in ("architecture", "weights", "model_dir", "data_dir")]
    for _ in range(rounds):  # interleaved: a drift in the machine's speed hits every version
        for data in datas:
            for name, tree in trees.items():
                env = {**os.environ, "PYTHONPATH": str(Path(tree).resolve())}
                command = [sys.executable, __file__, "one", data, *args]
                out = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
                readings[data][name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(host_line(host))
    report = {"host": host, "architecture": network["architecture"], "data": {}}
    for data, versions in readings.items():
        print(f"{data}:")
        report["data"][data] = {}
        for name, runs in versions.items():
            row = {
                "img_per_s": statistics.median(r["img_per_s"] for r in runs),
                "readings": [round(r["img_per_s"], 1) for r in runs],
                "cores_busy": statistics.median(r["cores_busy"] for r in runs),
                "peak_mb": max(r["peak_mb"] for r in runs),
            }
            report["data"][data][name] = row
            print(f"  {name:10s} {row['img_per_s']:7.1f} img/s {row['readings']}  cores busy "
                  f"{row['cores_busy']:.0%}  peak {row['peak_mb']:,.0f} MB")  # fmt: skip
    print(json.dumps(report))


@main.command("one", hidden=True)
@click.argument("data")
@click.argument("architecture")
@click.argument("weights")
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.argument("data_dir", type=click.Path(path_type=Path))
def one(data: str, architecture: str, weights: str, model_dir: Path, data_dir: Path) -> None:
    """One cold bottleneck stage in this process: one JSON line."""
    from poetslearn.backbone.architectures import get_architecture
    from poetslearn.backbone.weights import build_backbone
    from poetslearn.extract.bottleneck_cache import BottleneckCache
    from poetslearn.extract.bottlenecks import compute_bottlenecks
    from poetslearn.extract.extractor import FeatureExtractor
    from poetslearn.memory import peak_memory_mb

    arch = get_architecture(architecture)
    extractor = FeatureExtractor(arch, build_backbone(arch, weights, model_dir)[0], engine="auto")
    extractor(np.zeros((2, arch.input_size, arch.input_size, 3), np.float32))  # built first
    splits = _splits(data, data_dir)
    with tempfile.TemporaryDirectory() as cold:
        cache = BottleneckCache(Path(cold), arch.name, extractor.fingerprint, extractor.feature_dim)
        cpu, start = time.process_time(), time.perf_counter()  # every thread of this process
        compute_bottlenecks(splits, extractor, cache, show_progress=False)
        wall, used = time.perf_counter() - start, time.process_time() - cpu
    busy = used / wall / (os.cpu_count() or 1)
    count = sum(len(split) for split in splits.values())
    print(json.dumps({"img_per_s": count / wall, "cores_busy": busy, "peak_mb": peak_memory_mb()}))


if __name__ == "__main__":
    main()
