"""`retrain --time_budget`: load the data, measure this machine on it, choose the plan, print
the choice, then run retrain against the clock (training ends in time to score and export)."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from poetslearn.backbone.architectures import architecture_names, get_architecture
from poetslearn.backbone.block_features import resolve_bottleneck_blocks
from poetslearn.backbone.codelab_graphs import find_codelab_graph
from poetslearn.backbone.keras_weights import find_keras_file
from poetslearn.budget.costs import export_seconds
from poetslearn.budget.duration import describe_duration
from poetslearn.budget.fitting import fitted, mirrored_if_it_fits
from poetslearn.budget.measure import (
    cached_bottlenecks,
    measure_extraction,
    measure_rates,
    measure_training_share,
)
from poetslearn.budget.plans import DataFacts, Plan, candidates, choose, plan_table
from poetslearn.clock import Clock
from poetslearn.config import RetrainConfig, check_settings
from poetslearn.context import RunContext, warn_on_stderr
from poetslearn.data.distortions import Distortions
from poetslearn.errors import PoetslearnError
from poetslearn.export.stage import plan_outputs
from poetslearn.pipeline import RetrainResult, load_data, retrain

# Seconds held back beyond the export's estimate: scoring the test split, and a busy moment.
RESERVE_SECONDS = 5.0
REFERENCE_MACS = 150  # the default network's; the reference is the available one nearest it
# At most this many timings (a network's extraction, a fine-tuning plan's step; a few seconds
# each) before the plan is kept.
MEASUREMENTS = 4


@dataclass
class BudgetRun:
    chosen: Plan
    plans: list[Plan]
    record: dict  # what the metadata and --json record of the plan
    result: RetrainResult | None = None  # None with --plan_only


def architectures_to_weigh(config: RetrainConfig, fixed: set[str]) -> list[str]:
    """The networks a plan may use: the one given (--architecture, --weights FILE), else every
    registry network whose ImageNet weights are on this machine already."""
    if config.tfhub_module:
        raise PoetslearnError(
            "--time_budget plans among the registry's networks (--architecture); it cannot "
            "plan a --tfhub_module. Leave out one of the two."
        )
    if "architecture" in fixed or config.weights != "imagenet":
        return [config.architecture]
    on_disk = [
        name
        for name in architecture_names(include_tests=False)
        if find_codelab_graph(get_architecture(name), config.model_dir, []) is not None
        or find_keras_file(get_architecture(name), config.model_dir, []) is not None
    ]
    return on_disk or [config.architecture]


def data_facts(dataset, config: RetrainConfig) -> DataFacts:
    sizes = {name: len(split) for name, split in dataset.splits.items()}
    extracted = sum(sizes.values())
    if Distortions.from_config(config).enabled:
        extracted += config.distorted_copies * sizes["train"]
    keys = frozenset(k for split in dataset.splits.values() for k in split.images.keys())
    safe = keeps_labels_in_a_mirror(config)
    return DataFacts(sizes["train"], sizes["validation"], sizes["test"], extracted, keys, safe)


def keeps_labels_in_a_mirror(config: RetrainConfig) -> bool:
    """Whether a mirror image is known to show the same class: CIFAR-10's photos, or data whose
    user trains on mirror images (--flip_left_right). A folder of text, digits or left and
    right hands is not, so --test_time_mirror is weighed on it only when asked for."""
    cifar10 = config.image_dir is None and config.data_csv is None
    return cifar10 or config.flip_left_right


def _reference(names: list[str], config: RetrainConfig) -> str:
    if config.architecture in names:
        return config.architecture
    return min(names, key=lambda n: abs(get_architecture(n).million_macs - REFERENCE_MACS))


def retrain_within(
    config: RetrainConfig,
    budget: float,
    fixed: set[str] = frozenset(),
    plan_only: bool = False,
    log=print,
    warn=warn_on_stderr,
    began: float | None = None,
    clock: Clock | None = None,
) -> BudgetRun:
    """Plans and runs (unless `plan_only`) the most accurate retrain that fits `budget` seconds
    counted from `began` (time.monotonic(); default: now); `fixed`: the options given, which
    every plan keeps; `clock`: `budget_clock`'s, made by a caller that stops it on Ctrl-C."""
    began = time.monotonic() if began is None else began
    clock = clock or budget_clock(config, budget, began)
    ctx = RunContext(log, warn, config.show_progress)
    run, dataset = plan_run(config, budget, fixed, ctx, began)
    if plan_only:
        return run
    if clock.stopped:  # Ctrl-C while planning: nothing trained yet to export
        raise KeyboardInterrupt
    clock.expected.update(_clock_stages(run.chosen))
    clock.most_epochs = run.chosen.full_epochs
    run_config = replace(config, **run.chosen.settings(), plan=run.record)
    run.result = retrain(run_config, log, warn, clock, dataset)
    return run


def budget_clock(config: RetrainConfig, budget: float, began: float) -> Clock:
    """The clock of a run of `budget` seconds from `began`: training ends in time for the test
    split's scoring and the exports `config` asks for."""
    return Clock(began + budget - export_seconds(config) - RESERVE_SECONDS)


