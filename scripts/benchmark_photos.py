"""Extraction, `label` and `evaluate` on folders of photos, side by side with what a TF2 user
writes and with the codelab's way.

Makes photo folders from the photos scikit-image ships (astronaut, coffee, chelsea, rocket: one
class each): random crops enlarged to the photo size, sensor-like noise, JPEG quality 90. Then,
in interleaved rounds, each method in a fresh process (its own peak memory):

- poetslearn: the bottleneck stage of `retrain` (`compute_bottlenecks`, cold cache, the photo
  pipeline: decoding threads ahead of the engine);
- poetslearn_pillow: the same with Pillow's resize (`POETSLEARN_RESIZE=pillow`), as before the
  compiled resize (data/resize.py);
- keras: `keras.utils.image_dataset_from_directory(..., image_size=(s, s), batch_size=64)`,
  `Rescaling`, the same network (genuine weights) and one `predict` over the folder;
- codelab: one image per call, JPEG decode, bilinear resize and the network in one TensorFlow
  function, as the codelab's retrain.py ran one `sess.run` per image;
- label / evaluate: `poetslearn label FOLDER` and `poetslearn evaluate --split all` on 400 photos
  with a `.tflite` and a `.pb` model, rates after start-up (the time for 12 photos subtracted).

Prints the host (CPU, FMA peak, TensorFlow's matmul rate: scripts/host.py), rates, ratios, the
share of the cores busy during extraction, and peak memory; last, one JSON line. `--in_process`
runs every method in the driver's process instead (a smoke run: the same code, without a
TensorFlow start-up per method, and without a peak memory of each method's own).

    python scripts/benchmark_photos.py --architecture mobilenet_0.50_224
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from host import host_line, measure_host  # noqa: E402

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
IN_PROCESS = ("poetslearn", "poetslearn_pillow", "keras", "codelab")


def make_photos(root: Path, count: int, size: tuple[int, int], seed: int = 0) -> Path:
    """`count` photos of `size` (width, height) in one folder per class; kept between runs."""
    from skimage import data

    folder = root / f"photos_{count}_{size[0]}x{size[1]}"
    if (folder / ".complete").exists():
        return folder
    rng = np.random.default_rng(seed)
    for i in range(count):
        name = PHOTOS[i % len(PHOTOS)]
        source = getattr(data, name)()
        h, w = source.shape[:2]
        ch, cw = int(h * rng.uniform(0.5, 1.0)), int(w * rng.uniform(0.5, 1.0))
        top, left = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        crop = Image.fromarray(source[top : top + ch, left : left + cw]).resize(size, Image.BICUBIC)
        noisy = np.asarray(crop, np.float32) + rng.normal(0, 3, (size[1], size[0], 3))
        (folder / name).mkdir(parents=True, exist_ok=True)
        photo = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
        photo.save(folder / name / f"{i:05d}.jpg", quality=90)
    (folder / ".complete").touch()
    return folder


def subset(folder: Path, root: Path, count: int) -> Path:
    """A folder with the first `count` photos of `folder` (copies, one folder per class)."""
    out = root / f"{folder.name}_first_{count}"
    if out.exists():
        return out
    for path in sorted(folder.rglob("*.jpg"), key=lambda p: p.name)[:count]:  # classes in turn
        (out / path.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, out / path.parent.name / path.name)
    return out


# ------------------------------------------------------------- the in-process methods


def _backbone(architecture: str, weights: str, model_dir: Path):
    from poetslearn.backbone.architectures import get_architecture
    from poetslearn.backbone.weights import build_backbone

    arch = get_architecture(architecture)
    return arch, build_backbone(arch, weights, model_dir)[0]


def run_poetslearn(folder: Path, architecture: str, weights: str, model_dir: Path) -> dict:
    from poetslearn.data.image_folder import load_image_folder
    from poetslearn.extract.bottleneck_cache import BottleneckCache
    from poetslearn.extract.bottlenecks import compute_bottlenecks
    from poetslearn.extract.extractor import FeatureExtractor

    arch, backbone = _backbone(architecture, weights, model_dir)
    extractor = FeatureExtractor(arch, backbone, engine="auto")
    size = arch.input_size
    extractor(np.zeros((2, size, size, 3), np.float32))  # the engine is built before timing
    splits = load_image_folder(folder, 0, 0, show_progress=False).splits
    with tempfile.TemporaryDirectory() as cold:
        cache = BottleneckCache(Path(cold), arch.name, extractor.fingerprint, extractor.feature_dim)
        with _timed() as timing:
            compute_bottlenecks(splits, extractor, cache, show_progress=False)
    from poetslearn.data.resize import resize_in_use

    return {**timing, "resize": resize_in_use()}


def run_poetslearn_pillow(folder: Path, architecture: str, weights: str, model_dir: Path) -> dict:
    """The same stage with Pillow's resize in place of the compiled one (data/resize.py)."""
    from poetslearn.data import resize

    chosen, wanted = resize._chosen, os.environ.get(resize.RESIZE_ENV)
    os.environ[resize.RESIZE_ENV], resize._chosen = "pillow", "pillow"
    try:
        return run_poetslearn(folder, architecture, weights, model_dir)
    finally:  # as it was, for the methods that run after it in this process (--in_process)
        resize._chosen = chosen
        if wanted is None:
            os.environ.pop(resize.RESIZE_ENV)
        else:
            os.environ[resize.RESIZE_ENV] = wanted


