"""`poetslearn` with extraction held at a known point: the test build of the image source.

Tests that interrupt a run must reach the state they test (a signal arriving while bottlenecks
are being computed) on any machine, fast or slow, busy or quiet. Run as
`python tests/held_run.py HELD_FILE HOLD_AFTER poetslearn-arguments...`: image files load as
usual until HOLD_AFTER batches have been loaded; loading the next one writes HELD_FILE and waits
until the process has received SIGINT or SIGTERM. The test waits for HELD_FILE, sends its signal,
and the run unwinds exactly as it would from a signal at that moment, with no race either way.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

from poetslearn.cli import retrain as cli_retrain
from poetslearn.cli.main import cli
from poetslearn.data import sources

HOLD_LIMIT_S = 600  # a guard only: a test that never signals does not leave a process behind


def hold_extraction(held_file: Path, hold_after: int) -> None:
    signalled = threading.Event()
    loads = [0]
    original = sources.FileImages.load_batch

    def load_batch(self, indices, size):
        loads[0] += 1
        if loads[0] == hold_after + 1:
            held_file.write_text("held\n")
            signalled.wait(HOLD_LIMIT_S)
        return original(self, indices, size)

    def interrupt(signum, frame):
        signalled.set()
        raise KeyboardInterrupt

    sources.FileImages.load_batch = load_batch
    signal.signal(signal.SIGINT, interrupt)
    cli_retrain._raise_keyboard_interrupt = interrupt  # what `retrain` installs for SIGTERM


if __name__ == "__main__":
    hold_extraction(Path(sys.argv[1]), int(sys.argv[2]))
    sys.argv = ["poetslearn", *sys.argv[3:]]
    cli()
