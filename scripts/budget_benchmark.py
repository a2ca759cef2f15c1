"""`retrain --time_budget` measured: for each budget, a cold run (an empty bottleneck folder) of
`poetslearn retrain --time_budget B` in a fresh process, against the default configuration run
cold on the same data: the wall time of the whole command (start-up included), what the plan
chose and estimated, and the accuracy on validation and (CIFAR-10) on the bit-exact test rows
0-999. `--busy` runs each budget again with both cores kept busy by two loops this script starts
and stops.

    python scripts/budget_benchmark.py --budgets 2m,5m,15m
    python scripts/budget_benchmark.py --budgets 2m,10m --photos 2000   # a folder of JPEGs
    python scripts/budget_benchmark.py --budgets 5m --busy --no_default

The photo folder is CIFAR-10's first training images enlarged to 320x240 and saved as JPEG
(quality 90), one folder per class: real classes, in files of a photo's kind. Prints the host,
a table and one JSON line.
"""

from __future__ import annotations

import contextlib
import json
import os
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

SHARED = Path(os.environ.get("POETSLEARN_SHARED_DIR") or ROOT / ".." / "shared")


def photo_folder(root: Path, count: int) -> Path:
    """CIFAR-10's first `count` training images as 320x240 JPEGs, a folder per class."""
    from poetslearn.data.cifar10 import load_cifar10

    folder = root / f"cifar_photos_{count}"
    if (folder / ".complete").exists():
        return folder
    data = load_cifar10(SHARED / "data", download=False, show_progress=False)
    train = data.splits["train"]
    pixels, _ = train.images.load_batch(list(range(count)), 32)
    for i, (image, label) in enumerate(zip(pixels.astype(np.uint8), train.labels[:count])):
        (folder / data.class_names[label]).mkdir(parents=True, exist_ok=True)
        photo = Image.fromarray(image).resize((320, 240), Image.BICUBIC)
        photo.save(folder / data.class_names[label] / f"{i:05d}.jpg", quality=90)
    (folder / ".complete").touch()
    return folder


@contextlib.contextmanager
def busy_cores(on: bool):
    """Two busy loops for the time of the block (started and stopped here)."""
    loops = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2 if on else 0)
    ]
    try:
        yield
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()


def run(data: list[str], extra: list[str], busy: bool) -> dict:
    """One cold `poetslearn retrain ... --json` in a fresh process: its report and wall time."""
    with tempfile.TemporaryDirectory() as work, busy_cores(busy):
        work = Path(work)
        command = [
            sys.executable, "-m", "poetslearn", "retrain", *data,
            "--model_dir", str(SHARED / "models"),
            "--bottleneck_dir", str(work / "bottlenecks"),
            "--output_graph", str(work / "graph.pb"),
            "--output_labels", str(work / "labels.txt"),
            "--summaries_dir", "", "--quiet", "--json", *extra,
        ]  # fmt: skip
        start = time.monotonic()
        done = subprocess.run(command, capture_output=True, text=True)
        wall = time.monotonic() - start
    if done.returncode != 0:
        raise click.ClickException(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout)
    return {
        "wall_seconds": round(wall, 1),
        "validation": report.get("validation_accuracy"),
        "rows_0_999": report.get("test_accuracy_rows_0_999"),
        "test": report.get("test_accuracy"),
        "architecture": report["architecture"],
        "bottleneck_blocks": report["bottleneck_blocks"],
        "plan": report.get("time_budget"),
        "run_seconds": report["timings_s"]["total"],
        "timings_s": report["timings_s"],
        "bottlenecks": report["bottlenecks"],
        "fine_tuning": report.get("fine_tuning"),  # the epochs the clock let it run
    }


# The plan's stages under the names of the run's timings (the new layer's training is timed
# inside train_head, so "train_head" is not a stage of its own here).
STAGES = ("build_model", "bottlenecks", "new_layer", "activations", "fine_tuning", "export")