def run_keras(folder: Path, architecture: str, weights: str, model_dir: Path) -> dict:
    import keras

    arch, backbone = _backbone(architecture, weights, model_dir)
    size = arch.input_size
    model = keras.Sequential(
        [
            keras.Input((size, size, 3)),
            keras.layers.Rescaling(1 / arch.input_std, -arch.input_mean / arch.input_std),
            backbone,
        ]
    )
    model.predict(np.zeros((64, size, size, 3), np.uint8), verbose=0)  # built before timing
    dataset = keras.utils.image_dataset_from_directory(
        folder, image_size=(size, size), batch_size=64, shuffle=False, verbose=False
    )
    with _timed() as timing:
        model.predict(dataset, verbose=0)
    return timing


def run_codelab(folder: Path, architecture: str, weights: str, model_dir: Path) -> dict:
    import tensorflow as tf

    arch, backbone = _backbone(architecture, weights, model_dir)
    size = arch.input_size

    @tf.function(input_signature=[tf.TensorSpec([], tf.string)])
    def bottleneck(jpeg):
        image = tf.cast(tf.image.decode_jpeg(jpeg, channels=3), tf.float32)[tf.newaxis]
        image = tf.image.resize(image, (size, size), method="bilinear")
        return backbone((image - arch.input_mean) / arch.input_std, training=False)

    paths = sorted(folder.rglob("*.jpg"))
    bottleneck(tf.constant(paths[0].read_bytes()))  # traced before timing
    with _timed() as timing:
        for path in paths:
            bottleneck(tf.constant(path.read_bytes())).numpy()
    return timing


class _timed:
    """Wall time and the share of all cores busy (user + system CPU time of this process)."""

    def __enter__(self) -> dict:
        self.result: dict = {}
        self.start, self.cpu = time.perf_counter(), _cpu_seconds()
        return self.result

    def __exit__(self, *exc) -> None:
        wall = time.perf_counter() - self.start
        busy = (_cpu_seconds() - self.cpu) / wall / (os.cpu_count() or 1)
        self.result.update(seconds=wall, cores_busy=busy)


def _cpu_seconds() -> float:
    return time.process_time()  # user + system time of every thread of this process


METHODS = {
    "poetslearn": run_poetslearn,
    "poetslearn_pillow": run_poetslearn_pillow,
    "keras": run_keras,
    "codelab": run_codelab,
}


# ------------------------------------------------------------- the driver


def measure_in_this_process(method: str, folder: Path, architecture, weights, model_dir) -> dict:
    """`measure` without a process of its own (--in_process): no peak memory of its own."""
    result = METHODS[method](folder, architecture, weights, model_dir)
    count = len(list(folder.rglob("*.jpg")))
    return {**result, "img_per_s": count / result["seconds"], "peak_mb": float("nan")}


