"""TensorBoard summaries of training the new layer, one sub-folder per run.

`tensorboard --logdir tf_files/training_summaries` then shows train and validation accuracy and
cross entropy over the steps, and a histogram of the new layer's weights. Each run writes into
its own time-stamped folder, so earlier runs are kept for comparison (the codelab wiped them).
"""

from __future__ import annotations

import time
from pathlib import Path


def new_run_dir(summaries_dir: Path) -> Path:
    """Creates `<summaries_dir>/run-YYYYmmdd-HHMMSS` (with `-2`, `-3`... if taken): sortable,
    and never an existing folder, even for runs started in the same second."""
    base = Path(summaries_dir) / f"run-{time.strftime('%Y%m%d-%H%M%S')}"
    base.parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, 10_000):
        candidate = base if n == 1 else base.with_name(f"{base.name}-{n}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise FileExistsError(f"no free run folder name under {summaries_dir}")


class SummaryWriter:
    """Writes one evaluation record at a time; call `close()` at the end."""

    def __init__(self, run_dir: Path) -> None:
        import tensorflow as tf

        self.run_dir = Path(run_dir)
        self._train = tf.summary.create_file_writer(str(self.run_dir / "train"))
        self._validation = tf.summary.create_file_writer(str(self.run_dir / "validation"))

    def __call__(self, record, weights) -> None:
        import tensorflow as tf

        with self._train.as_default(step=record.step):
            tf.summary.scalar("accuracy", record.train_accuracy)
            tf.summary.scalar("cross_entropy", record.cross_entropy)
            tf.summary.histogram("final_layer/weights", weights)
        with self._validation.as_default(step=record.step):
            tf.summary.scalar("accuracy", record.validation_accuracy)
            tf.summary.scalar("cross_entropy", record.validation_cross_entropy)

    def close(self) -> None:
        self._train.close()
        self._validation.close()
