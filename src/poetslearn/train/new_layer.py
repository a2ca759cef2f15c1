"""Training the new output layer on the bottlenecks (`head.train_output_layer`), with a progress
bar over its steps and TensorBoard summaries: the `new_layer` trainer (see `trainers`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from poetslearn.config import WORK_DIR
from poetslearn.progress import printing_around
from poetslearn.train.head import HeadParams, TrainResult, train_output_layer
from poetslearn.train.objectives import objective_for
from poetslearn.train.schedule import describe, eval_interval, new_layer_steps
from poetslearn.train.summaries import SummaryWriter, new_run_dir

if TYPE_CHECKING:  # the stage signature's types
    from poetslearn.config import RetrainConfig
    from poetslearn.context import RunContext
    from poetslearn.data.sources import Dataset
    from poetslearn.extract.backends import ExtractionBackend
    from poetslearn.extract.bottlenecks import Bottlenecks
    from poetslearn.extract.extractor import FeatureExtractor


class _StepProgress:
    """Called at every evaluation: moves the bar to that step and writes its summaries."""

    def __init__(self, bar, writer: SummaryWriter | None) -> None:
        self.bar, self.writer, self.step = bar, writer, 0

    def __call__(self, record, weights) -> None:
        self.bar.update(record.step - self.step)
        self.step = record.step
        if self.writer is not None:
            self.writer(record, weights)


def open_summaries(config, architecture: str) -> SummaryWriter | None:
    """A writer in a new run folder, or None when `--summaries_dir ""` turned them off."""
    if config.summaries_dir == "":
        return None
    root = config.summaries_dir or WORK_DIR / "training_summaries" / architecture
    return SummaryWriter(new_run_dir(root))


def training_length(config: RetrainConfig, train_size: int, log) -> tuple[int, int]:
    """(steps, evaluation interval): the flags when given, else the rule of `schedule`."""
    if config.how_many_training_steps is not None:
        return config.how_many_training_steps, config.eval_step_interval
    steps = new_layer_steps(train_size, config.train_batch_size)
    log(describe(steps, train_size, config.train_batch_size))
    return steps, eval_interval(steps, config.eval_step_interval)


def train_new_layer(
    bottlenecks: Bottlenecks,
    dataset: Dataset,
    extractor: FeatureExtractor,
    config: RetrainConfig,
    backend: ExtractionBackend | None,
    ctx: RunContext,
) -> TrainResult:
    """A new output layer on the frozen bottlenecks; the best validation step is kept.
    (`backend` is unused: the bottlenecks are computed already.)"""
    log = ctx.log
    steps, interval = training_length(config, len(bottlenecks.train_y), log)
    out_of_time = None if ctx.clock is None else ctx.clock.passed
    params = HeadParams.from_config(config, steps, interval, out_of_time=out_of_time)
    objective = objective_for(dataset.multi_label, bottlenecks.train_y)
    writer = open_summaries(config, extractor.arch.name)
    try:
        with ctx.progress(params.steps, "Training", "step") as bar:
            trained = train_output_layer(
                bottlenecks.train_x,
                bottlenecks.train_y,
                bottlenecks.vectors["validation"],
                bottlenecks.splits["validation"].labels,
                len(dataset.class_names),
                params,
                printing_around(bar, log),
                on_eval=_StepProgress(bar, writer),
                objective=objective,
            )
    finally:
        if writer is not None:
            writer.close()
            log(f"TensorBoard summaries written to {writer.run_dir}")
    trained.steps = steps
    best = objective.format_score(trained.best_validation_accuracy)
    log(
        f"Kept the weights of step {trained.best_step} (best validation "
        f"{objective.score_name} {best})."
    )
    return trained
