"""`evaluate --plot`: the confusion matrix and the most confidently misclassified images, drawn
to a PNG (matplotlib, without a display)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from poetslearn.data.sources import Split
from poetslearn.outputs import write_atomic

COLUMNS = 4  # pictures of mistakes per row


def _draw_confusion(ax, evaluation, title: str) -> None:
    n = len(evaluation.labels)
    confusion = evaluation.confusion
    # Anchored at 0, so equal counts are not all drawn in the palest blue (white numbers on it
    # would vanish).
    ax.imshow(confusion, cmap="Blues", vmin=0, vmax=max(int(confusion.max()), 1))
    ax.set_xticks(range(n), evaluation.labels, rotation=60, ha="right")
    ax.set_yticks(range(n), evaluation.labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{title}\naccuracy {evaluation.accuracy:.1%} (N={len(evaluation.truth)})")
    threshold = confusion.max() / 2 if confusion.size else 0
    for i in range(n):
        for j in range(n):
            colour = "white" if confusion[i, j] > threshold else "black"
            ax.text(j, i, str(confusion[i, j]), ha="center", va="center", fontsize=8, color=colour)


def _draw_mistakes(fig, grid, wrong: np.ndarray, evaluation, split: Split) -> None:
    for k, index in enumerate(wrong):
        sub = fig.add_subplot(grid[k // COLUMNS, 2 + k % COLUMNS])
        position = split.images.names.index(evaluation.names[index])
        sub.imshow(split.images.read_original(position, min_side=256))
        sub.set_title(
            f"true: {evaluation.labels[evaluation.truth[index]]}\n"
            f"predicted: {evaluation.labels[evaluation.predicted[index]]} "
            f"({evaluation.confidence[index]:.2f})",
            fontsize=8,
        )
        sub.axis("off")


def plot_evaluation(evaluation, split: Split, path: Path, title: str, mistakes: int = 12) -> Path:
    """A PNG of an `Evaluation`: the confusion matrix, and the `mistakes` most confidently
    misclassified images of `split`."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    wrong = evaluation.most_confident_mistakes(mistakes)
    n = len(evaluation.labels)
    rows = int(np.ceil(len(wrong) / COLUMNS)) if len(wrong) else 0
    fig = plt.figure(figsize=(max(8, 0.6 * n + 4) + 9, max(7, 0.5 * n + 3, 2.4 * rows)))
    grid = fig.add_gridspec(max(rows, 1), 2 + COLUMNS, width_ratios=[1.4, 1.4] + [1] * COLUMNS)
    _draw_confusion(fig.add_subplot(grid[:, :2]), evaluation, title)
    _draw_mistakes(fig, grid, wrong, evaluation, split)
    fig.tight_layout(rect=(0, 0.03, 1, 0.93))  # room for the header and the rotated labels
    if len(wrong):
        fig.text(0.72, 0.985, "most confidently misclassified", ha="center", va="top", fontsize=12)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    write_atomic(path, buffer.getvalue())
    return Path(path)