def measure_in_subprocess(method: str, folder: Path, architecture, weights, model_dir) -> dict:
    command = [sys.executable, __file__, "measure", method, str(folder), architecture, weights]
    out = subprocess.run(
        [*command, str(model_dir)], check=True, capture_output=True, text=True, cwd=ROOT
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def poetslearn_seconds(*args: str, env: dict | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "poetslearn", *args],
        check=True,
        capture_output=True,
        cwd=ROOT,
        env=None if env is None else {**os.environ, **env},
    )
    return time.perf_counter() - start


def train_models(work: Path, photos: Path, architecture, weights, model_dir) -> dict[str, Path]:
    """A .pb and a .tflite classifier of the four photo classes, for label and evaluate."""
    models = {"pb": work / f"{architecture}.pb", "tflite": work / f"{architecture}.tflite"}
    if not models["tflite"].exists():
        poetslearn_seconds(
            "retrain", "--image_dir", str(subset(photos, work, 40)),
            "--architecture", architecture, "--weights", weights, "--model_dir", str(model_dir),
            "--bottleneck_dir", str(work / "bottlenecks"), "--output_graph", str(models["pb"]),
            "--output_labels", str(work / "labels.txt"), "--tflite_output", str(models["tflite"]),
            "--how_many_training_steps", "100", "--quiet",
        )  # fmt: skip
    return models


def label_and_evaluate_rates(models: dict, many: Path, few: Path, rounds: int) -> dict:
    """Images per second after start-up: (N - n) / (time for N - time for n), with a cache of
    converted graphs of its own, filled before the rounds (the first run's time, conversion
    included, under "first label"), so every round measures the same steady state."""
    with tempfile.TemporaryDirectory() as cache:
        env = {"POETSLEARN_CACHE_DIR": cache}
        first = {
            f"first label .{kind}": poetslearn_seconds("label", "--graph", str(model),
                                                       str(many), env=env)
            for kind, model in models.items()
        }  # fmt: skip
        return {**_rates(models, many, few, rounds, env), **first}


def _rates(models: dict, many: Path, few: Path, rounds: int, env: dict) -> dict:
    commands = {
        "label": lambda model, folder: ["label", "--graph", str(model), str(folder), "--json"],
        "evaluate": lambda model, folder: [
            "evaluate", "--graph", str(model), "--image_dir", str(folder), "--split", "all",
            "--quiet",
        ],
    }  # fmt: skip
    count = {folder: len(list(folder.rglob("*.jpg"))) for folder in (many, few)}
    readings: dict[str, list[float]] = {}
    for _ in range(rounds):
        for kind, model in models.items():
            for name, command in commands.items():
                t_few = poetslearn_seconds(*command(model, few), env=env)
                t_many = poetslearn_seconds(*command(model, many), env=env)
                # Too few photos to outlast the timing noise: no figure rather than a wrong one.
                gap = t_many - t_few
                rate = (count[many] - count[few]) / gap if gap > 0.1 else float("nan")
                readings.setdefault(f"{name} .{kind}", []).append(rate)
    return readings


def run_all(
    architecture,
    weights,
    model_dir,
    sizes,
    label_count,
    rounds,
    work,
    label_models,
    matmul_seconds,
    in_process=False,
) -> None:
    work.mkdir(parents=True, exist_ok=True)
    host = measure_host(matmul_seconds)  # before the rounds, on the same quiet machine
    folders = {
        size: make_photos(work, count, tuple(int(v) for v in size.split("x")))
        for size, count in sizes.items()
    }
    readings = {size: {m: [] for m in IN_PROCESS} for size in folders}
    for _ in range(rounds):  # interleaved: a drift in the machine's speed hits every method
        for size, folder in folders.items():
            for method in IN_PROCESS:
                measure_one = measure_in_this_process if in_process else measure_in_subprocess
                reading = measure_one(method, folder, architecture, weights, model_dir)
                readings[size][method].append(reading)
    first = next(iter(folders.values()))
    models = train_models(work, first, architecture, weights, model_dir)
    models = {kind: models[kind] for kind in label_models.split(",")}
    rates = label_and_evaluate_rates(
        models, subset(first, work, label_count), subset(first, work, 12), rounds
    )
    report = summarise(architecture, readings, rates, host)
    print(json.dumps(report))


