"""How long the new layer trains when no --how_many_training_steps is given: a rule of the
training set's size, in one sentence, so a 40-image folder trains in a second and CIFAR-10 as
long as it always did.

The rule: 50 passes over the training bottlenecks, at least 300 steps and at most 8,000, with
the validation split checked at least 20 times along the way. CIFAR-10 (45,000 training images,
batch 256) gets 8,000 steps, the earlier fixed default; `scripts/training_length.py` measures
smaller folders with the rule against 8,000 steps.
"""

from __future__ import annotations

import math

EPOCHS = 50
MIN_STEPS = 300
MAX_STEPS = 8000
MIN_EVALUATIONS = 20


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
