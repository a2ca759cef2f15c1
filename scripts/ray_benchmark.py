"""Bottleneck extraction on one machine without Ray, with `--ray local`, and on a two-node cluster.

The same CIFAR-10 training images (the first `--images`) and the same genuine weights, in one
run, each way in a fresh process with an empty cache:
  - local: the extractor in the driver's process, all cores (what `retrain` does without --ray);
  - ray local: `RayExtraction("local")`, Ray started on this machine (one actor with every core);
  - two nodes: a `ray.cluster_utils.Cluster` of two nodes with half the cores each, on 127.0.0.1
    (one actor per node);
  - ray ceiling: `--ray local` with the tiny test network (almost no computing): the rate at
    which Ray Data and one driver can move batches and store vectors at all.
Reports the wall time of the extraction (engines built, vectors in the cache), Ray's start-up
apart, the ratio to the local run (Ray's overhead at equal cores), the steady rate from the first
result to the last (without the workers' start: TensorFlow's import, the engine's conversion),
the vectors per node, and
the largest difference from the local vectors. Then the per-image costs a scaling model needs:
bytes returned per vector and the driver's cache writes per second. Last line: JSON.

    python scripts/ray_benchmark.py --architecture mobilenet_0.50_224 --images 10000
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np

MODES = ("local", "ray_local", "two_nodes", "ray_ceiling")


def _extract(
    mode: str,
    architecture: str,
    weights: str,
    model_dir: Path,
    data_dir: Path,
    images: int,
    batch: int,
    out: Path,
) -> dict:
    """One way of extracting, in this (fresh) process; writes the vectors to `out`."""
    if mode != "local":
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # loopback only, before Ray loads
    from poetslearn.backbone.load import load_backbone
    from poetslearn.data.cifar10 import load_cifar10
    from poetslearn.data.sources import Split
    from poetslearn.extract.backends import LocalExtraction
    from poetslearn.extract.bottleneck_cache import BottleneckCache
    from poetslearn.extract.bottlenecks import compute_bottlenecks
    from poetslearn.extract.extractor import FeatureExtractor, extractor_spec

    train = load_cifar10(data_dir, download=False, show_progress=False).splits["train"]
    split = Split(train.images.subset(list(range(images))), train.labels[:images])
    if mode == "ray_ceiling":
        architecture, weights = "test_tiny", "none"
    backbone = load_backbone(architecture, weights, model_dir)
    extractor = FeatureExtractor(
        backbone.arch, backbone.model, "auto", description=extractor_spec(backbone, "auto")
    )
    start = time.perf_counter()
    cluster = None
    if mode == "local":
        backend = LocalExtraction()
    else:
        from poetslearn.extract.backends.ray import RayExtraction

        address = "local"
        if mode == "two_nodes":
            from ray.cluster_utils import Cluster

            half = max(1, (os.cpu_count() or 2) // 2)
            cluster = Cluster(
                initialize_head=True,
                head_node_args={"num_cpus": half, "node_ip_address": "127.0.0.1"},
            )
            cluster.add_node(num_cpus=half, node_ip_address="127.0.0.1")
            cluster.wait_for_nodes()
            address = cluster.address
        backend = RayExtraction(address)
    startup = time.perf_counter() - start
    arrivals = []  # (time, images) per batch result: the steady rate once the engines run

    class Timed:
        def run(self, batches, splits, extractor):
            for result in backend.run(batches, splits, extractor):
                arrivals.append((time.perf_counter(), len(result.indices)))
                yield result

    cpu_before = time.process_time()
    with tempfile.TemporaryDirectory() as cache_dir:
        cache = BottleneckCache(
            Path(cache_dir), backbone.arch.name, extractor.fingerprint, extractor.feature_dim
        )
        start = time.perf_counter()
        vectors, _, stats = compute_bottlenecks(
            {"train": split}, extractor, cache, batch, show_progress=False, backend=Timed()
        )
        seconds = time.perf_counter() - start
        driver_cpu = time.process_time() - cpu_before
        start = time.perf_counter()
        again = BottleneckCache(
            Path(cache_dir), backbone.arch.name, extractor.fingerprint, extractor.feature_dim
        )
        for first in range(0, images, 128):  # the driver's store: shards written per second
            again.add(
                [
                    bytes(16 - len(str(i))) + str(i).encode()
                    for i in range(first, min(images, first + 128))
                ],
                vectors["train"][first : first + 128],
            )
        again.flush()
        writes = images / (time.perf_counter() - start)
    np.save(out, vectors["train"])
    if cluster is not None:
        import ray

        ray.shutdown()
        cluster.shutdown()
    # From the first result to the last: engines built and running everywhere (the first result
    # of each worker still carries its start, so this is a lower bound on the steady rate).
    span = arrivals[-1][0] - arrivals[0][0]
    steady = sum(n for _, n in arrivals[1:]) / span if span > 0 else images / seconds
    return {
        "mode": mode,
        "startup_s": round(startup, 2),
        "extraction_s": round(seconds, 2),
        "images_per_s": round(images / seconds, 1),
        "steady_images_per_s": round(steady, 1),
        "driver_cpu_s": round(driver_cpu, 2),
        "by_node": stats.by_node,
        "engine": ", ".join(sorted(map(str, stats.remote_engines))) or extractor.engine_name,
        "bytes_per_vector": int(vectors["train"][0].nbytes),
        "cache_writes_per_s": round(writes),
    }


@click.command()
@click.option("--architecture", default="mobilenet_0.50_224")
@click.option("--weights", default="imagenet", show_default=True)
@click.option("--model_dir", type=click.Path(path_type=Path), default=Path("../shared/models"))
@click.option("--data_dir", type=click.Path(path_type=Path), default=Path("../shared/data"))
@click.option("--images", default=10000, show_default=True)
@click.option("--batch", default=128, show_default=True, help="--bottleneck_batch_size")
@click.option(
    "--mode",
    type=click.Choice(MODES),
    default=None,
    help="Measure one way only, in this process (what the full run calls).",
)
@click.option(
    "--ways",
    default=",".join(MODES),
    show_default=True,
    help="The ways to measure, local first (the reference the others are compared with).",
)
@click.option("--out", type=click.Path(path_type=Path), default=None)
def main(architecture, weights, model_dir, data_dir, images, batch, mode, ways, out) -> None:
    if mode is not None:
        print(
            json.dumps(
                _extract(mode, architecture, weights, model_dir, data_dir, images, batch, out)
            )
        )
        return
    chosen = ways.split(",")
    if chosen[0] != "local" or not set(chosen) <= set(MODES):
        raise click.BadParameter(
            f"local first, then any of {', '.join(MODES[1:])}", param_hint="--ways"
        )
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for each in chosen:
            vectors = Path(folder) / f"{each}.npy"
            run = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--architecture",
                    architecture,
                    "--weights",
                    weights,
                    "--model_dir",
                    str(model_dir),
                    "--data_dir",
                    str(data_dir),
                    "--images",
                    str(images),
                    "--batch",
                    str(batch),
                    "--mode",
                    each,
                    "--out",
                    str(vectors),
                ],
                capture_output=True,
                text=True,
            )
            if run.returncode != 0:
                raise SystemExit(f"{each} failed:\n{run.stderr[-3000:]}")
            # Ray may print messages of its own after the JSON line.
            result = json.loads(
                next(line for line in reversed(run.stdout.splitlines()) if line.startswith("{"))
            )
            result["vectors"] = vectors
            results.append(result)
        reference = np.load(results[0].pop("vectors"))
        scale = np.abs(reference).max()
        for result in results[1:]:
            if result["mode"] == "ray_ceiling":  # another network: nothing to compare
                result.pop("vectors")
                continue
            result["max_relative_difference"] = float(
                np.abs(np.load(result.pop("vectors")) - reference).max() / scale
            )
    local = results[0]["extraction_s"]
    print(f"{architecture}, {images:,} CIFAR-10 images, {os.cpu_count()} cores, weights: {weights}")
    steady = results[0]["steady_images_per_s"]
    print(
        f"{'way':<11} {'start-up':>8} {'extraction':>10} {'img/s':>6} {'vs local':>8} "
        f"{'steady img/s':>12} {'vs local':>8}  per node"
    )
    for r in results:
        nodes = ", ".join(f"{n}: {c:,}" for n, c in sorted(r["by_node"].items())) or "-"
        print(
            f"{r['mode']:<11} {r['startup_s']:>7.1f}s {r['extraction_s']:>9.1f}s "
            f"{r['images_per_s']:>6.0f} {r['extraction_s'] / local:>7.2f}x "
            f"{r['steady_images_per_s']:>12.0f} {steady / r['steady_images_per_s']:>7.2f}x  "
            f"{nodes}"
        )
    for r in (r for r in results[1:] if "max_relative_difference" in r):
        print(
            f"{r['mode']}: vectors within {r['max_relative_difference']:.1e} (relative to the "
            f"largest) of the local ones"
        )
    print(
        f"Bytes returned per vector: {results[0]['bytes_per_vector']:,}; the driver's cache "
        f"writes: {results[0]['cache_writes_per_s']:,} vectors/s"
    )
    print(json.dumps({"architecture": architecture, "images": images, "results": results}))


if __name__ == "__main__":
    main()
