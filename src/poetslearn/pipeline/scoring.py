"""retrain's scoring stages: the trained layer on the test split's bottlenecks (`score_on_test`),
and the accuracy gate that stops a run before it exports (`check_accuracy`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from poetslearn.config import RetrainConfig
from poetslearn.context import RunContext
from poetslearn.data.sources import Dataset
from poetslearn.errors import AccuracyError
from poetslearn.extract.bottlenecks import Bottlenecks
from poetslearn.inference.evaluate import (
    EVALUATIONS,
    Evaluation,
    describe_exact_rows,
    exact_rows_figures,
)
from poetslearn.train.head import TrainResult


@dataclass
class TestScore:
    """The new layer on the test split (or the sample of it that --test_batch_size asks for)."""

    evaluation: Evaluation
    whole_split: bool
    # More figures the data set calls for (CIFAR-10: the bit-exact test rows 0-999 alone).
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        return self.evaluation.accuracy

    @property
    def size(self) -> int:
        return len(self.evaluation.names)


def _sample(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """All indices when size is -1 or covers everything, else a random sample (codelab style)."""
    return np.arange(n) if size < 0 or size >= n else np.sort(rng.choice(n, size, replace=False))


def score_on_test(
    trained: TrainResult,
    bottlenecks: Bottlenecks,
    dataset: Dataset,
    config: RetrainConfig,
    ctx: RunContext,
) -> TestScore:
    """The retrain stage: the trained layer's accuracy on the test bottlenecks."""
    test = bottlenecks.splits["test"]
    rng = np.random.default_rng(config.seed + 1)
    idx = _sample(len(test), config.test_batch_size, rng)
    features = (
        trained.test_features if trained.test_features is not None else bottlenecks.vectors["test"]
    )
    evaluation = EVALUATIONS[dataset.multi_label].of(
        dataset.class_names,
        test.labels[idx],
        trained.layer.probabilities(features[idx]),
        [test.images.names[i] for i in idx],
        thresholds=trained.layer.thresholds,
    )
    whole = len(idx) == len(test)
    exact = exact_rows_figures(evaluation, dataset.exact_test_rows, whole)
    # JSON has no NaN (a figure with nothing to count, such as mAP without positives): null.
    extra = {f"test_{k}": v if np.isfinite(v) else None for k, v in evaluation.summary().items()}
    score = TestScore(evaluation, whole, {**extra, **exact})
    for line in evaluation.describe():
        ctx.log(f"Final test {line}")
    for line in describe_exact_rows(exact, dataset.exact_test_rows, score.size):
        ctx.log(line)
    return score


def check_accuracy(score: TestScore, at_least: float | None) -> None:
    """The accuracy gate (--assert_accuracy_at_least): below it, stop before exporting."""
    if at_least is not None and score.accuracy < at_least:
        raise AccuracyError(
            f"ACCURACY FAILED: test accuracy {score.accuracy:.1%} is below "
            f"--assert_accuracy_at_least {at_least:g} ({at_least:.1%}); nothing was exported."
        )
