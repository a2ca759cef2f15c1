"""Images whose given label the data itself contradicts, found by confident learning (Northcutt
et al., 2021, the method behind cleanlab) on out-of-fold probabilities.

Every image is scored by a new layer that never saw it: the images are cut into folds (copies,
equal content keys, always in the same fold, or a copy would vouch for its own label), and for
each fold the same NumPy layer `retrain` trains learns from the other folds. On those
probabilities, each class j gets a threshold t_j, the mean probability of j over the images
labelled j; an image is confidently of class j when p_j >= t_j (the most probable such j), and
an image confidently of another class than its own is a likely label error. Its score is
1 - p(given label): the surer the data is that the label is wrong, the higher.

Multi-label data is checked one label at a time, the same way: a label given where the data is
confident it is absent (likely wrong), or not given where the data is confident it is present
(likely missing).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from poetslearn.train.head import HeadParams, train_output_layer
from poetslearn.train.objectives import objective_for
from poetslearn.train.schedule import new_layer_steps

DEFAULT_FOLDS = 5


def fold_of_keys(keys: list[bytes], folds: int) -> np.ndarray:
    """A fold per image from its content key: stable, and copies always share a fold."""
    return np.array([int.from_bytes(key[:8], "little") % folds for key in keys], np.int64)


def out_of_fold_probabilities(
    vectors: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    fold: np.ndarray,
    params: HeadParams,
    multi_label: bool = False,
) -> np.ndarray:
    """[N, classes] probabilities, each row from a layer trained on the other folds only."""
    probabilities = np.zeros((len(vectors), n_classes), np.float32)
    for held_out in np.unique(fold):
        test = fold == held_out
        train_x, train_y = vectors[~test], labels[~test]
        steps = new_layer_steps(len(train_x), params.batch_size)
        fold_params = replace(params, steps=steps, eval_step_interval=steps)
        result = train_output_layer(
            train_x,
            train_y,
            vectors[test],
            labels[test],
            n_classes,
            fold_params,
            log=lambda line: None,
            objective=objective_for(multi_label, train_y),
        )
        probabilities[test] = result.layer.probabilities(vectors[test])
    return probabilities


@dataclass
class LabelIssues:
    """Single-label: the rows confidently of another class, with that class and their score."""

    rows: np.ndarray  # [M] image rows, worst first
    suggested: np.ndarray  # [M] class index the data suggests
    scores: np.ndarray  # [M] 1 - p(given label)
    thresholds: np.ndarray  # [classes] t_j


def class_thresholds(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """t_j: the mean probability of class j over the images labelled j (1.0 for a class with
    no image, which then confidently holds none)."""
    n_classes = probabilities.shape[1]
    thresholds = np.ones(n_classes, np.float32)
    for j in range(n_classes):
        mine = labels == j
        if mine.any():
            thresholds[j] = probabilities[mine, j].mean()
    return thresholds


def confident_label_issues(probabilities: np.ndarray, labels: np.ndarray) -> LabelIssues:
    """The off-diagonal of the confident joint: images confidently of a class not their own."""
    thresholds = class_thresholds(probabilities, labels)
    above = probabilities >= thresholds[None, :]
    masked = np.where(above, probabilities, -1.0)
    confident_class = masked.argmax(axis=1)
    has_confident = above.any(axis=1)
    given_p = probabilities[np.arange(len(labels)), labels]
    wrong = has_confident & (confident_class != labels)
    rows = np.flatnonzero(wrong)
    scores = 1.0 - given_p[rows]
    order = np.argsort(-scores, kind="stable")
    return LabelIssues(rows[order], confident_class[rows][order], scores[order], thresholds)


@dataclass
class MultiLabelIssues:
    """Multi-label: (row, label) pairs likely wrong (given, confidently absent) or likely
    missing (not given, confidently present), each with its score, worst first."""

    wrong: list[tuple[int, int, float]]
    missing: list[tuple[int, int, float]]


def confident_multi_label_issues(probabilities: np.ndarray, targets: np.ndarray):
    """Confident learning per label, as a two-class problem of its own (present, absent)."""
    wrong, missing = [], []
    for label in range(targets.shape[1]):
        p_present = probabilities[:, label]
        given = targets[:, label].astype(bool)
        two_class = np.stack([1.0 - p_present, p_present], axis=1)
        issues = confident_label_issues(two_class, given.astype(np.int64))
        for row, score in zip(issues.rows.tolist(), issues.scores.tolist()):
            (wrong if given[row] else missing).append((row, label, float(score)))
    by_score = lambda item: -item[2]  # noqa: E731
    return MultiLabelIssues(sorted(wrong, key=by_score), sorted(missing, key=by_score))
