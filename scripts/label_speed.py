"""How long one `poetslearn label` call takes, as a shell script makes it: a new process each time.

Trains a small classifier on CIFAR-10 images with genuine ImageNet weights (from --model_dir),
exports it as a frozen graph, a .tflite model and a codelab-format graph, then times whole
commands, interleaved, on one photo:

- `poetslearn label --graph model.tflite` (LiteRT, Pillow and NumPy: no TensorFlow),
- `poetslearn label --graph graph.pb` (TensorFlow), and the same once a `label` of 200 photos
  has converted the graph for LiteRT (inference/graph_engine.py; no TensorFlow then),
- the codelab's label_image.py steps on the codelab-format graph (scripts/codelab_label_image.py).

    python scripts/label_speed.py --architecture mobilenet_0.50_224 --rounds 5

Prints a table (median and every reading) and a JSON line.
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


def make_folder(data_dir: Path, root: Path, per_class: int = 12) -> Path:
    """Three CIFAR-10 classes as PNG files: enough for retrain to export real models."""
    from poetslearn.data.cifar10 import load_cifar10

    train = load_cifar10(data_dir, download=False, show_progress=False).splits["train"]
    for c, name in ((0, "airplane"), (3, "cat"), (8, "ship")):
        folder = root / name
        folder.mkdir(parents=True)
        for k, i in enumerate(np.flatnonzero(train.labels == c)[:per_class]):
            Image.fromarray(train.images.pixels[i]).save(folder / f"{k}.png")
    return root


def timed(command: list[str], cache: Path) -> float:
    """One call's wall time, with `cache` as its POETSLEARN_CACHE_DIR."""
    env = {**os.environ, "POETSLEARN_CACHE_DIR": str(cache)}
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, cwd=ROOT, env=env)
    return time.perf_counter() - start


def convert_graph(poetslearn: list[str], graph: Path, photo: Path, work: Path) -> Path:
    """A cache in which `graph` is converted for LiteRT, as the first `label` of 200 images or
    more leaves it (inference/graph_engine.py)."""
    many = work / "many"
    many.mkdir()
    for i in range(200):
        shutil.copy(photo, many / f"{i}.jpg")
    cache = work / "converted_cache"
    timed([*poetslearn, "label", "--graph", str(graph), str(many)], cache)
    if not list((cache / "graph_engines").glob("*.tflite")):
        raise click.ClickException(f"label of 200 photos did not convert {graph}")
    return cache


@click.command()
@click.option("--architecture", default="mobilenet_0.50_224")
@click.option("--model_dir", type=click.Path(path_type=Path), default=Path("../shared/models"))
@click.option("--data_dir", type=click.Path(path_type=Path), default=Path("../shared/data"))
@click.option("--weights", default="imagenet")
@click.option("--rounds", default=5, show_default=True)
@click.option(
    "--warm_rounds",
    default=1,
    show_default=True,
    help="Uncounted rounds first, to bring the files into the disk cache; 0 times cold reads.",
)
def main(architecture, model_dir, data_dir, weights, rounds, warm_rounds) -> None:
    from skimage import data

    work = Path(tempfile.mkdtemp(prefix="label-speed-"))
    folder = make_folder(data_dir.resolve(), work / "images")
    photo = work / "cat.jpg"
    Image.fromarray(data.chelsea()).save(photo)  # 451x300, larger than any input size
    poetslearn = [sys.executable, "-m", "poetslearn"]
    common = [
        "retrain",
        "--architecture",
        architecture,
        "--weights",
        weights,
        "--model_dir",
        str(model_dir.resolve()),
        "--image_dir",
        str(folder),
        "--bottleneck_dir",
        str(work / "b"),
        "--summaries_dir",
        "",
        "--how_many_training_steps",
        "100",
        "--quiet",
    ]
    subprocess.run(
        poetslearn
        + common
        + [
            "--output_graph",
            str(work / "graph.pb"),
            "--output_labels",
            str(work / "labels.txt"),
            "--tflite_output",
            str(work / "model.tflite"),
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        poetslearn
        + common
        + [
            "--input_format",
            "codelab",
            "--output_graph",
            str(work / "codelab.pb"),
            "--output_labels",
            str(work / "labels.txt"),
        ],
        check=True,
        capture_output=True,
    )
    size = json.loads((work / "graph.pb.json").read_text())["input_size"][0]
    empty = work / "empty_cache"  # nothing converted: the graph runs on TensorFlow
    converted = convert_graph(poetslearn, work / "graph.pb", photo, work)
    label_pb = poetslearn + ["label", "--graph", str(work / "graph.pb"), "--image", str(photo)]
    commands = {
        "poetslearn label, .tflite": (
            poetslearn + ["label", "--graph", str(work / "model.tflite"), "--image", str(photo)],
            empty,
        ),
        "poetslearn label, .pb": (label_pb, empty),
        "poetslearn label, .pb converted for LiteRT": (label_pb, converted),
        "codelab label_image.py steps, .pb": ([
            sys.executable,
            str(ROOT / "scripts" / "codelab_label_image.py"),
            "--graph",
            str(work / "codelab.pb"),
            "--labels",
            str(work / "labels.txt"),
            "--image",
            str(photo),
            "--input_size",
            str(size),
        ], empty),
    }  # fmt: skip
    for _ in range(warm_rounds):  # the disk cache warmed; not counted
        for command, cache in commands.values():
            timed(command, cache)
    readings = {name: [] for name in commands}
    for _ in range(rounds):
        for name, (command, cache) in commands.items():
            readings[name].append(timed(command, cache))
    medians = {name: statistics.median(r) for name, r in readings.items()}
    fastest = medians["poetslearn label, .tflite"]
    print(f"One image, one process per call, {architecture}, {rounds} interleaved rounds:")
    print("| command | median wall s | readings | vs .tflite |")
    print("|---|---|---|---|")
    for name, median in medians.items():
        print(
            f"| {name} | {median:.2f} | {', '.join(f'{r:.2f}' for r in readings[name])} | "
            f"{median / fastest:.1f}x |"
        )
    print(json.dumps({"architecture": architecture, "median_s": medians, "readings_s": readings}))


if __name__ == "__main__":
    main()
