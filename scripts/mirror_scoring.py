"""What scoring each image with its mirror image buys an exported classifier, on CIFAR-10: the
accuracy on validation (5,000), test rows 0-999 (bit-exact, +-1.4 points at 95%) and all 10,000
test images, scored on the image alone, on the mean of the two probabilities, and on the mean of
the two feature vectors (what `retrain --test_time_mirror` builds into its exports; for the linear
new layer, the mean of the logits). Any model `label` reads (.pb, .tflite).

    python scripts/mirror_scoring.py --graph tf_files/retrained_graph.pb --data_dir ../shared/data

The validation split must be the one the model was trained with (the default 10%).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
import numpy as np

BATCH = 250  # images per call: a 1.0/224 batch of 10,000 at once would take 16 GB


def _probabilities(classifier, pixels: np.ndarray) -> np.ndarray:
    return np.concatenate(
        [classifier.probabilities(pixels[i : i + BATCH]) for i in range(0, len(pixels), BATCH)]
    )


def _accuracies(probabilities: np.ndarray, labels: np.ndarray, split: str) -> dict[str, float]:
    hits = probabilities.argmax(axis=1) == labels
    out = {split: float(hits.mean())}
    if split == "test":
        out["rows_0_999"] = float(hits[:1000].mean())
    return out


def mirrored_scores(graph: Path, data_dir: Path) -> dict:
    """{"<split>_<scoring>": accuracy}: scoring "plain", "mirrored" (mean of the probabilities)
    and "mirrored_logits" (mean of the logits: the argmax of the summed log-probabilities)."""
    from poetslearn import LabelConfig, load_classifier
    from poetslearn.data.cifar10 import load_cifar10

    classifier = load_classifier(LabelConfig(graph=graph))
    data = load_cifar10(data_dir, download=False, show_progress=False)
    out = {}
    for split in ("validation", "test"):
        pixels = data.splits[split].images.pixels.astype(np.float32)
        labels = data.splits[split].labels
        plain = _probabilities(classifier, pixels)
        mirror = _probabilities(classifier, np.ascontiguousarray(pixels[:, :, ::-1]))
        scorings = {
            "plain": plain,
            "mirrored": (plain + mirror) / 2,
            "mirrored_logits": np.log(plain + 1e-30) + np.log(mirror + 1e-30),
        }
        for name, probabilities in scorings.items():
            for key, value in _accuracies(probabilities, labels, split).items():
                out[f"{key}_{name}"] = value
    return out


@click.command()
@click.option("--graph", type=click.Path(path_type=Path, exists=True), required=True)
@click.option("--data_dir", type=click.Path(path_type=Path), default=Path("../shared/data"))
def main(graph: Path, data_dir: Path) -> None:
    start = time.perf_counter()
    scores = mirrored_scores(graph, data_dir)
    print(f"{graph}: validation / rows 0-999 / test 10k")
    for name in ("plain", "mirrored", "mirrored_logits"):
        print(
            f"  {name:16s} {scores[f'validation_{name}']:.2%} / "
            f"{scores[f'rows_0_999_{name}']:.1%} / {scores[f'test_{name}']:.2%}"
        )
    print(json.dumps({**scores, "seconds": round(time.perf_counter() - start, 1)}))


if __name__ == "__main__":
    main()
