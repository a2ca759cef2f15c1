"""The clock of a `--time_budget` run, handed to the stages through the run's context: when
training must end (what is left after it is scoring and export), what the plan expects each
later stage to take, and how much slower than planned the machine has proved so far."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


class OutOfTime(Exception):
    """A stage that cannot end with part of its work (the activation cache) stopped by the
    clock; the caller falls back to what it had before the stage."""


@dataclass
class Clock:
    training_ends: float  # time.monotonic() by which training stops
    expected: dict[str, float] = field(default_factory=dict)  # stage -> planned seconds
    slowdown: float = 1.0  # measured / planned seconds of the stages so far (at least 1)
    stopped: bool = False  # stopped by the user (`stop_now`) rather than by the time

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
        """A stage took `seconds`: later estimates grow by how far the machine runs behind."""
        planned = self.expected.get(stage)
        if planned and planned > 1.0:  # a second or less says nothing about the machine
            self.slowdown = max(self.slowdown, seconds / planned)

    def estimate(self, *stages: str) -> float:
        """What `stages` should take now: the plan's seconds, times the slowdown so far."""
        return self.slowdown * sum(self.expected.get(s, 0.0) for s in stages)

    def affords(self, *stages: str) -> bool:
        return self.estimate(*stages) <= self.remaining()
