"""What a run tells the person who started it, handed to every stage as one object: `log` for
progress lines, `warn` for warnings, and progress bars (`progress`) unless they are turned off.
The CLI prints to stderr; a library caller passes its own functions or `RunContext.silent()`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from poetslearn.progress import progress as progress_bar


def _nothing(message: str) -> None:
    del message


@dataclass(frozen=True)
class RunContext:
    log: Callable[[str], None] = print
    warn: Callable[[str], None] = print
    show_progress: bool = True

    @classmethod
    def silent(cls) -> RunContext:
        return cls(_nothing, _nothing, False)

    def progress(self, total: int, description: str, unit: str):
        """A progress bar (a context manager) over `total` units, or one that shows nothing."""
        return progress_bar(total, description, unit, self.show_progress)
