"""The new layer's default length (50 passes over the training images, 300-8,000 steps) against
the earlier fixed 8,000 steps, on folders of real photos of several sizes: CIFAR-10 training
images, N per class, as PNG class folders; each classifier then evaluated on CIFAR-10's test
rows (all 10,000, and the bit-exact rows 0-999). Same bottleneck cache for both lengths.

    python scripts/training_length.py --architecture mobilenet_0.25_128 --per_class 4,30,300

Prints a table and a JSON line.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import click
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def cifar_folder(data_dir: Path, root: Path, per_class: int) -> Path:
    import numpy as np

    from poetslearn.data.cifar10 import load_cifar10

    folder = root / f"cifar_{per_class}_per_class"
    if folder.exists():
        return folder
    data = load_cifar10(data_dir, download=False, show_progress=False)
    train = data.splits["train"]
    for c, name in enumerate(data.class_names):
        (folder / name).mkdir(parents=True)
        for i in np.flatnonzero(train.labels == c)[:per_class]:
            Image.fromarray(train.images.pixels[i]).save(folder / name / f"{i}.png")
    return folder


def poetslearn(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "poetslearn", *args], capture_output=True, text=True, cwd=ROOT
    )
    if result.returncode:
        raise SystemExit(result.stdout[-2000:] + result.stderr[-2000:])
    return result.stdout


@click.command()
@click.option("--architecture", default="mobilenet_0.25_128")
@click.option("--per_class", default="4,30,300")
@click.option("--data_dir", type=click.Path(path_type=Path), default=ROOT / "../shared/data")
@click.option("--model_dir", type=click.Path(path_type=Path), default=ROOT / "../shared/models")
@click.option("--work", type=click.Path(path_type=Path), default=ROOT / "tf_files/length")
def main(architecture, per_class, data_dir, model_dir, work):
    report = []
    print(f"{architecture}: the rule against 8,000 steps")
    print(f"{'per class':>9s} {'steps':>7s} {'new layer s':>11s} {'val':>6s} {'test 10k':>8s} "
          f"{'rows 0-999':>10s}")  # fmt: skip
    for n in (int(v) for v in per_class.split(",")):
        folder = cifar_folder(data_dir, work, n)
        for steps in (None, 8000):
            graph = work / f"{architecture}_{n}_{steps or 'rule'}.pb"
            out = poetslearn(
                "retrain", "--image_dir", str(folder), "--architecture", architecture,
                "--model_dir", str(model_dir), "--bottleneck_dir", str(work / "bottlenecks"),
                "--output_graph", str(graph), "--output_labels", str(graph.with_suffix(".txt")),
                "--summaries_dir", "", "--quiet",
                *(["--how_many_training_steps", str(steps)] if steps else []),
            )  # fmt: skip
            layer_s = float(re.search(r"new layer ([\d.]+) s", out)[1])
            meta = json.loads(Path(f"{graph}.json").read_text())
            evaluated = json.loads(
                poetslearn(
                    "evaluate",
                    "--graph",
                    str(graph),
                    "--data_dir",
                    str(data_dir),
                    "--json",
                    "--quiet",
                )  # fmt: skip
            )
            row = {
                "per_class": n,
                "steps": meta["training"]["how_many_training_steps"],
                "new_layer_s": layer_s,
                "validation": meta["validation_accuracy"],
                "test_10k": evaluated["accuracy"],
                "rows_0_999": evaluated.get("test_accuracy_rows_0_999"),
            }
            report.append(row)
            rows = row["rows_0_999"]
            print(
                f"{n:9d} {row['steps']:7,d} {layer_s:11.1f} {row['validation']:6.1%} "
                f"{row['test_10k']:8.1%} {rows if rows is None else format(rows, '.1%'):>10}"
            )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
