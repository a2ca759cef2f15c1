"""Fitting a plan to the time left: a fine-tuning plan whose epochs do not all fit runs as
many as fit, and the chosen plan is mirrored (--test_time_mirror) where the time left holds
that too."""

from __future__ import annotations

import math
from dataclasses import replace

from poetslearn.budget.expectations import Expectation
from poetslearn.budget.plans import MARGIN, DataFacts, Plan, fits, mirrored, with_seconds

# A fine-tuning plan whose epochs do not all fit may run fewer, down to half of them (the
# learning rate schedule is built for the epochs run), each halving expected to cost a point on
# validation. Measured at 0.75/128 on CIFAR-10 (BENCHMARKS.md, "More fine-tuned blocks" and
# "Fewer epochs of more blocks"): 4 blocks, 16 epochs to 8, -1.0; 6 blocks, 8 to 5, -0.8; 8
# blocks, 8 to 5, -0.2: 0.3 to 1.2 points a halving. So 8 blocks for 6 epochs (92.8% expected)
# beats 6 for 8 (92.5%) where 8 blocks for 8 do not fit.
EPOCH_HALVING_COST = 0.01
FEWEST_EPOCHS_SHARE = 0.5


def within(plan: Plan, seconds_left: float) -> Plan:
    """`plan`; or, where a fine-tuning plan's epochs do not all fit, the same plan with as many
    as fit (at least FEWEST_EPOCHS_SHARE of them), expected EPOCH_HALVING_COST lower for each
    halving. The clock gives back the epochs cut if the run proves to have time for them."""
    epochs, per_epoch = plan.fine_tune_epochs, plan.seconds.get("fine_tune_epoch", 0.0)
    if not epochs or per_epoch <= 0 or fits(plan, seconds_left):
        return plan
    fewer = epochs - math.ceil((plan.total - seconds_left / MARGIN) / per_epoch)
    if fewer < max(1, math.ceil(epochs * FEWEST_EPOCHS_SHARE)):
        return plan
    seconds = {
        **plan.seconds,
        "fine_tuning": plan.seconds["fine_tuning"] - per_epoch * (epochs - fewer),
    }
    expected = plan.expected and Expectation(
        plan.expected.validation - EPOCH_HALVING_COST * math.log2(epochs / fewer),
        f"{plan.expected.basis}; {fewer} of its {epochs} epochs: {EPOCH_HALVING_COST * 100:g} "
        f"point less a halving",
    )
    return replace(
        plan, fine_tune_epochs=fewer, expected=expected, seconds=seconds, full_epochs=epochs
    )


def fitted(plans: list[Plan], seconds_left: float, fixed: set[str]) -> list[Plan]:
    """`plans`, each `within` the time left, unless --fine_tune_epochs was given (kept)."""
    if "fine_tune_epochs" in fixed:
        return plans
    return [within(p, seconds_left) for p in plans]


def mirrored_if_it_fits(plan: Plan, config, fixed: set[str], data: DataFacts, rates, left):
    """`plan`, or where `left` seconds hold it, `plan` with --test_time_mirror and the same
    epochs (plans.MIRROR_GAIN says where and why)."""
    asked = plan.mirror or "test_time_mirror" in fixed
    measured = plan.expected is not None  # pretrained: the gain says nothing of random weights
    if asked or not (measured and plan.fine_tune_blocks and data.mirror_safe):
        return plan
    twin = with_seconds(mirrored(plan), config, data, rates)
    return twin if fits(twin, left) else plan
