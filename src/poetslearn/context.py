"""What a run tells the person who started it, handed to every stage as one object: `log` for
progress lines, `warn` for warnings, and progress bars (`progress`) unless they are turned off.

Warnings have one channel: every function that can warn takes a `warn` callable, and every one
of them defaults to `warn_on_stderr`. The CLI passes its own; a library caller passes its own
functions or `RunContext.silent()`. (Python's `logging` carries only debugging detail, shown with
`--verbose`.)"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

from poetslearn.clock import Clock
from poetslearn.progress import progress as progress_bar


def _nothing(message: str) -> None:
    del message


def warn_on_stderr(message: str) -> None:
    """The default for every `warn`: the message on its own line on standard error."""
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class RunContext:
    log: Callable[[str], None] = print
    warn: Callable[[str], None] = warn_on_stderr
    show_progress: bool = True
    clock: Clock | None = None  # a --time_budget run's deadline; None: no deadline

    @classmethod
    def silent(cls) -> RunContext:
        return cls(_nothing, _nothing, False)

    def progress(self, total: int, description: str, unit: str):
        """A progress bar (a context manager) over `total` units, or one that shows nothing."""
        return progress_bar(total, description, unit, self.show_progress)
