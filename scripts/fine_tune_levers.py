"""The levers of fine-tuning on cached activations, one at a time against the same baseline, on
CIFAR-10: validation (5,000), test rows 0-999 (bit-exact, +-1.4 points at 95%) and all 10,000
test images, the best epoch, the validation figure of every epoch, and the training time. Each
variant runs `retrain` in a fresh process on the same bottleneck and activation caches (the first
variant fills them). Mirrored test-time scoring is measured on each variant's exported .tflite
(scripts/mirror_scoring.py): the scores of every image and its mirror averaged, against the image
alone.

    python scripts/fine_tune_levers.py --architecture mobilenet_0.25_128 --blocks 4 \
        --variants baseline,epochs12,smoothing,warmup,mixup

Choose on validation only; the test figures are reported beside it. Prints a table and JSON lines.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[1]

# name -> RetrainConfig fields changed from the baseline (the defaults of 0.3.0: 6 epochs at
# 1e-4, batch 64, cosine decay, no warm-up, smoothing or mixup).
BASELINE = {
    "fine_tune_epochs": 6,
    "fine_tune_warmup": 0.0,
    "label_smoothing": 0.0,
    "mixup": 0.0,
}
VARIANTS = {
    "baseline": {},
    "epochs8": {"fine_tune_epochs": 8},
    "epochs10": {"fine_tune_epochs": 10},
    "epochs12": {"fine_tune_epochs": 12},
    "epochs15": {"fine_tune_epochs": 15},
    "smoothing": {"label_smoothing": 0.1},
    "warmup": {"fine_tune_warmup": 0.5},
    "mixup": {"mixup": 0.2},
    "lr2e-4": {"fine_tune_learning_rate": 2e-4},
    "lr3e-4": {"fine_tune_learning_rate": 3e-4},
    "lr4e-4": {"fine_tune_learning_rate": 4e-4},
    "lr5e-5": {"fine_tune_learning_rate": 5e-5},
    "flip": {"flip_left_right": True},
    "k6": {"fine_tune_blocks": 6},
}


def parse_variant(spec: str) -> dict:
    """'name' or 'name+name' (levers combined)."""
    fields = dict(BASELINE)
    for name in spec.split("+"):
        if name not in VARIANTS:
            raise click.BadParameter(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}")
        fields.update(VARIANTS[name])
    return fields


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


@click.group()
def cli():
    pass


@cli.command()
@click.option("--fields", required=True, help="RetrainConfig fields as JSON")
@click.option("--work", type=click.Path(path_type=Path), required=True)
@click.option("--data_dir", type=click.Path(path_type=Path), required=True)
@click.option("--model_dir", type=click.Path(path_type=Path), required=True)
@click.option("--architecture", required=True)
@click.option("--weights", default="imagenet")
def one(fields, work, data_dir, model_dir, architecture, weights):
    """One variant in this process; prints one JSON line."""
    from mirror_scoring import mirrored_scores  # beside this script

    from poetslearn import RetrainConfig, retrain

    fields = json.loads(fields)
    tflite = work / "model.tflite"
    config = RetrainConfig(
        architecture=architecture,
        weights=weights,
        data_dir=data_dir,
        model_dir=model_dir,
        bottleneck_dir=work / "bottlenecks",
        output_graph=work / "model.pb",
        output_labels=work / "labels.txt",
        tflite_output=tflite,
        summaries_dir=None,
        show_progress=False,
        **fields,
    )
    start = time.perf_counter()
    result = retrain(config, log=lambda line: None)
    history = result.trained.history
    row = {
        "fields": fields,
        "validation": result.trained.best_validation_accuracy,
        "rows_0_999": result.score.extra.get("test_accuracy_rows_0_999"),
        "test_10k": result.score.accuracy,
        "best_epoch": result.trained.best_step,
        "epochs": [round(r.validation_accuracy, 4) for r in history],
        "train_s": result.timings.get("train_head"),
        "total_s": time.perf_counter() - start,
        **mirrored_scores(tflite, data_dir),
    }
    print(json.dumps(row))


@cli.command()
@click.option("--architecture", default="mobilenet_0.25_128")
@click.option("--weights", default="imagenet", help="'none': random weights (for a smoke test)")
@click.option("--blocks", default=4, type=int)
@click.option("--variants", default="baseline,epochs12,smoothing,warmup,mixup")
@click.option("--data_dir", type=click.Path(path_type=Path), default=ROOT / "../shared/data")
@click.option("--model_dir", type=click.Path(path_type=Path), default=ROOT / "../shared/models")
@click.option("--work", type=click.Path(path_type=Path), default=ROOT / "tf_files/levers")
def measure(architecture, weights, blocks, variants, data_dir, model_dir, work):
    """Each variant in a fresh process, then the table."""
    work.mkdir(parents=True, exist_ok=True)
    print(f"{architecture}, K={blocks}: val / rows 0-999 / test 10k (mirrored at test time)")
    for spec in variants.split(","):
        fields = {"fine_tune_blocks": blocks, **parse_variant(spec)}
        done = subprocess.run(
            [sys.executable, __file__, "one", "--fields", json.dumps(fields), "--work", str(work),
             "--data_dir", str(data_dir), "--model_dir", str(model_dir),
             "--architecture", architecture, "--weights", weights],
            capture_output=True, text=True, cwd=ROOT,
        )  # fmt: skip
        if done.returncode:
            print(f"{spec}: failed\n{done.stderr[-3000:]}")
            continue
        row = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"{spec:24s} {row['validation']:.1%} / {percent(row['rows_0_999'])} / "
            f"{row['test_10k']:.1%}  (mirrored {row['validation_mirrored']:.1%} / "
            f"{row['rows_0_999_mirrored']:.1%} / {row['test_mirrored']:.1%})  best epoch "
            f"{row['best_epoch']}, train {row['train_s']:.0f} s, epochs {row['epochs']}",
            flush=True,
        )
        print(json.dumps({"variant": spec, **row}), flush=True)


if __name__ == "__main__":
    cli()
