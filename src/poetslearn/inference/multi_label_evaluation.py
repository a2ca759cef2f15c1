"""Evaluating a multi-label classifier: per-label precision, recall, F1 (at the thresholds chosen
on validation) and average precision, micro and macro F1, mAP; the counterpart of `Evaluation`
for data sets whose images have any number of labels, answering the same calls."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from poetslearn.train.multi_label_metrics import (
    DEFAULT_THRESHOLD,
    f1_scores,
    mean_average_precision,
    per_label_average_precision,
)


def _floats(values) -> list[float | None]:
    """JSON-ready: NaN (a figure with nothing to count) becomes null."""
    return [None if not np.isfinite(v) else float(v) for v in values]


@dataclass
class MultiLabelEvaluation:
    labels: list[str]
    targets: np.ndarray  # [N, labels] 0/1
    probabilities: np.ndarray  # [N, labels]
    thresholds: np.ndarray  # [labels]
    names: list[str]
    failed: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, labels, targets, probabilities, names, failed=None, thresholds=None):
        if thresholds is None:
            thresholds = np.full(len(labels), DEFAULT_THRESHOLD, np.float32)
        return cls(
            list(labels),
            np.asarray(targets, np.uint8).reshape(-1, len(labels)),
            np.asarray(probabilities, np.float32).reshape(-1, len(labels)),
            np.asarray(thresholds, np.float32),
            list(names),
            list(failed or []),
        )

    @property
    def predicted(self) -> np.ndarray:
        return self.probabilities >= self.thresholds[None, :]

    @property
    def accuracy(self) -> float:
        """Exact match: the share of images whose every label is decided right."""
        if not len(self.targets):
            return float("nan")
        return float((self.predicted == self.targets.astype(bool)).all(axis=1).mean())

    @property
    def mean_average_precision(self) -> float:
        return mean_average_precision(self.probabilities, self.targets)

    def f1(self, thresholds: np.ndarray | None = None) -> dict:
        chosen = self.thresholds if thresholds is None else thresholds
        return f1_scores(self.probabilities, self.targets, chosen)

    def summary(self) -> dict[str, float]:
        """The headline figures: mAP, micro and macro F1 at the chosen thresholds and at 0.5."""
        chosen, flat = self.f1(), self.f1(np.full(len(self.labels), DEFAULT_THRESHOLD))
        return {
            "map": self.mean_average_precision,
            "micro_f1": chosen["micro_f1"],
            "macro_f1": chosen["macro_f1"],
            "micro_f1_at_0_5": flat["micro_f1"],
            "macro_f1_at_0_5": flat["macro_f1"],
            "exact_match": self.accuracy,
        }

    def per_class(self) -> list[dict]:
        figures = self.f1()
        average_precision = per_label_average_precision(self.probabilities, self.targets)
        columns = {
            "threshold": self.thresholds,
            "precision": figures["precision"],
            "recall": figures["recall"],
            "f1": figures["f1"],
            "average_precision": average_precision,
        }
        rows = []
        for i, label in enumerate(self.labels):
            row = {"label": label}
            row.update({name: _floats([values[i]])[0] for name, values in columns.items()})
            row["support"] = int(self.targets[:, i].sum())
            rows.append(row)
        return rows

    def label_sets(self, rows: np.ndarray) -> list[str]:
        return [";".join(self.labels[c] for c in np.flatnonzero(row)) for row in rows]

    def misclassified(self) -> list[tuple[str, str, str]]:
        """(image name, true labels, predicted labels; each set joined by ';') of every image
        with a wrong decision, in order."""
        wrong = np.flatnonzero((self.predicted != self.targets.astype(bool)).any(axis=1))
        truth, predicted = (
            self.label_sets(self.targets[wrong]),
            self.label_sets(self.predicted[wrong]),
        )
        return [(self.names[i], t, p) for i, t, p in zip(wrong, truth, predicted)]

    def first(self, n: int) -> MultiLabelEvaluation:
        return MultiLabelEvaluation(
            self.labels, self.targets[:n], self.probabilities[:n], self.thresholds, self.names[:n]
        )

    def as_dict(self) -> dict:
        return {
            "multi_label": True,
            **{k: _floats([v])[0] for k, v in self.summary().items()},
            "accuracy": _floats([self.accuracy])[0],
            "n": int(len(self.targets)),
            "labels": self.labels,
            "per_class": self.per_class(),
            "failed": self.failed,
        }

    def describe(self) -> list[str]:
        """The headline as text lines (retrain's and evaluate's output)."""
        s = self.summary()
        return [
            f"mAP = {s['map']:.3f}, micro-F1 = {s['micro_f1']:.3f}, macro-F1 = "
            f"{s['macro_f1']:.3f} at the thresholds chosen on validation (at 0.5: micro-F1 = "
            f"{s['micro_f1_at_0_5']:.3f}, macro-F1 = {s['macro_f1_at_0_5']:.3f}); exact match "
            f"{s['exact_match']:.1%} (N={len(self.targets)})"
        ]
