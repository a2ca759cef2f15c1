"""Bottleneck extraction speed, head training time, warm re-run time and peak memory, side by side.

Measures, on the same CIFAR-10 images and in one run:
  - the machine's FP32 peak: fused multiply-adds only (scripts/fma_peak.c, built with the C
    compiler when there is one) and a large TensorFlow matmul,
  - poetslearn's extractor with each engine (its `auto` choice, ONNX Runtime, TFLite/XNNPACK,
    TensorFlow), as GFLOP/s and as a share of both peaks,
  - Keras `model.predict` on the same backbone as a TF2 user writes it (Resizing and Rescaling
    in the model, one `predict` over the uint8 images, batch 64),
  - a faithful codelab-style pipeline: the original frozen graph, one image per session run, one
    text file written per bottleneck (what the codelab's retrain.py did),
each method `--rounds` times, interleaved, reporting the median (these machines are shared, and
a single reading can be 10-15% off). Before that, a cold and a warm full CIFAR-10 `retrain` in a
subprocess: wall time, head training time and peak memory.

Prints a table and, last, one JSON line. Examples (genuine weights from ../shared):

    python scripts/benchmark.py --architecture mobilenet_0.50_224
    python scripts/benchmark.py --architecture inception_v3 --weights none --images 64 --skip_warm
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np

from poetslearn.backbone.architectures import get_architecture
from poetslearn.backbone.codelab_graphs import codelab_graph_candidates
from poetslearn.backbone.weights import build_backbone
from poetslearn.data.cifar10 import load_cifar10
from poetslearn.data.sources import calibration_images
from poetslearn.extract.extractor import FeatureExtractor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from host import host_line, measure_host  # noqa: E402


def count_macs(backbone) -> int:
    """Multiply-adds per image in the backbone's convolutions (everything else is negligible)."""
    total = 0
    for layer in backbone.layers:
        kind = type(layer).__name__
        if kind not in ("Conv2D", "DepthwiseConv2D"):
            continue
        _, height, width, channels_out = layer.output.shape
        kh, kw, channels_in, per_group = layer.kernel.shape  # Conv2D: [kh, kw, in/groups, out]
        fan_in = kh * kw * (1 if kind == "DepthwiseConv2D" else channels_in)
        total += height * width * channels_out * fan_in
    return total


def rate(fn, images: np.ndarray, batch: int, min_seconds: float = 5.0) -> float:
    """Images per second of fn over batches of `images` (one warm-up batch first)."""
    fn(images[:batch])
    done, start = 0, time.perf_counter()
    while True:
        for i in range(0, len(images), batch):
            fn(images[i : i + batch])
            done += len(images[i : i + batch])
        if time.perf_counter() - start >= min_seconds:
            return done / (time.perf_counter() - start)


def whole_rate(fn, images: np.ndarray, min_seconds: float = 5.0) -> float:
    """Images per second of fn called on all of `images` at once (after a 64-image warm-up)."""
    fn(images[:64])
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < min_seconds:
        fn(images)
        done += len(images)
    return done / (time.perf_counter() - start)


def keras_user_model(arch, backbone, shape):
    """uint8 images of `shape` -> bottlenecks: Resizing, Rescaling and the network in one model."""
    import keras

    return keras.Sequential(
        [
            keras.Input((*shape, 3)),
            keras.layers.Resizing(arch.input_size, arch.input_size, interpolation="bilinear"),
            keras.layers.Rescaling(1 / arch.input_std, -arch.input_mean / arch.input_std),
            backbone,
        ]
    )