def summarise(architecture: str, readings: dict, rates: dict, host: dict) -> dict:
    report: dict = {"architecture": architecture, "host": host, "sizes": {}, "label_evaluate": {}}
    print(host_line(host))
    print(f"{architecture}: medians of {len(next(iter(next(iter(readings.values())).values())))}")
    for size, methods in readings.items():
        row = {
            m: {
                "img_per_s": statistics.median([r["img_per_s"] for r in rs]),
                "readings": [round(r["img_per_s"], 1) for r in rs],
                "cores_busy": statistics.median([r["cores_busy"] for r in rs]),
                "peak_mb": max(r["peak_mb"] for r in rs),
                "resize": rs[0].get("resize"),
            }
            for m, rs in methods.items()
        }
        ours = row["poetslearn"]["img_per_s"]
        row["vs_keras"] = ours / row["keras"]["img_per_s"]
        row["vs_codelab"] = ours / row["codelab"]["img_per_s"]
        row["vs_pillow_resize"] = ours / row["poetslearn_pillow"]["img_per_s"]
        report["sizes"][size] = row
        print(f"  {size} photos:")
        for m in IN_PROCESS:
            r = row[m]
            print(
                f"    {m:17s} {r['img_per_s']:7.1f} img/s {r['readings']}  cores busy "
                f"{100 * r['cores_busy']:3.0f}%  peak {r['peak_mb']:,.0f} MB"
                + (f"  resize: {r['resize']}" if r["resize"] else "")
            )
        print(
            f"    poetslearn / keras {row['vs_keras']:.2f}x, / codelab {row['vs_codelab']:.2f}x, "
            f"/ with Pillow's resize {row['vs_pillow_resize']:.2f}x"
        )
    extraction = next(iter(report["sizes"].values()))["poetslearn"]["img_per_s"]
    print("  label and evaluate (first size, after start-up):")
    for name in [name for name in rates if name.startswith("first label")]:
        seconds = report["label_evaluate"][name] = rates.pop(name)
        print(f"    {name:16s} {seconds:7.1f} s for the whole run, a new cache (converting)")
    for name, values in rates.items():
        rate = statistics.median(values)
        share = rate / extraction
        report["label_evaluate"][name] = (
            {"img_per_s": rate, "of_extraction": share} if rate == rate else None  # NaN: none
        )
        print(f"    {name:16s} {rate:7.1f} img/s ({100 * share:3.0f}% of extraction)")
    return report


@click.group(invoke_without_command=True)
@click.pass_context
@click.option("--architecture", default="mobilenet_0.50_224")
@click.option("--weights", default="imagenet")
@click.option("--model_dir", type=click.Path(path_type=Path), default=ROOT / "../shared/models")
@click.option("--small", default=2000, help="Photos of --small_size.")
@click.option("--small_size", default="500x375")
@click.option("--large", default=200, help="Photos of --large_size (a 12 MP phone's).")
@click.option("--large_size", default="4032x3024")
@click.option("--label_count", default=400, help="Photos for label and evaluate.")
@click.option("--label_models", default="tflite,pb", help="Models label and evaluate use.")
@click.option("--rounds", default=2)
@click.option("--matmul_seconds", default=2.0, help="Per reading of TensorFlow's matmul rate.")
@click.option("--work", type=click.Path(path_type=Path), default=ROOT / "tf_files/photo_bench")
@click.option(
    "--in_process",
    is_flag=True,
    help="Every method in this process (a smoke run: no TensorFlow start-up per method, no peak "
    "memory of each method's own).",
)
def main(ctx, architecture, weights, model_dir, small, small_size, large, large_size, **rest):
    if ctx.invoked_subcommand is None:
        sizes = {small_size: small, large_size: large}
        run_all(architecture, weights, model_dir, sizes, **rest)


