"""What every classifier answers with: labels read from a file, and the top-k predictions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from poetslearn.errors import GraphError


@dataclass
class Prediction:
    label: str
    score: float


def read_labels(path: Path) -> list[str]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise GraphError(
            f"Cannot read the labels file {path} ({e.strerror or e}). Pass the "
            f"labels written by retrain with --labels."
        ) from e
    return [line.rstrip("\r\n") for line in text.splitlines() if line.strip()]


def top_predictions(probs: np.ndarray, labels: list[str], top_k: int) -> list[Prediction]:
    order = np.argsort(-probs, kind="stable")[:top_k]
    return [Prediction(labels[i], float(probs[i])) for i in order]


def labels_above(probs: np.ndarray, labels: list[str], thresholds: np.ndarray) -> list[Prediction]:
    """Multi-label's answer: every label at or above its threshold, best first."""
    order = np.argsort(-probs, kind="stable")
    return [Prediction(labels[i], float(probs[i])) for i in order if probs[i] >= thresholds[i]]
