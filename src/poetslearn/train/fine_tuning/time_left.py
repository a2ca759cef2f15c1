"""Fine-tuning against a --time_budget run's clock: whether to start at all, and how many of its
epochs fit in the time left (decided once the activations are ready, before the learning rate
schedule is built, so the schedule ends where the run does)."""

from __future__ import annotations

from dataclasses import replace

from poetslearn.config import RetrainConfig
from poetslearn.context import RunContext


def time_for(ctx: RunContext, *stages: str) -> bool:
    """Whether a --time_budget run still has time for `stages`; says so when it has not (the
    new layer is then what the run exports)."""
    if ctx.clock is None or ctx.clock.affords(*stages):
        return True
    ctx.log(
        f"Not fine-tuning: {ctx.clock.remaining():.0f} s are left and the "
        f"{' and '.join(stages)} would take about {ctx.clock.estimate(*stages):.0f} s "
        f"(--time_budget); keeping the new layer."
    )
    return False


def epochs_that_fit(config: RetrainConfig, ctx: RunContext, activation_seconds: float):
    """The config with as many of its epochs as the time left holds (all of them without a
    --time_budget), chosen before the learning rate schedule is; up to the clock's
    `most_epochs` where the plan cut them; None: not one fits."""
    clock = ctx.clock
    if clock is None:
        return config
    clock.observe("activations", activation_seconds)
    planned = config.fine_tune_epochs
    per_epoch = clock.estimate("fine_tune_epoch")
    most = max(planned, clock.most_epochs or 0)
    fit = min(most, int(clock.remaining() // per_epoch)) if per_epoch > 0 else planned
    if fit == planned:
        return config
    if fit < 1:
        time_for(ctx, "fine_tune_epoch")
        return None
    told = f"{fit} of {planned} epochs" if fit < planned else f"{fit} epochs, {planned} planned"
    ctx.log(
        f"Fine-tuning for {told}: what the {clock.remaining():.0f} s left hold at about "
        f"{per_epoch:.0f} s an epoch (--time_budget)."
    )
    return replace(config, fine_tune_epochs=fit)