@main.command("measure", hidden=True)
@click.argument("method", type=click.Choice(sorted(METHODS)))
@click.argument("folder", type=click.Path(path_type=Path))
@click.argument("architecture")
@click.argument("weights")
@click.argument("model_dir", type=click.Path(path_type=Path))
def measure(method, folder, architecture, weights, model_dir):
    """One method on one folder in this process: one JSON line."""
    from poetslearn.memory import peak_memory_mb

    result = measure_in_this_process(method, folder, architecture, weights, model_dir)
    print(json.dumps({**result, "peak_mb": peak_memory_mb() or float("nan")}))


@main.command("profile")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--architecture", default="mobilenet_0.50_224")
@click.option("--weights", default="imagenet")
@click.option("--model_dir", type=click.Path(path_type=Path), default=ROOT / "../shared/models")
@click.option("--count", default=200)
def profile(folder, architecture, weights, model_dir, count):
    """Milliseconds of one core per photo: decode, resize (each implementation, and how far
    apart their bottlenecks are), the network (a batch of 64). Ends with one JSON line."""
    from poetslearn.data.images import DRAFT_FACTOR, read_image_file
    from poetslearn.data.resize import RESIZERS, use_compiled_resize
    from poetslearn.extract.extractor import FeatureExtractor

    arch, backbone = _backbone(architecture, weights, model_dir)
    size, paths = arch.input_size, sorted(folder.rglob("*.jpg"))[:count]
    if not paths:
        raise click.UsageError(f"{folder} holds no .jpg photos to profile.")
    decoded, decode_ms = _per_photo_ms(paths, lambda p: read_image_file(p, DRAFT_FACTOR * size))
    start = time.perf_counter()
    use_compiled_resize()
    load_s = time.perf_counter() - start
    resized, resize_ms = {}, {}
    for name, resize in RESIZERS.items():
        out, resize_ms[name] = _per_photo_ms(decoded, lambda p, r=resize: r(p, size, size))
        resized[name] = np.stack(out)
    extractor = FeatureExtractor(arch, backbone, engine="auto")
    vectors = {name: _bottlenecks(extractor, pixels) for name, pixels in resized.items()}
    start = time.perf_counter()
    _bottlenecks(extractor, resized["compiled"])
    network_ms = 1000 * (time.perf_counter() - start) / len(paths) * (os.cpu_count() or 1)
    report = {
        "decode_ms": decode_ms,
        "resize_ms": resize_ms,
        "compiled_load_s": load_s,
        "network_ms": network_ms,
        "max_pixel_difference": float(np.abs(resized["compiled"] - resized["pillow"]).max()),
        "max_bottleneck_difference": float(np.abs(vectors["compiled"] - vectors["pillow"]).max()),
        "bottleneck_scale": float(np.abs(vectors["pillow"]).max()),
    }
    for name in RESIZERS:
        total = decode_ms + resize_ms[name] + network_ms
        report[f"at_most_img_per_s_{name}"] = 1000 * (os.cpu_count() or 1) / total
        print(
            f"per photo, one core, {name} resize: decode {decode_ms:.1f} ms, resize "
            f"{resize_ms[name]:.2f} ms, network {network_ms:.1f} ms (its rate on all cores, "
            f"times the cores): {total:.1f} ms, so at most "
            f"{report[f'at_most_img_per_s_{name}']:.0f} img/s on these cores"
        )
    print(
        f"compiled resize: loaded in {load_s:.2f} s; against Pillow's, pixels differ by at most "
        f"{report['max_pixel_difference']:.1e} of 255, bottlenecks by at most "
        f"{report['max_bottleneck_difference']:.1e} (their largest value "
        f"{report['bottleneck_scale']:.2f})"
    )
    print(json.dumps(report))


def _per_photo_ms(items: list, work) -> tuple[list, float]:
    start = time.perf_counter()
    out = [work(item) for item in items]
    return out, 1000 * (time.perf_counter() - start) / len(items)


def _bottlenecks(extractor, pixels: np.ndarray) -> np.ndarray:
    extractor(pixels[:64])  # built and warm before any timing
    return np.concatenate([extractor(pixels[i : i + 64]) for i in range(0, len(pixels), 64)])


if __name__ == "__main__":
    main()