def plan_run(config: RetrainConfig, budget: float, fixed: set[str], ctx: RunContext, began):
    """(the plan chosen and those weighed, the data set): measured, chosen and printed."""
    check_settings(config)  # impossible settings and unwritable outputs before any work
    plan_outputs(config)
    names = architectures_to_weigh(config, fixed)
    dataset = load_data(config, ctx)
    data = data_facts(dataset, config)
    reference = _reference(names, config)
    ctx.log(f"Measuring this machine on this data ({reference}; {len(names)} networks to weigh).")
    rates = measure_rates(dataset, config, reference, ctx)
    cached = cached_bottlenecks(config.bottleneck_dir, data.keys)

    def weigh(rates, left):
        held = lambda name, width: cached.get((name, width), 0)  # noqa: E731
        return fitted(candidates(config, names, fixed, data, rates, held), left, fixed)

    chosen, plans, rates, left = _choose(weigh, rates, config, budget, began, dataset, ctx)
    spent = mirrored_if_it_fits(chosen, config, fixed, data, rates, left)
    plans, chosen = [spent if p == chosen else p for p in plans], spent
    ctx.log(
        f"Plans for the {describe_duration(left)} left of --time_budget "
        f"{describe_duration(budget)}:\n{plan_table(plans, chosen, left)}\n"
        f"{_choice_line(chosen, left, config)}"
    )
    record = {
        "budget_seconds": budget,
        "chosen": chosen.as_dict(),
        "plans_weighed": len(plans),
        "measured": {
            "reference": reference,
            "engine_gmacs_per_second": round(rates.macs_per_second / 1e9, 2),
            "load_ms_per_image": round(rates.load_seconds * 1e3, 3),
            "extraction_images_per_second": {
                name: round(1 / rates.extraction_seconds(get_architecture(name)), 1)
                for name in rates.extraction
            },
            "fine_tuning_shares": {
                f"{name}, top {blocks}": round(share, 3)
                for (name, blocks), share in rates.training_shares.items()
            },
        },
    }
    return BudgetRun(chosen, plans, record), dataset


def _choose(weigh, rates, config: RetrainConfig, budget: float, began, dataset, ctx):
    """(the chosen plan, the plans weighed, the rates, the seconds left): the best plan that
    fits. A plan is kept only once what it spends most on has been timed here: its network's
    extraction (scaled from another network's, it erred by up to 1.6x) and a fine-tuning
    plan's own step (0.39 to 1.0 of the engine's rate by network). Each timing may change the
    plan's estimate, and so the choice."""
    for timings in range(MEASUREMENTS + 1):
        left = budget - (time.monotonic() - began)
        plans = weigh(rates, left)
        preferred = next((p for p in plans if _is_as_given(p, config)), None)
        chosen = choose(plans, left, preferred)
        timed = timings < MEASUREMENTS and _time_the_untimed(chosen, rates, config, dataset, ctx)
        if not timed:
            break
        rates = timed
    return chosen, plans, rates, left


def _time_the_untimed(plan: Plan, rates, config: RetrainConfig, dataset, ctx):
    """`rates` with one more of `plan`'s costs timed here, or None when all are."""
    name, blocks = plan.architecture, plan.fine_tune_blocks
    extracts = plan.seconds["bottlenecks"] > 0 or plan.seconds.get("activations", 0) > 0
    if extracts and name not in rates.extraction:
        arch = get_architecture(name)
        before = rates.extraction_seconds(arch)
        timed = measure_extraction(dataset, config, name, rates, ctx)
        after = timed.extraction_seconds(arch)
        ctx.log(
            f"{name} extracts {1 / after:,.0f} images a second here ({1 / before:,.0f} estimated)."
        )
        return timed
    if isinstance(blocks, int) and blocks and (name, blocks) not in rates.training_shares:
        classes = len(dataset.class_names)
        share = measure_training_share(config, name, blocks, classes, rates, ctx)
        ctx.log(
            f"Fine-tuning {name}'s top {blocks} blocks runs at {share:.2f} of the engine's "
            f"rate here ({rates.training_share(name, blocks):.2f} assumed)."
        )
        return rates.with_training_share(name, blocks, share)
    return None


def _is_as_given(plan: Plan, config: RetrainConfig) -> bool:
    """Whether `plan` is the run the options would make without a budget."""
    if plan.architecture != config.architecture:
        return False
    arch = get_architecture(plan.architecture)
    blocks = resolve_bottleneck_blocks(arch, config.bottleneck_blocks)
    given = (blocks, config.fine_tune_blocks, config.test_time_mirror)
    return (plan.bottleneck_blocks, plan.fine_tune_blocks, plan.mirror) == given


def _clock_stages(plan: Plan) -> dict[str, float]:
    """The plan's seconds under the names the pipeline's stages report to the clock."""
    s = plan.seconds
    return {
        "build_model": s["build_model"],
        "bottlenecks": s["bottlenecks"],
        "new_layer": s["new_layer"],
        **{k: s[k] for k in ("activations", "fine_tune_epoch") if k in s},
    }


def _choice_line(plan: Plan, left: float, config: RetrainConfig) -> str:
    expected = (
        f"expected {plan.expected.validation:.1%} on validation ({plan.expected.basis}, "
        f"on CIFAR-10)"
        if plan.expected
        else "no accuracy measured for it"
    )
    cached = f"; {plan.cached:,} bottlenecks cached" if plan.cached else ""
    mirror = (
        " Mirrored: every export scores each image and its mirror image, twice the cost of a "
        "classification (--no_test_time_mirror plans without)."
        if plan.mirror and not config.test_time_mirror
        else ""
    )
    return (
        f"Chose {plan.describe()}: {expected}; about {describe_duration(plan.total)} of the "
        f"{describe_duration(left)} left{cached}.{mirror}"
    )
