"""What the output layer learns, by name: one label per image (`single_label`: softmax, cross
entropy, the best step by accuracy) or any number of labels (`multi_label`: a sigmoid per label,
binary cross entropy weighted for rare labels, the best step by mAP, and a threshold per label
chosen on validation).

A trainer asks its objective for the probabilities, the loss, the gradient of the loss with
respect to the logits, the score that picks the best step, and the thresholds to export, so no
trainer branches on the kind of labels.
"""

from __future__ import annotations

import numpy as np

from poetslearn.train.multi_label_metrics import best_thresholds, mean_average_precision

# A label on fewer than half the images weighs its positives by sqrt(negatives / positives),
# at most this much: a rare label is not drowned by its negatives, nor learnt from noise.
MAX_POSITIVE_WEIGHT = 10.0


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def cross_entropy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    picked = probabilities[np.arange(len(labels)), labels]
    return float(-np.log(np.maximum(picked, 1e-12)).mean())


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * logits))  # no overflow for large |logits|


class SingleLabel:
    name, activation, score_name = "single_label", "softmax", "accuracy"

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        return softmax(logits)

    def loss(self, probabilities: np.ndarray, labels: np.ndarray) -> float:
        return cross_entropy(probabilities, labels)

    def logit_gradient(self, probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
        grad = probabilities.copy()
        grad[np.arange(len(labels)), labels] -= 1.0
        return grad / len(labels)

    def score(self, probabilities: np.ndarray, labels: np.ndarray) -> float:
        if not len(labels):
            return float("nan")
        return float((probabilities.argmax(axis=1) == labels).mean())

    def format_score(self, value: float) -> str:
        return f"{value:.1%}"

    def thresholds(self, probabilities_of, labels: np.ndarray) -> None:
        return None  # the top label is the answer; `probabilities_of()` is never run

    # Fine-tuning (TensorFlow): its loss, and how many of a batch's answers are right.
    train_figure = "accuracy"

    def tf_loss(self, label_smoothing: float = 0.0):
        from poetslearn.train.fine_tuning.recipe import loss_fn

        return loss_fn(label_smoothing)

    def tf_hits(self, logits, targets):
        import tensorflow as tf

        hits = tf.argmax(logits, 1) == tf.argmax(targets, 1)
        return tf.reduce_sum(tf.cast(hits, tf.float32))


class MultiLabel:
    name, activation, score_name = "multi_label", "sigmoid", "mAP"

    def __init__(self, positive_weights: np.ndarray) -> None:
        self.positive_weights = positive_weights.astype(np.float32)

    @classmethod
    def for_targets(cls, targets: np.ndarray) -> MultiLabel:
        """Weights from the training targets [N, labels] (see MAX_POSITIVE_WEIGHT)."""
        positives = targets.sum(axis=0).astype(np.float64)
        negatives = len(targets) - positives
        ratio = np.sqrt(negatives / np.maximum(positives, 1.0))
        return cls(np.clip(ratio, 1.0, MAX_POSITIVE_WEIGHT))

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        return sigmoid(logits)

    def loss(self, probabilities: np.ndarray, targets: np.ndarray) -> float:
        """Weighted binary cross entropy, summed over labels, averaged over images."""
        p = np.clip(probabilities, 1e-7, 1 - 1e-7)
        y = targets.astype(np.float32)
        terms = self.positive_weights * y * np.log(p) + (1 - y) * np.log(1 - p)
        return float(-terms.sum(axis=1).mean()) if len(y) else float("nan")

    def logit_gradient(self, probabilities: np.ndarray, targets: np.ndarray) -> np.ndarray:
        y = targets.astype(np.float32)
        weighted = self.positive_weights * y
        return (probabilities * (weighted + 1 - y) - weighted) / len(y)

    def score(self, probabilities: np.ndarray, targets: np.ndarray) -> float:
        return mean_average_precision(probabilities, targets)

    def format_score(self, value: float) -> str:
        return f"{value:.3f}"

    def thresholds(self, probabilities_of, targets: np.ndarray) -> np.ndarray:
        """The best-F1 threshold per label on `probabilities_of()` (the validation split's)."""
        return best_thresholds(probabilities_of(), targets)

    train_figure = "exact match at 0.5"

    def tf_loss(self, label_smoothing: float = 0.0):
        from poetslearn.train.fine_tuning.recipe import sigmoid_loss_fn

        return sigmoid_loss_fn(self.positive_weights)  # smoothing is single-label's lever

    def tf_hits(self, logits, targets):
        """Images whose every label is decided right at 0.5 (a logit of 0)."""
        import tensorflow as tf

        right = tf.reduce_all((logits >= 0) == (targets >= 0.5), axis=1)
        return tf.reduce_sum(tf.cast(right, tf.float32))


def objective_for(multi_label: bool, train_targets: np.ndarray):
    """The objective of a data set's labels: [N] class indices, or [N, labels] 0/1 targets."""
    return MultiLabel.for_targets(train_targets) if multi_label else SingleLabel()
