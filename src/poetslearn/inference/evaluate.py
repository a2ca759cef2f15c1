"""Evaluating an exported classifier on a labelled split: accuracy, per-class precision and
recall, the confusion matrix, and a picture of it with the most confident mistakes. Multi-label
data get `multi_label_evaluation.MultiLabelEvaluation`, which answers the same calls."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from poetslearn.config import LabelConfig
from poetslearn.context import warn_on_stderr
from poetslearn.data.parallel import prefetched
from poetslearn.data.sources import Split
from poetslearn.errors import PoetslearnError
from poetslearn.inference.multi_label_evaluation import MultiLabelEvaluation
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
            rows.append(
                {
                    "label": label,
                    "precision": float(precision),
                    "recall": float(recall),
                    "support": int(actual),
                }
            )
        return rows

    @classmethod
    def of(
        cls,
        labels: list[str],
        truth: np.ndarray,
        probabilities: np.ndarray,
        names: list[str],
        failed: list[str] | None = None,
        thresholds: np.ndarray | None = None,
    ) -> Evaluation:
        """From [N, classes] probabilities (or logits: only their order matters); `thresholds`
        are multi-label's, unused here (the top label is the answer)."""
        predicted = probabilities.argmax(axis=1) if len(probabilities) else np.zeros(0, np.int64)
        confidence = probabilities.max(axis=1) if len(probabilities) else np.zeros(0)
        return cls(
            labels,
            np.asarray(truth, np.int64),
            predicted,
            confidence,
            list(names),
            list(failed or []),
        )

    def first(self, n: int) -> Evaluation:
        """The figures of the first `n` images alone."""
        return Evaluation(
            self.labels, self.truth[:n], self.predicted[:n], self.confidence[:n], self.names[:n]
        )

    def most_confident_mistakes(self, n: int) -> np.ndarray:
        """Indices of up to `n` misclassified images, the most confidently wrong first."""
        wrong = np.flatnonzero(self.truth != self.predicted)
        return wrong[np.argsort(-self.confidence[wrong], kind="stable")][:n]

    def misclassified(self) -> list[tuple[str, str, str]]:
        """(image name, true label, predicted label) of every mistake, in order."""
        return [
            (self.names[i], self.labels[self.truth[i]], self.labels[self.predicted[i]])
            for i in np.flatnonzero(self.truth != self.predicted)
        ]

    def describe(self) -> list[str]:
        return [f"accuracy = {self.accuracy:.1%} (N={len(self.truth)})"]

    def summary(self) -> dict[str, float]:
        return {}  # accuracy says it all

    def as_dict(self) -> dict:
        return {
            "accuracy": self.accuracy,
            "n": int(len(self.truth)),
            "labels": self.labels,
            "per_class": self.per_class(),
            "confusion": self.confusion.tolist(),
            "failed": self.failed,
        }


# Whether the data are multi-label -> what measures a classifier on them.
EVALUATIONS = {False: Evaluation, True: MultiLabelEvaluation}


def exact_rows_figures(
    evaluation: Evaluation, exact_rows: int | None, whole_split: bool
) -> dict[str, float]:
    """{name: accuracy} on the test rows every copy of the data set holds bit for bit (CIFAR-10:
    0-999), when the whole test split was scored in its order; else nothing."""
    if not exact_rows or not whole_split or evaluation.failed:
        return {}
    return {f"test_accuracy_rows_0_{exact_rows - 1}": evaluation.first(exact_rows).accuracy}


def describe_exact_rows(figures: dict[str, float], exact_rows: int | None, n: int) -> list[str]:
    """The output line for `exact_rows_figures` (none when it found nothing to add)."""
    return [
        f"Test accuracy on test images 0-{exact_rows - 1} = {value:.1%} (N={min(exact_rows, n)})"
        for value in figures.values()
    ]


def evaluate_split(
    classifier,
    split: Split,
    class_names: list[str],
    batch_size: int = LabelConfig.batch_size,
    show_progress: bool = True,
    warn=warn_on_stderr,
):
    """Runs the classifier over every image of `split` (labels matched by name): an Evaluation,
    or a MultiLabelEvaluation when the split's labels are [N, labels] targets."""
    mapping, n_labels = _label_mapping(classifier.labels, class_names), len(classifier.labels)
    classifier.expect(len(split))
    images, size = split.images, classifier.size[0]
    truth, probabilities, names, failed = [], [], [], []
    batches = [
        list(range(start, min(start + batch_size, len(split))))
        for start in range(0, len(split), batch_size)
    ]
    loaded = prefetched(batches, lambda indices: images.load_batch(indices, size))
    with progress(len(split), "Evaluating", "img", show_progress) as bar:
        for indices, (pixels, failures) in zip(batches, loaded):
            for i, reason in failures.items():
                printing_around(bar, warn)(f"Skipping {reason}")
                failed.append(images.names[i])
            ok = [i for i in indices if i not in failures]
            if ok:
                probabilities.append(classifier.probabilities(pixels))
                truth.append(
                    _in_classifier_order(split.labels[ok], mapping, len(classifier.labels))
                )
                names.extend(images.names[i] for i in ok)
            bar.update(len(indices))
    probs = np.concatenate(probabilities) if probabilities else np.zeros((0, n_labels))
    multi_label = split.labels.ndim == 2
    truth_shape = (0, n_labels) if multi_label else (0,)
    return EVALUATIONS[multi_label].of(
        list(classifier.labels),
        np.concatenate(truth) if truth else np.zeros(truth_shape, np.int64),
        probs,
        names,
        failed,
        thresholds=classifier.thresholds,
    )


def _in_classifier_order(labels: np.ndarray, mapping: np.ndarray, n_labels: int) -> np.ndarray:
    """The data's labels as the classifier's indices ([N]), or targets in its columns ([N, L])."""
    if labels.ndim == 1:
        return mapping[labels]
    targets = np.zeros((len(labels), n_labels), np.uint8)
    targets[:, mapping] = labels
    return targets


def _label_mapping(labels: list[str], class_names: list[str]) -> np.ndarray:
    """[classes of the data] -> index of the same name among the classifier's labels."""
    missing = sorted(set(class_names) - set(labels))
    if missing:
        raise PoetslearnError(
            f"The data has class(es) {', '.join(missing)} that the classifier "
            f"does not know (its labels: {', '.join(labels)})."
        )
    return np.array([labels.index(name) for name in class_names])
