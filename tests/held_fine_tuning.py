"""`poetslearn` that stops (waits to be killed) once the checkpoint of epoch 1 of fine-tuning is
on disk: the test build of the trainer, for the resume-after-SIGKILL test. Run as
`python tests/held_fine_tuning.py HELD_FILE poetslearn-arguments...`."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from poetslearn.cli.main import cli
from poetslearn.train.fine_tuning import top_blocks as fine_tuning


def hold_after_first_epoch(held_file: Path) -> None:
    original = fine_tuning.save_checkpoint

    def save(path, epoch, *args, **kwargs):
        original(path, epoch, *args, **kwargs)
        if epoch == 1:
            held_file.write_text("epoch 1 saved\n")
            time.sleep(600)  # the test kills the process here

    fine_tuning.save_checkpoint = save  # what the trainer calls after every epoch


if __name__ == "__main__":
    hold_after_first_epoch(Path(sys.argv[1]))
    sys.argv = ["poetslearn", *sys.argv[2:]]
    cli()
