"""Progress reporting that suits both people at a terminal and logs in CI.

At a terminal: a tqdm bar with total, rate and ETA. Elsewhere: one line per ten percent, so CI logs
show progress without thousands of carriage returns.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tqdm import tqdm


class _LineProgress:
    """Prints `desc: 30% (300/1,000), 120.5 unit/s, 6 s left` every tenth of the way."""

    def __init__(self, total: int, desc: str, unit: str) -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.done = 0
        self.next_tenth = 1
        self.start = time.perf_counter()
        self._lock = threading.Lock()  # scanning threads update it together

    def update(self, n: int = 1) -> None:
        with self._lock:
            self._update(n)

    def _update(self, n: int) -> None:
        self.done += n
        if not self.total:
            return
        tenth = min(10, self.done * 10 // self.total)
        if tenth >= self.next_tenth:
            rate = self.done / max(time.perf_counter() - self.start, 1e-9)
            eta = (self.total - self.done) / rate if rate > 0 else 0.0
            print(
                f"{self.desc}: {tenth * 10}% ({self.done:,}/{self.total:,}), "
                f"{rate:,.1f} {self.unit}/s" + (f", {eta:,.0f} s left" if tenth < 10 else ""),
                file=sys.stderr,
                flush=True,
            )
            self.next_tenth = tenth + 1

    def close(self) -> None:
        pass


def printing_around(bar, log):
    """`log`, made to print above a terminal progress bar instead of through it."""
    if not isinstance(bar, tqdm):
        return log

    def write(message: str) -> None:
        with bar.external_write_mode():
            log(message)

    return write


@contextmanager
def progress(total: int, desc: str, unit: str = "img", enabled: bool = True) -> Iterator:
    """Yields an object with `update(n)`; silent when `enabled` is false."""
    if not enabled:
        bar = _LineProgress(0, desc, unit)
    elif sys.stderr.isatty():
        bar = tqdm(
            total=total, desc=desc, unit=unit, unit_scale=True, file=sys.stderr, dynamic_ncols=True
        )
    else:
        bar = _LineProgress(total, desc, unit)
    try:
        yield bar
    finally:
        bar.close()


class Timings(dict):
    """Seconds per named stage: `with timings("export"): ...` records how long the block took,
    and tells a --time_budget run's clock (which learns from it how fast the machine runs)."""

    def __init__(self, clock=None) -> None:
        super().__init__()
        self.clock = clock

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self[name] = time.perf_counter() - start
            if self.clock is not None:
                self.clock.observe(name, self[name])
