"""The clock of a `--time_budget` run, handed to the stages through the run's context: when
training must end (what is left after it is scoring and export), what the plan expects each
later stage to take, and how much slower than planned the machine has proved so far."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

# The stages whose seconds are this machine's rate times the work planned, so that running
# behind in them predicts slow epochs; taken together, so that one misestimated stage does not
# set every epoch's length. Building the network is a one-off (imports, tracing), and a stage
# planned at a few seconds proves nothing. When one stage set it, a 15-minute run's activations,
# planned at 23 s and taking 39, scaled its epochs by 1.65, and it ran about 5 of 8
# (BENCHMARKS.md, "More fine-tuned blocks").
RATE_STAGES = frozenset({"bottlenecks", "activations"})
MIN_OBSERVED_SECONDS = 5.0


class OutOfTime(Exception):
    """A stage that cannot end with part of its work (the activation cache) stopped by the
    clock; the caller falls back to what it had before the stage."""


@dataclass
class Clock:
    training_ends: float  # time.monotonic() by which training stops
    expected: dict[str, float] = field(default_factory=dict)  # stage -> planned seconds
    stopped: bool = False  # stopped by the user (`stop_now`) rather than by the time
    observed: dict[str, tuple[float, float]] = field(default_factory=dict)  # (planned, took)
    # Where the plan cut a fine-tuning run's epochs to fit: its full count, which fine-tuning
    # runs after all if the time left when it starts holds them.
    most_epochs: int | None = None

    @classmethod
    def starting_now(cls, seconds: float, expected: dict[str, float] | None = None) -> Clock:
        return cls(time.monotonic() + seconds, dict(expected or {}))

    def remaining(self) -> float:
        return self.training_ends - time.monotonic()

    def stop_now(self) -> None:
        """Ctrl-C in a --time_budget run: every stage ends at its next check, as if out of
        time, and the best model so far is exported."""
        self.training_ends = min(self.training_ends, time.monotonic())
        self.stopped = True

    def passed(self) -> bool:
        return self.remaining() <= 0

    def observe(self, stage: str, seconds: float) -> None:
        """A stage took `seconds`: where it is a rate stage planned long enough to tell, later
        estimates grow by how far behind the plan the rate stages ran, taken together."""
        planned = self.expected.get(stage, 0.0)
        if stage not in RATE_STAGES or planned < MIN_OBSERVED_SECONDS:
            return
        self.observed[stage] = (planned, seconds)

    @property
    def slowdown(self) -> float:
        """Seconds taken over seconds planned by the rate stages observed so far, at least 1."""
        if not self.observed:
            return 1.0
        planned, took = (sum(column) for column in zip(*self.observed.values()))
        return max(1.0, took / planned)

    def estimate(self, *stages: str) -> float:
        """What `stages` should take now: the plan's seconds, times the slowdown so far."""
        return self.slowdown * sum(self.expected.get(s, 0.0) for s in stages)

    def affords(self, *stages: str) -> bool:
        return self.estimate(*stages) <= self.remaining()
