"""Bottleneck extraction speed, head training time, warm re-run time and peak memory, side by side.

Measures, on the same CIFAR-10 images and in one run:
  - poetslearn's extractor with each engine (TFLite/XNNPACK and TensorFlow),
  - Keras `model.predict` on the same backbone,
  - a faithful codelab-style pipeline: the original frozen graph, one image per session run, one
    text file written per bottleneck (what the codelab's retrain.py did),
then trains the default head on the cached CIFAR-10 bottlenecks and times a warm `retrain`
(all bottlenecks cached) in a subprocess, reporting its wall time and peak memory.

Prints a table and, last, one JSON line. Example (genuine weights from ../shared):

    python scripts/benchmark.py --architecture mobilenet_0.50_224 --images 1024
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np

from poetslearn.architectures import get_architecture
from poetslearn.datasets import load_cifar10
from poetslearn.extractor import FeatureExtractor
from poetslearn.weights import build_backbone, codelab_graph_candidates

MACS = {  # multiply-adds per image, from the MobileNet v1 paper's table and Keras' Inception V3
    "mobilenet_1.0_224": 569e6, "mobilenet_0.75_224": 317e6, "mobilenet_0.50_224": 150e6,
    "mobilenet_0.25_224": 41e6, "mobilenet_1.0_128": 186e6, "mobilenet_0.25_128": 14e6,
    "mobilenet_0.50_128": 49e6, "mobilenet_0.75_128": 104e6, "inception_v3": 5.7e9,
}


def rate(fn, images: np.ndarray, batch: int, min_seconds: float = 5.0) -> float:
    """Images per second of fn over batches of `images` (one warm-up batch first)."""
    fn(images[:batch])
    done, start = 0, time.perf_counter()
    while True:
        for i in range(0, len(images), batch):
            fn(images[i:i + batch])
            done += len(images[i:i + batch])
        if time.perf_counter() - start >= min_seconds:
            return done / (time.perf_counter() - start)


def codelab_rate(graph_path: Path, images: np.ndarray, size: int, out_dir: Path) -> float:
    """The codelab's loop: per image, one session run through resize + graph, one text file."""
    import tensorflow as tf

    from poetslearn.graph_import import read_graph_bytes

    graph_def = tf.compat.v1.GraphDef.FromString(read_graph_bytes(graph_path))
    graph = tf.Graph()
    with graph.as_default():
        raw = tf.compat.v1.placeholder(tf.float32, [None, None, 3])
        resized = tf.compat.v1.image.resize_bilinear(raw[tf.newaxis], (size, size))
        scaled = (resized - 127.5) / 127.5
        (pool,) = tf.compat.v1.import_graph_def(
            graph_def, input_map={"input:0": scaled},
            return_elements=["MobilenetV1/Logits/AvgPool_1a/AvgPool:0"], name="")
    with tf.compat.v1.Session(graph=graph) as session:
        session.run(pool, {raw: images[0]})
        start = time.perf_counter()
        for i, img in enumerate(images):
            vector = np.squeeze(session.run(pool, {raw: img}))
            (out_dir / f"img_{i}.txt").write_text(",".join(str(x) for x in vector))
        return len(images) / (time.perf_counter() - start)


@click.command()
@click.option("--architecture", default="mobilenet_0.50_224")
@click.option("--weights", default="imagenet", help="'none' where no weights exist (inception_v3)")
@click.option("--model_dir", type=click.Path(path_type=Path), default=Path("../shared/models"))
@click.option("--data_dir", type=click.Path(path_type=Path), default=Path("../shared/data"))
@click.option("--images", type=int, default=1024, help="CIFAR-10 images timed per method")
@click.option("--batch", type=int, default=128)
@click.option("--skip_warm", is_flag=True, help="skip the warm full-CIFAR-10 retrain (needs a "
              "filled --bottleneck_dir)")
@click.option("--bottleneck_dir", type=click.Path(path_type=Path),
              default=Path("tf_files/bottlenecks"))
