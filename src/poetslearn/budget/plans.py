"""The plans `--time_budget` chooses among (a network, the new layer or pooled blocks or
fine-tuned blocks), what each is expected to reach and to cost here, and the choice: the most
accurate plan whose estimate fits the time left with a margin."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from poetslearn.backbone.architectures import Architecture, get_architecture
from poetslearn.backbone.block_features import resolve_bottleneck_blocks
from poetslearn.budget.costs import (
    TRAINING_SHARE,
    Rates,
    activation_bytes,
    bottleneck_bytes,
    bottleneck_width,
    cache_seconds,
    export_seconds,
    is_mobilenet,
    top_blocks_macs,
)
from poetslearn.budget.duration import describe_duration
from poetslearn.budget.expectations import Expectation, expected_accuracy
from poetslearn.config import RetrainConfig
from poetslearn.errors import PoetslearnError
from poetslearn.train.schedule import fine_tune_epochs, new_layer_steps

MARGIN = 1.15  # a plan fits when its estimate times this is within the time left
POOLED_BLOCKS = (2, 4, 14)
# 6 and 8 blocks: +1.9 and +2.6 points over 4 at 0.75/128 on CIFAR-10 (92.5% and 93.2%
# against 90.6%, in 1.4x and 1.8x its fine-tuning time; twice 4's epochs gave 91.6% in 1.8x:
# BENCHMARKS.md, "More fine-tuned blocks"), where only 1, 2 and 4 were weighed before.
FINE_TUNED_BLOCKS = (1, 2, 4, 6, 8)
# --test_time_mirror on a fine-tuning plan: +0.6 point on validation at 0.25/128 with 4 blocks
# and +0.5 at 1.0/224 with 4 (BENCHMARKS.md, "`--test_time_mirror`"), for the mirror images'
# extraction and every scoring twice. Since every export then classifies at twice the cost, it
# is added to the chosen plan only where the time left holds it with the plan's own epochs (it
# never displaces a plan or cuts its epochs), only where it was measured (fine-tuning), and
# only where a mirror image is known to keep its label (CIFAR-10, or --flip_left_right given).
MIRROR_GAIN = 0.005


@dataclass(frozen=True)
class DataFacts:
    """What of the data set the costs depend on."""

    train: int
    validation: int
    test: int
    extracted: int  # images whose bottlenecks every plan needs (distorted copies included)
    keys: frozenset = field(repr=False, default=frozenset())
    mirror_safe: bool = False  # a mirror image keeps its label: mirrored plans may be weighed

    @property
    def mirrored(self) -> int:
        """The mirror images a mirrored plan extracts too: the scored splits'."""
        return self.validation + self.test


@dataclass(frozen=True)
class Plan:
    architecture: str
    bottleneck_blocks: int = 1
    fine_tune_blocks: int = 0
    fine_tune_epochs: int | None = None
    expected: Expectation | None = None
    seconds: dict = field(default_factory=dict, compare=False)  # stage -> estimated seconds
    cached: int = 0  # bottlenecks already in the cache
    full_epochs: int | None = None  # where the plan runs fewer: the epochs it was measured at
    mirror: bool = False  # --test_time_mirror

    @property
    def total(self) -> float:
        return sum(s for stage, s in self.seconds.items() if stage != "fine_tune_epoch")

    def describe(self) -> str:
        of_full = f" of {self.full_epochs}" if self.full_epochs else ""
        epochs = f"{self.fine_tune_epochs}{of_full} epochs"
        if self.fine_tune_blocks == "all":
            what = f"fine-tune the whole network, {epochs}"
        elif self.fine_tune_blocks:
            what = f"fine-tune the top {self.fine_tune_blocks}, {epochs}"
        elif self.bottleneck_blocks > 1:
            what = f"new layer on the top {self.bottleneck_blocks} blocks pooled"
        else:
            what = "new layer"
        return f"{self.architecture}, {what}" + (", mirrored" if self.mirror else "")

    def settings(self) -> dict:
        """The retrain options this plan sets."""
        return {
            "architecture": self.architecture,
            "bottleneck_blocks": self.bottleneck_blocks,
            "fine_tune_blocks": self.fine_tune_blocks,
            **({"fine_tune_epochs": self.fine_tune_epochs} if self.fine_tune_blocks else {}),
            "test_time_mirror": self.mirror,
        }

    def as_dict(self) -> dict:
        return {
            **self.settings(),
            "expected_validation_accuracy": self.expected and round(self.expected.validation, 4),
            "expected_from": self.expected and self.expected.basis,
            "estimated_seconds": round(self.total, 1),
            "stage_seconds": {k: round(v, 1) for k, v in self.seconds.items()},
            "cached_bottlenecks": self.cached,
            **({"full_epochs": self.full_epochs} if self.full_epochs else {}),
        }


def _options(arch: Architecture, config: RetrainConfig, fixed: set[str]) -> list[tuple]:
    """(pooled blocks, fine-tuned blocks) to consider for `arch`, within the options given."""
    options = [(1, 0)]
    if is_mobilenet(arch):
        options += [(n, 0) for n in POOLED_BLOCKS] + [(1, k) for k in FINE_TUNED_BLOCKS]
    if "bottleneck_blocks" in fixed:
        blocks = resolve_bottleneck_blocks(arch, config.bottleneck_blocks)
        options = [o for o in options if o[0] == blocks] or [(blocks, 0)]
    if "fine_tune_blocks" in fixed:
        options = [o for o in options if o[1] == config.fine_tune_blocks] or [
            (1, config.fine_tune_blocks)
        ]
    return options


