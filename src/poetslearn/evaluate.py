"""Evaluating an exported classifier on a labelled split: accuracy, per-class precision and
recall, the confusion matrix, and a picture of it with the most confident mistakes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from poetslearn.config import RetrainConfig
from poetslearn.datasets import (SPLITS, ArrayImages, Dataset, Split, load_cifar10,
                                 load_image_folder)
from poetslearn.errors import ImageError, PoetslearnError
from poetslearn.progress import printing_around, progress


@dataclass
class Evaluation:
    labels: list[str]  # the classifier's labels, the confusion matrix's order
    truth: np.ndarray  # [N] label indices
    predicted: np.ndarray  # [N]
    confidence: np.ndarray  # [N] probability of the predicted label
    names: list[str]  # [N] image names
    failed: list[str] = field(default_factory=list)  # images that could not be read

    @property
    def accuracy(self) -> float:
        return float((self.truth == self.predicted).mean()) if len(self.truth) else float("nan")

    @property
    def confusion(self) -> np.ndarray:
        """[classes, classes]: rows are true labels, columns predicted ones."""
        n = len(self.labels)
        return np.bincount(self.truth * n + self.predicted, minlength=n * n).reshape(n, n)

    def per_class(self) -> list[dict]:
        confusion = self.confusion
        rows = []
        for i, label in enumerate(self.labels):
            tp, predicted, actual = confusion[i, i], confusion[:, i].sum(), confusion[i].sum()
            precision = tp / predicted if predicted else float("nan")
            recall = tp / actual if actual else float("nan")
            rows.append({"label": label, "precision": float(precision), "recall": float(recall),
                         "support": int(actual)})
        return rows

    def as_dict(self) -> dict:
        return {"accuracy": self.accuracy, "n": int(len(self.truth)), "labels": self.labels,
                "per_class": self.per_class(), "confusion": self.confusion.tolist(),
                "failed": self.failed}


def load_split_to_evaluate(image_dir: Path | None, data_dir: Path, split: str, recorded: dict,
                           show_progress: bool = True, warn=print) -> tuple[Dataset, Split]:
    """The data set and the split ("test", "validation", "train" or "all") to evaluate on, cut
    with the percentages recorded in the graph's metadata so "test" is retrain's test split."""
    validation = recorded.get("validation_percentage", RetrainConfig.validation_percentage)
    testing = recorded.get("testing_percentage", RetrainConfig.testing_percentage)
    if image_dir is not None:
        data = load_image_folder(image_dir, validation, testing, show_progress, warn)
    else:
        data = load_cifar10(data_dir, validation, show_progress=show_progress)
    if split != "all":
        return data, data.splits[split]
    chosen = data.splits[SPLITS[0]]
    for name in SPLITS[1:]:
        chosen = chosen.concat(data.splits[name])
    return data, chosen


def evaluate_split(classifier, split: Split, class_names: list[str], batch_size: int = 64,
                   show_progress: bool = True, warn=print) -> Evaluation:
    """Runs the classifier over every image of `split` (labels matched by name)."""
    try:
        mapping = np.array([classifier.labels.index(name) for name in class_names])
    except ValueError:
        missing = sorted(set(class_names) - set(classifier.labels))
        raise PoetslearnError(f"The data has class(es) {', '.join(missing)} that the classifier "
                              f"does not know (its labels: {', '.join(classifier.labels)}).")
    images = split.images
    truth, predicted, confidence, names, failed = [], [], [], [], []
    with progress(len(split), "Evaluating", "img", show_progress) as bar:
        for start in range(0, len(split), batch_size):
            indices = list(range(start, min(start + batch_size, len(split))))
            if isinstance(images, ArrayImages):
                pixels, ok = images.pixels[indices].astype(np.float32), indices
            else:
                loaded, ok = [], []
                for i in indices:
                    try:
                        loaded.append(classifier.load_pixels(images.paths[i]))
                        ok.append(i)
                    except ImageError as e:
                        printing_around(bar, warn)(f"Skipping {e}")
                        failed.append(images.names[i])
                pixels = np.stack(loaded) if loaded else None
            if ok:
                probs = classifier.probabilities(pixels)
                truth.extend(mapping[split.labels[ok]])
                predicted.extend(probs.argmax(axis=1))
                confidence.extend(probs.max(axis=1))
                names.extend(images.names[i] for i in ok)
            bar.update(len(indices))
    return Evaluation(list(classifier.labels), np.array(truth, np.int64),
                      np.array(predicted, np.int64), np.array(confidence), names, failed)


def load_image_for_plot(split: Split, name: str) -> np.ndarray:
    from poetslearn.images import read_image_file

    index = split.images.names.index(name)
    if isinstance(split.images, ArrayImages):
        return split.images.pixels[index]
    return read_image_file(split.images.paths[index], min_side=256)


def plot_evaluation(evaluation: Evaluation, split: Split, path: Path, title: str,
                    mistakes: int = 12) -> Path:
    """A PNG: the confusion matrix, and the most confidently misclassified images."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    from poetslearn.export import write_atomic

    wrong = np.flatnonzero(evaluation.truth != evaluation.predicted)
    wrong = wrong[np.argsort(-evaluation.confidence[wrong], kind="stable")][:mistakes]
    n = len(evaluation.labels)
    cols = 4
    rows = int(np.ceil(len(wrong) / cols)) if len(wrong) else 0
    fig = plt.figure(figsize=(max(8, 0.6 * n + 4) + 9, max(7, 0.5 * n + 3, 2.4 * rows)))
    grid = fig.add_gridspec(max(rows, 1), 2 + cols, width_ratios=[1.4, 1.4] + [1] * cols)
    ax = fig.add_subplot(grid[:, :2])
    confusion = evaluation.confusion
    ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(n), evaluation.labels, rotation=60, ha="right")
    ax.set_yticks(range(n), evaluation.labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{title}\naccuracy {evaluation.accuracy:.1%} (N={len(evaluation.truth)})")
    threshold = confusion.max() / 2 if confusion.size else 0
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(confusion[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if confusion[i, j] > threshold else "black")
    for k, index in enumerate(wrong):
        sub = fig.add_subplot(grid[k // cols, 2 + k % cols])
        sub.imshow(load_image_for_plot(split, evaluation.names[index]))
        sub.set_title(f"true: {evaluation.labels[evaluation.truth[index]]}\n"
                      f"predicted: {evaluation.labels[evaluation.predicted[index]]} "
                      f"({evaluation.confidence[index]:.2f})", fontsize=8)
        sub.axis("off")
    fig.tight_layout(rect=(0, 0.03, 1, 0.93))  # room for the header and the rotated labels
    if len(wrong):
        fig.text(0.72, 0.985, "most confidently misclassified", ha="center", va="top",
                 fontsize=12)
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    write_atomic(path, buffer.getvalue())
    return Path(path)
