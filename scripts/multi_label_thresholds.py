"""How a multi-label model's thresholds should be chosen: each strategy picks thresholds on the
validation split, and is scored on the test split (micro and macro F1). The model is the one
`retrain --multi_label` trains (same stages, same bottleneck cache, same defaults).

    python scripts/multi_label_thresholds.py --architecture mobilenet_0.25_128 \\
        --data_csv tf_files/cifar_mosaics/mosaics.csv --bottleneck_blocks all

Strategies: 0.5 for every label; one threshold for all labels (the best micro-F1 on
validation); per label, the exact peak of its F1 (the first rule); per label, by coordinate
ascent on the validation micro-F1; per label, the peak of its F1 averaged over +-0.05 (what
retrain stores: `multi_label_metrics.best_thresholds`); per label, the exact peak pulled
halfway to the one-for-all threshold.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np

from poetslearn.train.multi_label_metrics import best_thresholds, f1_scores


def raw_peak_per_label(probs, targets) -> np.ndarray:
    """Per label, the exact peak of its F1 on validation (midway between the two scores around
    it): the first rule tried."""
    thresholds = np.full(targets.shape[1], 0.5, np.float32)
    for c in range(targets.shape[1]):
        positives = int(targets[:, c].sum())
        if positives == 0:
            continue
        order = np.argsort(-probs[:, c], kind="stable")
        scores, hits = probs[order, c], targets[order, c].astype(np.float64)
        ends = np.flatnonzero(np.r_[scores[1:] != scores[:-1], True])
        f1 = 2 * np.cumsum(hits)[ends] / (ends + 1 + positives)
        best = int(np.argmax(f1))
        below = scores[ends[best] + 1] if ends[best] + 1 < len(scores) else 0.0
        thresholds[c] = (scores[ends[best]] + below) / 2
    return thresholds


def one_threshold(probs, targets) -> np.ndarray:
    candidates = np.linspace(0.05, 0.95, 91)
    micro = [f1_scores(probs, targets, np.full(probs.shape[1], t))["micro_f1"] for t in candidates]
    return np.full(probs.shape[1], candidates[int(np.argmax(micro))], np.float32)


def micro_ascent(probs, targets, rounds: int = 3) -> np.ndarray:
    thresholds = raw_peak_per_label(probs, targets)
    candidates = np.linspace(0.02, 0.98, 97)
    for _ in range(rounds):
        for c in range(probs.shape[1]):
            trials = []
            for t in candidates:
                trial = thresholds.copy()
                trial[c] = t
                trials.append(f1_scores(probs, targets, trial)["micro_f1"])
            thresholds[c] = candidates[int(np.argmax(trials))]
    return thresholds


def shrunk_per_label(probs, targets) -> np.ndarray:
    """Each label's raw-peak threshold pulled halfway to the one best for all labels."""
    return (raw_peak_per_label(probs, targets) + one_threshold(probs, targets)) / 2


STRATEGIES = {
    "0.5": lambda probs, targets: np.full(probs.shape[1], 0.5, np.float32),
    "one_for_all": one_threshold,
    "raw_peak_per_label": raw_peak_per_label,
    "micro_f1_ascent": micro_ascent,
    "smoothed_per_label": best_thresholds,
    "shrunk_per_label": shrunk_per_label,
}


def two_fold(choose, probs, targets) -> float:
    """A rule judged on validation alone: thresholds chosen on one half, micro-F1 measured on
    the other, both ways, averaged (so a rule is chosen without looking at the test split)."""
    half = np.arange(len(probs)) % 2 == 0
    scores = []
    for pick, judge in ((half, ~half), (~half, half)):
        thresholds = choose(probs[pick], targets[pick])
        scores.append(f1_scores(probs[judge], targets[judge], thresholds)["micro_f1"])
    return float(np.mean(scores))


def trained_probabilities(config) -> dict:
    """{split: (probabilities, targets)} of the layer retrain trains for `config`."""
    from poetslearn.backbone.load import fetch_backbone
    from poetslearn.context import RunContext
    from poetslearn.data.datasets import load_dataset
    from poetslearn.extract.backends import extraction_backend_for
    from poetslearn.extract.bottlenecks import get_or_create_bottlenecks
    from poetslearn.extract.extractor import build_extractor
    from poetslearn.train.new_layer import train_new_layer

    ctx = RunContext(lambda *_: None, print, False)
    data = load_dataset(
        None,
        config.data_dir,
        10,
        10,
        show_progress=False,
        warn=print,
        data_csv=config.data_csv,
        multi_label=True,
    )
    extractor = build_extractor(fetch_backbone(config, ctx), config, data, ctx)
    bottlenecks = get_or_create_bottlenecks(
        data, extractor, config, extraction_backend_for(config), ctx
    )
    layer = train_new_layer(bottlenecks, data, extractor, config, None, ctx).layer
    return {
        s: (layer.probabilities(bottlenecks.vectors[s]), bottlenecks.splits[s].labels)
        for s in ("validation", "test")
    }


@click.command()
@click.option("--architecture", default="mobilenet_0.25_128")
@click.option(
    "--data_csv",
    type=click.Path(path_type=Path),
    default=Path("tf_files/cifar_mosaics/mosaics.csv"),
)
@click.option("--bottleneck_blocks", default="1")
@click.option("--model_dir", type=click.Path(path_type=Path), default=Path("../shared/models"))
@click.option("--weights", default="imagenet")
@click.option(
    "--bottleneck_dir",
    type=click.Path(path_type=Path),
    default=Path("tf_files/mosaic_runs/bottlenecks"),
)
def main(architecture, data_csv, bottleneck_blocks, model_dir, weights, bottleneck_dir) -> None:
    from poetslearn.config import RetrainConfig

    blocks = bottleneck_blocks if bottleneck_blocks == "all" else int(bottleneck_blocks)
    config = RetrainConfig(
        architecture=architecture,
        weights=weights,
        model_dir=model_dir,
        data_csv=data_csv,
        multi_label=True,
        bottleneck_blocks=blocks,
        bottleneck_dir=bottleneck_dir,
        summaries_dir="",
        show_progress=False,
    )
    probs = trained_probabilities(config)
    rows = {}
    for name, choose in STRATEGIES.items():
        thresholds = choose(*probs["validation"])
        test = f1_scores(*probs["test"], thresholds)
        rows[name] = {
            "validation_2fold_micro_f1": two_fold(choose, *probs["validation"]),
            "test_micro_f1": test["micro_f1"],
            "test_macro_f1": test["macro_f1"],
        }
        click.echo(
            f"{architecture} N={bottleneck_blocks} {name:18s} validation 2-fold micro-F1 "
            f"{rows[name]['validation_2fold_micro_f1']:.4f}  test micro-F1 "
            f"{test['micro_f1']:.4f}  test macro-F1 {test['macro_f1']:.4f}"
        )
    click.echo(
        json.dumps({"architecture": architecture, "blocks": bottleneck_blocks, "rows": rows})
    )


if __name__ == "__main__":
    main()