def estimate(plan: Plan, config: RetrainConfig, data: DataFacts, rates: Rates) -> dict:
    """Seconds per stage of `plan` on this machine."""
    arch = get_architecture(plan.architecture)
    per_image = rates.extraction_seconds(arch)
    steps = config.how_many_training_steps or new_layer_steps(data.train, config.train_batch_size)
    extracted = data.extracted + (data.mirrored if plan.mirror else 0)
    scorings = 2 if plan.mirror else 1  # each scored image, and its mirror image
    seconds = {
        "build_model": rates.build_seconds_for(plan.architecture),
        "bottlenecks": _extraction(
            max(extracted - plan.cached, 0),
            per_image,
            bottleneck_bytes(arch, plan.bottleneck_blocks),
        ),
        "new_layer": rates.head_seconds(bottleneck_width(arch, plan.bottleneck_blocks), steps),
        "export": export_seconds(config),
    }
    if plan.fine_tune_blocks == "all":  # the whole network, on images loaded every epoch
        forward = arch.million_macs * 1e6 / rates.macs_per_second
        epoch = data.train * (3 * forward / TRAINING_SHARE + rates.load_seconds)
        epoch += scorings * data.validation * per_image
        seconds["fine_tune_epoch"] = epoch
        seconds["fine_tuning"] = epoch * plan.fine_tune_epochs + scorings * data.test * per_image
    elif plan.fine_tune_blocks:
        top = top_blocks_macs(arch, plan.fine_tune_blocks)
        forward = top * 1e6 / rates.macs_per_second
        share = rates.training_share(plan.architecture, plan.fine_tune_blocks)
        epoch = data.train * 3 * forward / share + scorings * data.validation * forward
        below = rates.extraction_seconds(arch, 1 - top / arch.million_macs)
        written = activation_bytes(arch, plan.fine_tune_blocks)
        seconds["activations"] = _extraction(extracted, below, written)
        seconds["fine_tune_epoch"] = epoch
        seconds["fine_tuning"] = epoch * plan.fine_tune_epochs + scorings * data.test * forward
    return seconds


def _extraction(images: int, seconds_each: float, bytes_each: int) -> float:
    """Filling a cache: the engine and the loading, then the bytes written."""
    return images * seconds_each + cache_seconds(images, bytes_each)


def candidates(
    config: RetrainConfig,
    architectures: list[str],
    fixed: set[str],
    data: DataFacts,
    rates: Rates,
    cached,
) -> list[Plan]:
    """Every plan to weigh, each with its expectation and its estimated stage seconds;
    `cached(architecture, width)` says how many bottlenecks the cache holds."""
    plans = []
    pretrained = config.weights != "none"  # what was measured says nothing of random weights
    for name in architectures:
        arch = get_architecture(name)
        for blocks, tuned in _options(arch, config, fixed):
            epochs = (config.fine_tune_epochs or fine_tune_epochs(data.train)) if tuned else None
            plan = Plan(
                name,
                blocks,
                tuned,
                epochs,
                expected_accuracy(arch, blocks, tuned) if pretrained else None,
                cached=cached(name, bottleneck_width(arch, blocks)),
            )
            plan = mirrored(plan) if config.test_time_mirror else plan  # asked for
            plans.append(with_seconds(plan, config, data, rates))
    return plans


def mirrored(plan: Plan) -> Plan:
    """`plan` with --test_time_mirror; a fine-tuning plan expected MIRROR_GAIN higher."""
    expected = plan.expected
    if expected and plan.fine_tune_blocks:
        expected = Expectation(
            expected.validation + MIRROR_GAIN,
            f"{expected.basis}; {MIRROR_GAIN * 100:g} point more mirrored",
        )
    return replace(plan, mirror=True, expected=expected)


def with_seconds(plan: Plan, config, data, rates) -> Plan:
    return replace(plan, seconds=estimate(plan, config, data, rates))


def fits(plan: Plan, seconds_left: float) -> bool:
    return plan.total * MARGIN <= seconds_left


def choose(plans: list[Plan], seconds_left: float, preferred: Plan | None = None) -> Plan:
    """The plan with the best expected accuracy (then the shortest) that fits; where no plan
    has an expectation, `preferred` (the options as given) if it fits, else the shortest."""
    fitting = [p for p in plans if fits(p, seconds_left)]
    if not fitting:
        shortest = min(plans, key=lambda p: p.total)
        raise PoetslearnError(
            f"No plan fits in the {describe_duration(seconds_left)} left: the shortest, "
            f"{shortest.describe()}, needs about {describe_duration(shortest.total)} here. "
            f"Give --time_budget {describe_duration(shortest.total * MARGIN + 30)} or more."
        )
    known = [p for p in fitting if p.expected is not None]
    if known:
        return max(known, key=lambda p: (round(p.expected.validation, 4), -p.total))
    if preferred is not None and preferred in fitting:
        return preferred
    return min(fitting, key=lambda p: p.total)


def plan_table(plans: list[Plan], chosen: Plan, seconds_left: float, shown: int = 8) -> str:
    """The plans by expected accuracy, the chosen one marked, each with its estimated time."""
    ranked = sorted(plans, key=lambda p: (-(p.expected.validation if p.expected else -1), p.total))[
        :shown
    ]
    if chosen not in ranked:
        ranked.append(chosen)
    lines = [f"  {'plan':<66} {'expected':>9} {'estimate':>14}  fits"]
    for p in ranked:
        mark = ">" if p == chosen else " "
        accuracy = f"{p.expected.validation:.1%}" if p.expected else "?"
        fit = "yes" if fits(p, seconds_left) else "no"
        lines.append(
            f"{mark} {p.describe():<66} {accuracy:>9} {describe_duration(p.total):>14}  {fit}"
        )
    return "\n".join(lines)
