"""How long training runs when no length is given: rules of the training set's size, each in one
sentence, so a 40-image folder trains in seconds and CIFAR-10 as long as its goals need.

The new layer (no --how_many_training_steps): 50 passes over the training bottlenecks, at least
300 steps and at most 8,000, with the validation split checked at least 20 times along the way.
CIFAR-10 (45,000 training images, batch 256) gets 8,000 steps, the earlier fixed default.

Fine-tuning (no --fine_tune_epochs): as many passes as make 360,000 training images seen, at
least 2 and at most 30. CIFAR-10 gets 8 (6, the earlier default, stopped while validation was
still rising: BENCHMARKS.md); a folder of a few thousand images gets 30, a million images 2.

Fine-tuning's peak learning rate (no --fine_tune_learning_rate): 1e-4 divided by MobileNet's
width multiplier (0.25: 4e-4, 0.50: 2e-4, 1.0 and Inception V3: 1e-4). Adam moves every weight
by about the rate whatever the layer's width, so a block's output moves in proportion to its
width; narrow blocks take a larger rate for the same movement (the scaling muP gives Adam's rate).
At 0.25/128 the rate was measured from 1e-4 to 4e-4 (scripts/fine_tune_levers.py).

`scripts/training_length.py` measures both rules on folders of several sizes against the earlier
fixed lengths.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from poetslearn.config import RetrainConfig

EPOCHS = 50
MIN_STEPS = 300
MAX_STEPS = 8000
MIN_EVALUATIONS = 20

FINE_TUNE_IMAGES = 360_000
MIN_FINE_TUNE_EPOCHS = 2
MAX_FINE_TUNE_EPOCHS = 30


def new_layer_steps(train_size: int, batch_size: int) -> int:
    """Steps for `train_size` training bottlenecks at `batch_size`: EPOCHS passes, clamped."""
    passes = math.ceil(EPOCHS * train_size / max(batch_size, 1))
    return min(max(passes, MIN_STEPS), MAX_STEPS)


def eval_interval(steps: int, requested: int) -> int:
    """`requested`, unless that would check the validation split fewer than MIN_EVALUATIONS
    times in `steps` (the best step is chosen among the checks)."""
    return max(1, min(requested, steps // MIN_EVALUATIONS))


def describe(steps: int, train_size: int, batch_size: int) -> str:
    epochs = steps * batch_size / max(train_size, 1)
    return (
        f"Training the new layer for {steps:,} steps ({epochs:,.0f} passes over "
        f"{train_size:,} training images; the default: {EPOCHS} passes, "
        f"{MIN_STEPS:,}-{MAX_STEPS:,} steps)."
    )


def fine_tune_epochs(train_size: int) -> int:
    """Passes over `train_size` training images that see about FINE_TUNE_IMAGES, clamped."""
    passes = round(FINE_TUNE_IMAGES / max(train_size, 1))
    return min(max(passes, MIN_FINE_TUNE_EPOCHS), MAX_FINE_TUNE_EPOCHS)


def describe_fine_tuning(epochs: int, train_size: int, rate: float) -> str:
    return (
        f"Fine-tuning for {epochs} epochs at a peak learning rate of {rate:g} "
        f"({epochs * train_size:,} training images seen; the default: about "
        f"{FINE_TUNE_IMAGES:,}, {MIN_FINE_TUNE_EPOCHS}-{MAX_FINE_TUNE_EPOCHS} passes, and 1e-4 "
        f"divided by the network's width multiplier)."
    )


BASE_FINE_TUNE_RATE = 1e-4


def fine_tune_learning_rate(width_multiplier: float | None) -> float:
    """The peak rate for blocks `width_multiplier` times as wide as the full network's."""
    return BASE_FINE_TUNE_RATE / (width_multiplier or 1.0)


def with_fine_tuning_defaults(
    config: RetrainConfig, train_size: int, width: float | None, log
) -> RetrainConfig:
    """The config with --fine_tune_epochs and --fine_tune_learning_rate as given, or as the
    rules of `schedule` choose them for this data set and network width."""
    epochs = config.fine_tune_epochs or fine_tune_epochs(train_size)
    rate = config.fine_tune_learning_rate or fine_tune_learning_rate(width)
    if config.fine_tune_epochs is None or config.fine_tune_learning_rate is None:
        log(describe_fine_tuning(epochs, train_size, rate))
    return replace(config, fine_tune_epochs=epochs, fine_tune_learning_rate=rate)
