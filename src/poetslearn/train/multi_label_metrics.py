"""The figures of a multi-label classifier, from per-label probabilities and 0/1 targets: average
precision per label and its mean (mAP), precision, recall and F1 at thresholds, micro and macro
F1, and the threshold per label that gives the best F1 on validation.

Pure NumPy, shared by training (the best step is chosen on validation mAP), `retrain`'s test
score and `evaluate`, so every figure is computed one way.
"""

from __future__ import annotations

import numpy as np

DEFAULT_THRESHOLD = 0.5
CANDIDATES = np.arange(1, 100) / 100  # the thresholds a label may get
SMOOTHING = 5  # candidates either side averaged into each one's F1 (+-0.05)


def average_precision(scores: np.ndarray, targets: np.ndarray) -> float:
    """The area under one label's precision-recall curve, as scikit-learn computes it (the mean
    of the precision at each positive, ties broken by taking whole groups); NaN without
    positives."""
    positives = int(targets.sum())
    if positives == 0:
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    sorted_scores, hits = scores[order], targets[order].astype(np.float64)
    # The last index of each run of equal scores: a threshold admits all of them or none.
    ends = np.flatnonzero(np.r_[sorted_scores[1:] != sorted_scores[:-1], True])
    true_pos = np.cumsum(hits)[ends]
    precision = true_pos / (ends + 1)
    recall_gain = np.diff(np.r_[0.0, true_pos]) / positives
    return float((precision * recall_gain).sum())


def per_label_average_precision(probabilities: np.ndarray, targets: np.ndarray) -> np.ndarray:
    return np.array(
        [average_precision(probabilities[:, c], targets[:, c]) for c in range(targets.shape[1])]
    )


def mean_average_precision(probabilities: np.ndarray, targets: np.ndarray) -> float:
    """mAP over the labels that have a positive (the others have no precision-recall curve)."""
    values = per_label_average_precision(probabilities, targets)
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def counts(probabilities: np.ndarray, targets: np.ndarray, thresholds: np.ndarray):
    """(true positives, false positives, false negatives) per label at `thresholds`."""
    predicted = probabilities >= thresholds[None, :]
    actual = targets.astype(bool)
    return (
        (predicted & actual).sum(axis=0),
        (predicted & ~actual).sum(axis=0),
        (~predicted & actual).sum(axis=0),
    )


def _ratio(numerator, denominator) -> np.ndarray:
    numerator, denominator = np.asarray(numerator, float), np.asarray(denominator, float)
    return np.divide(
        numerator, denominator, out=np.full_like(numerator, np.nan), where=denominator > 0
    )


def f1_scores(probabilities, targets, thresholds) -> dict:
    """Per-label precision, recall and F1, and micro F1 (over every decision) and macro F1 (the
    mean over labels with a positive or a prediction)."""
    tp, fp, fn = counts(probabilities, targets, thresholds)
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    micro = _ratio(2 * tp.sum(), 2 * tp.sum() + fp.sum() + fn.sum())
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "micro_f1": float(micro),
        "macro_f1": float(np.nanmean(f1)) if np.isfinite(f1).any() else float("nan"),
    }


def f1_curve(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """One label's F1 at each of CANDIDATES as its threshold."""
    predicted = scores[:, None] >= CANDIDATES[None, :]
    true_pos = (predicted & targets.astype(bool)[:, None]).sum(axis=0)
    false_pos = predicted.sum(axis=0) - true_pos
    false_neg = int(targets.sum()) - true_pos
    return 2 * true_pos / np.maximum(2 * true_pos + false_pos + false_neg, 1)


def best_thresholds(probabilities: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per label, the threshold of 0.01 to 0.99 where its F1 on these (validation) images,
    averaged over the thresholds within +-0.05, is highest (the middle one, where several are);
    0.5 for a label without positives.

    Averaging is why: the raw peak of a label's F1 is often an accident of the validation images
    (on 2,000 CIFAR-10 mosaics it beat 0.5 on validation and lost to it on test), while a broad
    peak carries over (scripts/multi_label_thresholds.py; BENCHMARKS.md)."""
    thresholds = np.full(targets.shape[1], DEFAULT_THRESHOLD, np.float32)
    kernel = np.ones(2 * SMOOTHING + 1) / (2 * SMOOTHING + 1)
    for c in range(targets.shape[1]):
        if targets[:, c].any():
            smooth = np.convolve(f1_curve(probabilities[:, c], targets[:, c]), kernel, "same")
            tops = np.flatnonzero(smooth >= smooth.max() - 1e-12)
            thresholds[c] = CANDIDATES[tops[len(tops) // 2]]  # the middle of a flat top
    return thresholds
