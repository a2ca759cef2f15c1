"""Issue 23's goal, measured: `retrain --fine_tune_blocks 4` with every other setting at its
default, on the whole of CIFAR-10 with genuine ImageNet weights, reaches the goal on validation
and on the bit-exact test rows 0-999, beats the new layer alone by 3 points on validation, and
the exported graph and .tflite score what `retrain` reported (to the few images the activation
cache explains: retrain scores the test images through it, one byte per ReLU6 value at the cut,
the exports run the float network). About four minutes on two cores at mobilenet_0.25_128.

    python scripts/fine_tune_goal.py --check      # exit code 1 when a goal is missed

CI runs it with --check (.ci/run). It was the slow test `test_slow_fine_tuning_goal.py` until the
suite had to fit in ten minutes: a figure belongs to a script that prints it. Prints a table and
a JSON line.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("POETSLEARN_SHARED_DIR") or ROOT / ".." / "shared")
# Architecture -> (validation, test rows 0-999): the goals issue 23 set.
GOALS = {"mobilenet_0.25_128": (0.850, 0.860)}
GAIN_OVER_NEW_LAYER = 0.03
# Measured at 0.25/128: 2 images of 10,000 apart on an EPYC host; on a Sapphire Rapids host 5 of
# 10,000 and 5 of rows 0-999 (exports 0.7972 / 0.879, retrain 0.7967 / 0.874), where the .pb,
# the .tflite and the .onnx gave the same figures to the image.
FLIPS_OF_10K, FLIPS_OF_1K = 0.002, 0.008


def run_retrain(architecture, weights, data_dir, model_dir, work: Path, blocks, extra) -> dict:
    from click.testing import CliRunner

    from poetslearn.cli.main import cli

    args = [
        "retrain", "--architecture", architecture, "--weights", weights,
        "--model_dir", str(model_dir), "--data_dir", str(data_dir),
        "--bottleneck_dir", str(work / "bottlenecks"), "--summaries_dir", "",
        "--output_graph", str(work / "g.pb"), "--output_labels", str(work / "l.txt"),
        "--tflite_output", str(work / "g.tflite"), "--fine_tune_blocks", str(blocks),
        "--quiet", "--json", *extra,
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    if result.exit_code != 0:
        raise SystemExit(f"retrain failed:\n{result.output[-3000:]}")
    return json.loads(result.stdout)


def score_exports(work: Path, data_dir: Path) -> dict:
    """The graph through `evaluate` (all 10,000 test images), the .tflite on rows 0-999."""
    from click.testing import CliRunner

    from poetslearn.cli.main import cli
    from poetslearn.config import LabelConfig
    from poetslearn.data.cifar10 import load_cifar10
    from poetslearn.data.sources import Split
    from poetslearn.inference.evaluate import evaluate_split
    from poetslearn.inference.label import load_classifier

    evaluated = CliRunner().invoke(
        cli, ["evaluate", "--graph", str(work / "g.pb"), "--data_dir", str(data_dir), "--json"]
    )
    if evaluated.exit_code != 0:
        raise SystemExit(f"evaluate failed:\n{evaluated.output[-3000:]}")
    graph = json.loads(evaluated.stdout)
    test = load_cifar10(data_dir, download=False, show_progress=False).splits["test"]
    rows = min(1000, len(test))
    first = Split(test.images.subset(list(range(rows))), test.labels[:rows])
    tflite = load_classifier(LabelConfig(graph=work / "g.tflite"))
    on_tflite = evaluate_split(tflite, first, graph["labels"], show_progress=False)
    return {
        "graph_test": graph["accuracy"],
        "graph_rows_0_999": graph.get("test_accuracy_rows_0_999"),
        "tflite_rows_0_999": on_tflite.accuracy,
    }


def missed(report: dict, goals: tuple[float, float] | None) -> list[str]:
    """Every goal the run missed, in words; none when all were met."""
    rows, val = report["test_accuracy_rows_0_999"], report["validation_accuracy"]
    out = []
    if goals is not None:
        if report["epochs"] != report["epochs_by_the_rule"]:
            out.append(f"{report['epochs']} epochs, not the rule's {report['epochs_by_the_rule']}")
        if val < goals[0]:
            out.append(f"validation {val:.2%} < {goals[0]:.1%}")
        if rows is None or rows < goals[1]:
            out.append(f"rows 0-999 {rows} < {goals[1]:.1%}")
    if val < report["new_layer_validation"] + GAIN_OVER_NEW_LAYER:
        out.append(f"validation {val:.2%} not 3 points above the new layer's")
    if abs(report["graph_test"] - report["test_accuracy"]) > FLIPS_OF_10K:
        out.append("the graph's 10,000 test images disagree with retrain's figure")
    if rows is not None and abs(report["graph_rows_0_999"] - rows) > FLIPS_OF_1K:
        out.append("the graph's rows 0-999 disagree with retrain's figure")
    if report["graph_rows_0_999"] is not None:
        if abs(report["tflite_rows_0_999"] - report["graph_rows_0_999"]) > 0.001:
            out.append("the .tflite and the graph disagree on rows 0-999")
    return out


@click.command()
@click.option("--architecture", default="mobilenet_0.25_128", show_default=True)
@click.option("--weights", default="imagenet", show_default=True)
@click.option("--data_dir", type=click.Path(path_type=Path), default=SHARED / "data")
@click.option("--model_dir", type=click.Path(path_type=Path), default=SHARED / "models")
@click.option("--work", type=click.Path(path_type=Path), default=None, help="Default: a temp dir.")
@click.option("--blocks", default=4, show_default=True, help="--fine_tune_blocks K.")
@click.option("--check", is_flag=True, help="Exit 1 when a goal is missed.")
@click.option("--extra", default="", help="More retrain flags (for a smoke run: epochs).")
def main(architecture, weights, data_dir, model_dir, work, blocks, check, extra) -> None:
    from poetslearn.train.schedule import fine_tune_epochs

    with tempfile.TemporaryDirectory() as folder:
        work = Path(work or folder)
        start = time.perf_counter()
        retrained = run_retrain(
            architecture, weights, data_dir, model_dir, work, blocks, extra.split()
        )
        seconds = time.perf_counter() - start
        meta = json.loads((work / "g.pb.json").read_text())
        report = {
            "architecture": architecture,
            "retrain_s": round(seconds, 1),
            "epochs": meta["fine_tuning"]["epochs"],
            "epochs_by_the_rule": fine_tune_epochs(meta["dataset"]["sizes"]["train"]),
            "validation_accuracy": retrained["validation_accuracy"],
            "new_layer_validation": meta["fine_tuning"]["new_layer_validation_accuracy"],
            "test_accuracy": retrained["test_accuracy"],
            "test_accuracy_rows_0_999": retrained.get("test_accuracy_rows_0_999"),
            **score_exports(work, data_dir),
        }
    goals = GOALS.get(architecture)
    report["missed"] = missed(report, goals)
    for name, value in report.items():
        print(f"{name:26s} {value}")
    print(json.dumps(report))
    if check and (goals is None or blocks != 4 or report["missed"]):
        sys.exit(1)


if __name__ == "__main__":
    main()
