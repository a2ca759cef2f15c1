"""The accuracy a plan is expected to reach: points measured on CIFAR-10 and shipped with the
package (`measured_accuracy.json`, written by scripts/budget_priors.py), and for a network never
measured, an estimate from those that were.

The estimate follows ImageNet: a network's new layer is expected where its ImageNet top-1
places it between the measured networks (interpolated), and a plan's gain over the new layer
(more pooled blocks, fine-tuning) is interpolated the same way. Other data sets are expected to
rank the plans as CIFAR-10 does; their own figures come from the run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from poetslearn.backbone.architectures import Architecture, get_architecture

MEASURED_TABLE = Path(__file__).with_name("measured_accuracy.json")


def plan_key(point: dict) -> tuple:
    """What identifies a plan in the table: (architecture, pooled blocks, fine-tuned blocks)."""
    return (point["architecture"], point["bottleneck_blocks"], point["fine_tune_blocks"])


@dataclass(frozen=True)
class Expectation:
    validation: float  # the expected validation accuracy, a fraction
    basis: str  # "measured" or how it was estimated


@lru_cache(maxsize=4)
def measured_points(path: Path = MEASURED_TABLE) -> dict[tuple, float]:
    """{plan key: measured validation accuracy} from the shipped table."""
    return {plan_key(p): p["validation"] for p in json.loads(Path(path).read_text())}


def _top1(name: str) -> float | None:
    arch = get_architecture(name)
    return arch.imagenet_top1


def _interpolate(arch: Architecture, known: dict[str, float]) -> float | None:
    """known {architecture: value} read at `arch`'s ImageNet top-1 (flat beyond the ends)."""
    pairs = sorted((_top1(n), v) for n, v in known.items() if _top1(n) is not None)
    if not pairs or arch.imagenet_top1 is None:
        return None
    xs, ys = zip(*pairs)
    return float(np.interp(arch.imagenet_top1, xs, ys))


def expected_accuracy(
    arch: Architecture, bottleneck_blocks: int, fine_tune_blocks: int, table: dict | None = None
) -> Expectation | None:
    """What the plan should reach on validation; None where nothing measured says anything."""
    table = measured_points() if table is None else table
    key = (arch.name, bottleneck_blocks, fine_tune_blocks)
    if key in table:
        return Expectation(table[key], "measured")
    new_layer = {a: v for (a, n, k), v in table.items() if (n, k) == (1, 0)}
    base = new_layer.get(arch.name) or _interpolate(arch, new_layer)
    if base is None:
        return None
    if (bottleneck_blocks, fine_tune_blocks) == (1, 0):
        return Expectation(base, "estimated from ImageNet top-1")
    gains = {
        a: v - new_layer[a]
        for (a, n, k), v in table.items()
        if (n, k) == (bottleneck_blocks, fine_tune_blocks) and a in new_layer
    }
    gain = _interpolate(arch, gains)
    if gain is None:
        return None
    return Expectation(base + gain, "estimated: the gain of the measured networks")
