"""`evaluate --plot` for a multi-label classifier: each label's precision, recall, F1 (at its
threshold) and average precision side by side, drawn to a PNG (matplotlib, without a display)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from poetslearn.outputs import write_atomic

FIGURES = ("precision", "recall", "f1", "average_precision")


def plot_label_figures(evaluation, split, path: Path, title: str) -> Path:
    """A PNG of a `MultiLabelEvaluation`: one group of bars per label. (`split` is unused: a
    picture of an image with several labels says little at thumbnail size.)"""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = evaluation.per_class()
    n = len(rows)
    fig, ax = plt.subplots(figsize=(10, max(4, 0.45 * n * len(FIGURES) / 2 + 2)))
    height = 0.8 / len(FIGURES)
    for k, name in enumerate(FIGURES):
        values = [np.nan if row[name] is None else row[name] for row in rows]
        ax.barh(np.arange(n) + k * height, values, height, label=name.replace("_", " "))
    ax.set_yticks(np.arange(n) + 0.4 - height / 2, [row["label"] for row in rows])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    summary = evaluation.summary()
    ax.set_title(
        f"{title}\nmAP {summary['map']:.3f}, micro-F1 {summary['micro_f1']:.3f}, macro-F1 "
        f"{summary['macro_f1']:.3f} (N={len(evaluation.names)})"
    )
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    write_atomic(path, buffer.getvalue())
    return Path(path)