def codelab_rate(graph_path: Path, images: np.ndarray, size: int, out_dir: Path) -> float:
    """The codelab's loop: per image, one session run through resize + graph, one text file."""
    import tensorflow as tf

    from poetslearn.backbone.graph_import import read_graph_bytes

    graph_def = tf.compat.v1.GraphDef.FromString(read_graph_bytes(graph_path))
    graph = tf.Graph()
    with graph.as_default():
        raw = tf.compat.v1.placeholder(tf.float32, [None, None, 3])
        resized = tf.compat.v1.image.resize_bilinear(raw[tf.newaxis], (size, size))
        scaled = (resized - 127.5) / 127.5
        (pool,) = tf.compat.v1.import_graph_def(
            graph_def,
            input_map={"input:0": scaled},
            return_elements=["MobilenetV1/Logits/AvgPool_1a/AvgPool:0"],
            name="",
        )
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
@click.option("--seconds", type=float, default=5.0, help="minimum time per method and round")
@click.option("--int8/--no-int8", default=True, help="also time the int8 engine")
@click.option(
    "--rounds", type=int, default=3, help="interleaved timings per method; the median is reported"
)
@click.option(
    "--skip_warm",
    is_flag=True,
    help="skip the warm full-CIFAR-10 retrain (needs a filled --bottleneck_dir)",
)
@click.option(
    "--bottleneck_dir", type=click.Path(path_type=Path), default=Path("tf_files/bottlenecks")
)
def main(
    architecture,
    weights,
    model_dir,
    data_dir,
    images,
    batch,
    seconds,
    int8,
    rounds,
    skip_warm,
    bottleneck_dir,
):
    arch = get_architecture(architecture)
    report: dict = {"architecture": arch.name}
    # The retrain runs go first: a child started from this process after it loaded TensorFlow
    # would report this process's memory as its own peak (ru_maxrss survives fork + exec).
    if not skip_warm:
        # Full CIFAR-10 retrain in a subprocess: the first fills the cache (if needed), the
        # second is the warm re-run that is timed, with its own peak memory.
        command = [
            sys.executable,
            "-m",
            "poetslearn",
            "retrain",
            "--architecture",
            arch.name,
            "--weights",
            weights,
            "--model_dir",
            str(model_dir),
            "--data_dir",
            str(data_dir),
            "--bottleneck_dir",
            str(bottleneck_dir),
            "--quiet",
            "--output_graph",
            str(Path(tempfile.gettempdir()) / "bench_graph.pb"),
            "--output_labels",
            str(Path(tempfile.gettempdir()) / "bench_labels.txt"),
        ]
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
        print(
            f"first retrain (cold unless cached): {cold:.1f} s, peak {cold_peak:,.0f} MB; "
            f"warm re-run: {warm:.1f} s (new layer {head:.1f} s), peak {warm_peak:,.0f} MB; "
            f"{accuracy}"
        )
        report.update(
            first_run_s=round(cold, 1),
            first_run_peak_mb=cold_peak,
            warm_run_s=round(warm, 1),
            warm_run_peak_mb=warm_peak,
            head_s=head,
        )

    host = measure_host(matmul_seconds=min(seconds, 2.0))
    fma_peak, matmul_peak = host["fma_peak_gflops"], host["matmul_peak_gflops"]
    report.update(host=host, fma_peak_gflops=fma_peak, matmul_peak_gflops=matmul_peak)

    data = load_cifar10(data_dir, download=False, show_progress=False)
    pixels = data.splits["train"].images.pixels[:images].astype(np.float32)
    backbone, info = build_backbone(arch, weights, model_dir)
    methods = {}
    auto = FeatureExtractor(arch, backbone, engine="auto")
    auto(pixels[:8])  # decides the engine
    methods[f"poetslearn auto ({auto.engine_name})"] = lambda x: rate(auto, x, batch, seconds)
    for engine in (*arch.engines, "tf"):
        extractor = FeatureExtractor(arch, backbone, engine=engine)
        methods[f"poetslearn {engine}"] = lambda x, e=extractor: rate(e, x, batch, seconds)
    if int8:  # approximate: other features, so it is not a candidate for "auto"
        calibration = calibration_images(data.splits["train"], arch.input_size)
        quantized = FeatureExtractor(
            arch, backbone, engine="tflite_int8", int8_calibration=calibration
        )
        methods["poetslearn tflite_int8"] = lambda x: rate(quantized, x, batch, seconds)
    # Keras as a TF2 user writes it: resizing and scaling inside the model, one `predict` over
    # the uint8 images with batch 64 (not our resized float copy, which would hand it our work).
    user_model = keras_user_model(arch, backbone, pixels.shape[1:3])
    originals = data.splits["train"].images.pixels[:images]
    methods["keras predict"] = lambda x: whole_rate(
        lambda y: user_model.predict(y, batch_size=64, verbose=0), originals, seconds
    )
    graph = next((p for p in codelab_graph_candidates(arch, model_dir) if p.is_file()), None)
    if graph is not None:

        def codelab(x):
            with tempfile.TemporaryDirectory() as tmp:
                return codelab_rate(graph, x[: min(images, 512)], arch.input_size, Path(tmp))

        methods["codelab-style"] = codelab
    readings: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(rounds):
        for name, measure in methods.items():
            readings[name].append(measure(pixels))
    results = {name: statistics.median(values) for name, values in readings.items()}

    macs = count_macs(backbone) if hasattr(backbone, "layers") else None
    report["macs_per_image"] = macs
    report["weights"] = info.description
    report["cpu"] = host["cpu"]
    print(f"{arch.name} ({info.description})")
    print(host_line(host))
    print(
        f"{'method':30s} {'img/s':>9s} {'GFLOP/s':>8s} {'% FMA':>6s} {'% matmul':>9s} "
        f"{'auto is':>8s}  readings"
    )
    best = results[next(iter(results))]
    for name, value in results.items():
        gflops = value * 2 * macs / 1e9 if macs else None
        share = f"{gflops / fma_peak:6.0%}" if gflops and fma_peak else f"{'-':>6s}"
        print(
            f"{name:30s} {value:9,.1f} {f'{gflops:8.0f}' if gflops else f'{chr(45):>8s}'} "
            f"{share} {f'{gflops / matmul_peak:9.0%}' if gflops else f'{chr(45):>9s}'} "
            f"{best / value:7.1f}x  {', '.join(f'{v:,.1f}' for v in readings[name])}"
        )

    report.update(
        images=images,
        rounds=rounds,
        engine=auto.engine_name,
        img_per_s={k: round(v, 1) for k, v in results.items()},
    )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