def stage_line(name: str, r: dict) -> str:
    """Each stage's estimate against its run, where the estimate went wrong."""
    planned, ran = r["plan"]["chosen"]["stage_seconds"], r["timings_s"]
    parts = [
        f"{stage} {planned[stage]:.0f} / {ran.get(stage, 0):.0f} s"
        for stage in STAGES
        if stage in planned
    ]
    return f"  {name}, stages estimated / run: " + ", ".join(parts) + epochs_note(r)


def epochs_note(r: dict) -> str:
    """The epochs fine-tuning ran against those planned ("6 run; 5 planned of 8" where the plan
    cut them to fit and the clock gave one back)."""
    tuned, chosen = r.get("fine_tuning"), r["plan"]["chosen"]
    if not tuned:
        return ""
    planned = chosen["fine_tune_epochs"]
    full = chosen.get("full_epochs")
    of_full = f" of {full}" if full and full != planned else ""
    return f"; epochs {tuned['epochs']} run, {planned} planned{of_full}"


def describe(name: str, r: dict) -> str:
    plan = r["plan"]
    if plan:
        chosen = plan["chosen"]
        what = ", ".join(f"{k}={v}" for k, v in chosen.items() if k in ("architecture",
                         "bottleneck_blocks", "fine_tune_blocks", "fine_tune_epochs"))  # fmt: skip
        what += ", mirrored" if chosen.get("test_time_mirror") else ""
        ratio = chosen["estimated_seconds"] / r["run_seconds"]
        estimate = (
            f"{chosen['estimated_seconds']:.0f} s est. / {r['run_seconds']:.0f} s run "
            f"({ratio:.2f}x; probe {plan['measured']['engine_gmacs_per_second']:.1f} GMAC/s)"
        )
    else:
        what, estimate = f"{r['architecture']} (default)", ""
    rows = "" if r["rows_0_999"] is None else f"{r['rows_0_999']:.1%}"
    return (
        f"| {name} | {what} | {r['wall_seconds']:.0f} s | {estimate} | {r['validation']:.1%} | "
        f"{rows} |"
    )


@click.command()
@click.option("--budgets", default="2m,5m,15m", help="Comma-separated --time_budget values.")
@click.option("--photos", default=0, help="Use a folder of this many JPEGs instead of CIFAR-10.")
@click.option("--busy", is_flag=True, help="Also run each budget with both cores kept busy.")
@click.option("--no_default", is_flag=True, help="Skip the default configuration's run.")
@click.option("--data_dir", type=click.Path(path_type=Path), default=SHARED / "data")
@click.option("--extra", default="", help="Options for every retrain (the tests' tiny network).")
@click.option("--matmul_seconds", default=1.0, help="Seconds per reading of the host's matmul.")
def main(budgets, photos, busy, no_default, data_dir, extra, matmul_seconds) -> None:
    host = measure_host(matmul_seconds=matmul_seconds)
    print(host_line(host), flush=True)
    work = Path(tempfile.gettempdir()) / "poetslearn_budget_benchmark"
    data = (
        ["--image_dir", str(photo_folder(work, photos))]
        if photos
        else ["--data_dir", str(data_dir)]
    )
    data += extra.split()
    results = {}
    if not no_default:
        results["default"] = run(data, [], False)
        print(describe("default", results["default"]), flush=True)
    for budget in budgets.split(","):
        for loaded in (False, True) if busy else (False,):
            name = f"{budget}" + (", busy" if loaded else "")
            results[name] = run(data, ["--time_budget", budget], loaded)
            print(describe(name, results[name]), flush=True)
    print("| run | plan | wall | estimate / run | validation | rows 0-999 |")
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        print(describe(name, r))
    for name, r in results.items():
        if r["plan"]:
            print(stage_line(name, r))
    print(json.dumps({"host": host, "data": data[0], "results": results}))


if __name__ == "__main__":
    main()
