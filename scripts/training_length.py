"""The default training lengths against the earlier fixed ones: the new layer's (50 passes over
the training images, 300-8,000 steps) against 8,000 steps, and with --fine_tune_blocks K
fine-tuning's (about 360,000 images seen, FINE_TUNE_IMAGES in train/schedule.py; 2-30 epochs)
against 6 epochs; on folders of real photos of several sizes: CIFAR-10 training images, N per
class, as PNG class folders; each classifier then evaluated on CIFAR-10's test rows (all
10,000, and the bit-exact rows 0-999). Same bottleneck cache for both lengths.

    python scripts/training_length.py --architecture mobilenet_0.25_128 --per_class 4,30,300
    python scripts/training_length.py --per_class 30,300 --fine_tune_blocks 4

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


def lengths(fine_tune_blocks: int) -> list[tuple[str, list[str]]]:
    """(name, flags) of the rule and of the earlier fixed length it replaced."""
    if not fine_tune_blocks:
        return [("rule", []), ("8000", ["--how_many_training_steps", "8000"])]
    tuning = ["--fine_tune_blocks", str(fine_tune_blocks)]
    return [("rule", tuning), ("6 epochs", [*tuning, "--fine_tune_epochs", "6"])]


def chosen_length(meta: dict) -> int:
    """Fine-tuning's epochs, else the new layer's steps, as the metadata records them."""
    if "fine_tuning" in meta:
        return meta["fine_tuning"]["epochs"]
    return meta["training"]["how_many_training_steps"]


@click.command()
@click.option("--architecture", default="mobilenet_0.25_128")
@click.option("--per_class", default="4,30,300")
@click.option(
    "--fine_tune_blocks",
    default=0,
    help="K > 0: fine-tuning's rule against its earlier 6 epochs, instead of the new layer's.",
)
@click.option("--weights", default="imagenet", show_default=True)
@click.option("--data_dir", type=click.Path(path_type=Path), default=ROOT / "../shared/data")
@click.option("--model_dir", type=click.Path(path_type=Path), default=ROOT / "../shared/models")
@click.option("--work", type=click.Path(path_type=Path), default=ROOT / "tf_files/length")
def main(architecture, per_class, fine_tune_blocks, weights, data_dir, model_dir, work):
    report = []
    unit = "epochs" if fine_tune_blocks else "steps"
    print(f"{architecture}, K={fine_tune_blocks}: the rule against the earlier fixed length")
    print(f"{'per class':>9s} {'length':>8s} {unit:>7s} {'train s':>8s} {'val':>6s} "
          f"{'test 10k':>8s} {'rows 0-999':>10s}")  # fmt: skip
    for n in (int(v) for v in per_class.split(",")):
        folder = cifar_folder(data_dir, work, n)
        for name, flags in lengths(fine_tune_blocks):
            tag = name.replace(" ", "")
            graph = work / f"{architecture}_{n}_k{fine_tune_blocks}_{tag}.pb"
            out = poetslearn(
                "retrain", "--image_dir", str(folder), "--architecture", architecture,
                "--model_dir", str(model_dir), "--weights", weights,
                "--bottleneck_dir", str(work / "bottlenecks"),
                "--output_graph", str(graph), "--output_labels", str(graph.with_suffix(".txt")),
                "--summaries_dir", "", "--quiet", *flags,
            )  # fmt: skip
            # The training stage: the new layer, and with fine-tuning its other parts too.
            parts = re.findall(r"(?:new layer|activations|fine-tuning) ([\d.]+) s", out)
            train_s = sum(float(seconds) for seconds in parts)
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
                )
            )
            row = {
                "per_class": n,
                "length": name,
                unit: chosen_length(meta),
                "train_s": train_s,
                "validation": meta["validation_accuracy"],
                "test_10k": evaluated["accuracy"],
                "rows_0_999": evaluated.get("test_accuracy_rows_0_999"),
            }
            report.append(row)
            rows = row["rows_0_999"]
            print(
                f"{n:9d} {name:>8s} {row[unit]:7,d} {train_s:8.1f} {row['validation']:6.1%} "
                f"{row['test_10k']:8.1%} {rows if rows is None else format(rows, '.1%'):>10}"
            )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
