"""A multi-label benchmark anyone can rerun: CIFAR-10 2x2 mosaics (four images side by side,
64x64), labelled with the classes present, written as PNG files plus a CSV; then `retrain
--multi_label` on them, one fresh process per variant, each measured on the test mosaics.

Training and validation mosaics come from CIFAR-10's training set (its rows 0-44,999 and its
validation rows 45,000-49,999), test mosaics from the bit-exact test rows 0-999 only.

    python scripts/cifar_mosaics.py make --train 20000 --validation 2000 --test 2000
    python scripts/cifar_mosaics.py measure --architecture mobilenet_0.25_128 \\
        --variants new_layer,blocks_all

`measure` prints, per variant: test mAP, micro and macro F1 at the thresholds chosen on
validation and at 0.5, validation mAP, and the wall time of the run (the first variant computes
the bottlenecks; the later ones find them cached). A JSON line follows the table.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import click
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
TILES = 4  # 2 x 2
VARIANTS = {
    "new_layer": [],
    "blocks_4": ["--bottleneck_blocks", "4"],
    "blocks_all": ["--bottleneck_blocks", "all"],
    "fine_tune_4": ["--fine_tune_blocks", "4"],
}


def mosaics(pixels: np.ndarray, labels: np.ndarray, count: int, rng) -> tuple[np.ndarray, list]:
    """`count` mosaics of four random images of `pixels` [N, 32, 32, 3], and each one's set of
    class indices."""
    picks = rng.integers(0, len(pixels), (count, TILES))
    tiles = pixels[picks]  # [count, 4, 32, 32, 3]
    top = np.concatenate([tiles[:, 0], tiles[:, 1]], axis=2)
    bottom = np.concatenate([tiles[:, 2], tiles[:, 3]], axis=2)
    return np.concatenate([top, bottom], axis=1), [sorted(set(labels[p].tolist())) for p in picks]


def write_split(folder: Path, split: str, images, label_sets, class_names) -> list[str]:
    (folder / split).mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (image, classes) in enumerate(zip(images, label_sets)):
        name = f"{split}/{i:05d}.png"
        Image.fromarray(image).save(folder / name)
        rows.append(f"{name},{';'.join(class_names[c] for c in classes)},{split}")
    return rows


@click.group()
def main() -> None:
    """Make the mosaics, or measure retrain --multi_label on them."""


@main.command()
@click.option("--data_dir", type=click.Path(path_type=Path), default=Path("../shared/data"))
@click.option("--out", type=click.Path(path_type=Path), default=Path("tf_files/cifar_mosaics"))
@click.option("--train", "n_train", default=20000)
@click.option("--validation", "n_validation", default=2000)
@click.option("--test", "n_test", default=2000)
@click.option("--seed", default=0)
def make(data_dir, out, n_train, n_validation, n_test, seed) -> None:
    """Writes OUT/{train,validation,test}/*.png and OUT/mosaics.csv."""
    from poetslearn.data.cifar10 import load_cifar10

    data = load_cifar10(data_dir, download=False, show_progress=False)
    rng = np.random.default_rng(seed)
    sources = {
        "train": data.splits["train"],
        "validation": data.splits["validation"],
        "test": data.splits["test"].subset(np.arange(len(data.splits["test"])) < 1000),
    }
    rows = ["path,labels,split"]
    for split, count in (("train", n_train), ("validation", n_validation), ("test", n_test)):
        source = sources[split]
        images, label_sets = mosaics(source.images.pixels, source.labels, count, rng)
        rows += write_split(out, split, images, label_sets, data.class_names)
    (out / "mosaics.csv").write_text("\n".join(rows) + "\n")
    per_image = np.mean([row.count(";") + 1 for row in rows[1:]])
    click.echo(f"Wrote {len(rows) - 1:,} mosaics to {out} ({per_image:.2f} labels per image).")


def run_variant(table: Path, architecture: str, extra: list[str], work: Path) -> dict:
    args = [sys.executable, "-m", "poetslearn", "retrain", "--data_csv", str(table)]
    args += ["--multi_label", "--architecture", architecture, "--json", "--quiet"]
    args += ["--bottleneck_dir", str(work / "bottlenecks"), "--summaries_dir", ""]
    args += ["--output_graph", str(work / "graph.pb"), "--output_labels", str(work / "l.txt")]
    start = time.perf_counter()
    result = subprocess.run([*args, *extra], capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - start
    if result.returncode:
        raise SystemExit(result.stderr[-3000:])
    report = json.loads(result.stdout)
    keys = ("test_map", "test_micro_f1", "test_macro_f1", "test_micro_f1_at_0_5")
    figures = {key: report[key] for key in keys}
    figures["test_macro_f1_at_0_5"] = report["test_macro_f1_at_0_5"]
    figures["validation_map"] = report["validation_map"]
    figures["computed"] = report["bottlenecks"]["computed"]
    return {**figures, "seconds": round(seconds, 1)}


@main.command()
@click.option("--table", type=click.Path(path_type=Path), default=None)
@click.option("--architecture", default="mobilenet_0.25_128")
@click.option("--variants", default="new_layer,blocks_all")
@click.option("--work", type=click.Path(path_type=Path), default=Path("tf_files/mosaic_runs"))
@click.option("--weights_args", default="", help="Extra retrain arguments (e.g. --model_dir).")
def measure(table, architecture, variants, work, weights_args) -> None:
    """Runs each variant in a fresh process and prints the table."""
    table = table or Path("tf_files/cifar_mosaics/mosaics.csv")
    results = {}
    for name in variants.split(","):
        extra = VARIANTS[name] + weights_args.split()
        results[name] = run_variant(table.absolute(), architecture, extra, work.absolute())
        r = results[name]
        click.echo(
            f"{architecture} {name:10s} mAP {r['test_map']:.3f}  micro-F1 {r['test_micro_f1']:.3f} "
            f"(at 0.5: {r['test_micro_f1_at_0_5']:.3f})  macro-F1 {r['test_macro_f1']:.3f} "
            f"(at 0.5: {r['test_macro_f1_at_0_5']:.3f})  validation mAP "
            f"{r['validation_map']:.3f}  {r['seconds']:.0f} s ({r['computed']:,} computed)"
        )
    click.echo(json.dumps({"architecture": architecture, "results": results}))


if __name__ == "__main__":
    main()
