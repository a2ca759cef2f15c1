"""Durations as people write them: `90s`, `15m`, `2h`, `1h30m`, or a plain number of seconds."""

from __future__ import annotations

import re

from poetslearn.errors import PoetslearnError

UNIT_SECONDS = {"h": 3600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+(?:\.\d+)?)([hms])")


def parse_duration(text: str) -> float:
    """Seconds in `text`; a PoetslearnError naming the accepted forms otherwise."""
    cleaned = str(text).strip().lower().replace(" ", "")
    try:
        seconds = float(cleaned)
    except ValueError:
        parts = _PART.findall(cleaned)
        if not parts or "".join(n + u for n, u in parts) != cleaned:
            raise PoetslearnError(
                f"--time_budget takes a duration such as 90s, 15m, 2h or 1h30m (a plain number "
                f"is seconds); got {text!r}."
            ) from None
        seconds = sum(float(n) * UNIT_SECONDS[u] for n, u in parts)
    if seconds <= 0:
        raise PoetslearnError(f"--time_budget must be longer than 0 seconds; got {text!r}.")
    return seconds


def describe_duration(seconds: float) -> str:
    """4 min 05 s, 1 h 02 min, 45 s: how the plan table writes a time."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