def main(architecture, weights, model_dir, data_dir, images, batch, skip_warm, bottleneck_dir):
    arch = get_architecture(architecture)
    report: dict = {"architecture": arch.name}
    # The retrain runs go first: a child started from this process after it loaded TensorFlow
    # would report this process's memory as its own peak (ru_maxrss survives fork + exec).
    if not skip_warm:
        # Full CIFAR-10 retrain in a subprocess: the first fills the cache (if needed), the
        # second is the warm re-run that is timed, with its own peak memory.
        command = [sys.executable, "-m", "poetslearn", "retrain", "--architecture", arch.name,
                   "--weights", weights, "--model_dir", str(model_dir), "--data_dir",
                   str(data_dir), "--bottleneck_dir", str(bottleneck_dir), "--quiet",
                   "--output_graph", str(Path(tempfile.gettempdir()) / "bench_graph.pb"),
                   "--output_labels", str(Path(tempfile.gettempdir()) / "bench_labels.txt")]
        runs = []
        for _ in range(2):
            start = time.perf_counter()
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            wall = time.perf_counter() - start
            done = next(line for line in out.splitlines() if line.startswith("Done in"))
            peak = float(re.search(r"peak memory ([\d,]+) MB", done)[1].replace(",", ""))
            head = float(re.search(r"new layer ([\d.]+) s", done)[1])
            accuracy = next(line for line in out.splitlines() if line.startswith("Final test"))
            runs.append((wall, peak, head, accuracy))
        (cold, cold_peak, _, _), (warm, warm_peak, head, accuracy) = runs
        print(f"first retrain (cold unless cached): {cold:.1f} s, peak {cold_peak:,.0f} MB; "
              f"warm re-run: {warm:.1f} s (new layer {head:.1f} s), peak {warm_peak:,.0f} MB; "
              f"{accuracy}")
        report.update(first_run_s=round(cold, 1), first_run_peak_mb=cold_peak,
                      warm_run_s=round(warm, 1), warm_run_peak_mb=warm_peak, head_s=head)

    data = load_cifar10(data_dir, download=False, show_progress=False)
    pixels = data.splits["train"].images.pixels[:images].astype(np.float32)
    backbone, info = build_backbone(arch, weights, model_dir)
    results: dict[str, float] = {}

    tflite = FeatureExtractor(arch, backbone, engine="tflite")
    results["poetslearn tflite"] = rate(tflite, pixels, batch)
    tf_engine = FeatureExtractor(arch, backbone, engine="tf")
    results["poetslearn tf"] = rate(tf_engine, pixels, batch)
    import tensorflow as tf

    resized = tf.image.resize(pixels, (arch.input_size,) * 2, method="bilinear").numpy()
    scaled = (resized - arch.input_mean) / arch.input_std
    results["keras predict"] = rate(lambda x: backbone.predict(x, batch_size=batch, verbose=0),
                                    scaled, batch)
    graph = next((p for p in codelab_graph_candidates(arch, model_dir) if p.is_file()), None)
    if graph is not None:
        with tempfile.TemporaryDirectory() as tmp:
            results["codelab-style"] = codelab_rate(graph, pixels[:min(images, 512)],
                                                    arch.input_size, Path(tmp))

    macs = MACS.get(arch.name)
    report["weights"] = info.description
    print(f"{arch.name} ({info.description}); {os.cpu_count()} cores, {platform.machine()}")
    print(f"{'method':22s} {'img/s':>9s} {'GFLOP/s':>9s} {'vs poetslearn':>14s}")
    best = results["poetslearn tflite"]
    for name, value in results.items():
        gflops = f"{value * 2 * macs / 1e9:9.0f}" if macs else f"{'-':>9s}"
        print(f"{name:22s} {value:9,.0f} {gflops} {best / value:13.1f}x")

    report.update(images=images, img_per_s={k: round(v, 1) for k, v in results.items()})
    print(json.dumps(report))


if __name__ == "__main__":
    main()
