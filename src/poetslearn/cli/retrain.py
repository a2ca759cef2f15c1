"""`poetslearn retrain`: its options, the call into the library, and what it prints."""

from __future__ import annotations

import json
import signal
import sys
import time
from dataclasses import fields
from pathlib import Path

import click
from click.core import ParameterSource

from poetslearn.backbone.architectures import get_architecture
from poetslearn.backbone.block_features import resolve_bottleneck_blocks
from poetslearn.backbone.cut import cut_layer
from poetslearn.cli.common import (
    echo_err,
    library_errors,
    start_command,
    verbose_option,
)
from poetslearn.cli.data_options import check_one_data_source
from poetslearn.cli.retrain_options import retrain_options
from poetslearn.config import NOT_WITH_FINE_TUNING, RetrainConfig
from poetslearn.errors import PoetslearnError
from poetslearn.memory import describe_peak_memory, peak_memory_mb

# How people name each artefact in the "... written to" lines (--json keeps the keys).
ARTIFACT_TITLES = {
    "graph": "Graph",
    "labels": "Labels",
    "metadata": "Metadata",
    "saved_model": "SavedModel",
    "tflite": "TFLite model",
    "tflite_metadata": "TFLite metadata",
    "onnx": "ONNX model",
}


@click.command()
@retrain_options
@verbose_option
def retrain(json_output: bool, **options) -> None:
    """Train a new classifier layer on top of a pretrained network and export it as a graph.

    \b
    Examples:
      poetslearn retrain --architecture mobilenet_0.50_224          # CIFAR-10
      poetslearn retrain --image_dir tf_files/flower_photos
    """
    began = time.monotonic()
    start_command(options.pop("verbose"))
    budget, plan_only = options.pop("time_budget"), options.pop("plan_only")
    if plan_only and budget is None:
        raise click.UsageError("--plan_only needs --time_budget (the time to plan for).")
    config = retrain_config(options)
    echo = echo_err if json_output else click.echo
    previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        with library_errors(
            "the previous graph and labels were left intact and the "
            "bottlenecks computed so far are kept."
        ):
            if budget is None:
                from poetslearn.pipeline import retrain as run_retrain

                result = run_retrain(config, log=echo, warn=echo_err)
            else:
                result = _retrain_within(config, budget, plan_only, json_output, echo, began)
                if result is None:
                    return
    except KeyboardInterrupt:
        echo_err(
            "Interrupted; the bottlenecks computed so far are cached and the next run "
            "resumes from there. Earlier outputs were left as they were."
        )
        sys.exit(130)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if config.print_misclassified_test_images:
        echo("=== MISCLASSIFIED TEST IMAGES ===")
        for name, true, predicted in result.misclassified:
            echo(f"{name}  (true: {true}, predicted: {predicted})")
    for what, path in result.outputs.items():
        echo(f"{ARTIFACT_TITLES.get(what, what)} written to {path}")
    if result.plan:  # --time_budget: the whole command's time, start-up included
        result.plan["wall_seconds"] = round(time.monotonic() - began, 1)
    if json_output:
        click.echo(
            json.dumps(_retrain_report(result, peak_memory_mb()), indent=2, ensure_ascii=False)
        )
    echo(_done_line(result.timings))
    if result.plan:
        echo(_budget_line(result.plan))


# The options a --time_budget plan keeps when they are given on the command line.
PLANNED_OPTIONS = (
    "architecture",
    "bottleneck_blocks",
    "fine_tune_blocks",
    "fine_tune_epochs",
    "weights",
    "test_time_mirror",
)


def _retrain_within(config, budget: str, plan_only: bool, json_output: bool, echo, began):
    """The --time_budget run: its result, or None after --plan_only printed the plan."""
    from poetslearn.budget.duration import parse_duration
    from poetslearn.budget.run import budget_clock, retrain_within

    source = click.get_current_context().get_parameter_source
    fixed = {name for name in PLANNED_OPTIONS if source(name) == ParameterSource.COMMANDLINE}
    seconds = parse_duration(budget)
    clock = budget_clock(config, seconds, began)
    previous = signal.signal(signal.SIGINT, _stop_then_interrupt(clock))
    try:
        run = retrain_within(
            config, seconds, fixed, plan_only, echo, echo_err, began=began, clock=clock
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    if run.result is not None:
        return run.result
    if json_output:
        document = {**run.record, "plans": [p.as_dict() for p in run.plans]}
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
    return None


def retrain_config(options: dict) -> RetrainConfig:
    """The command's options as a RetrainConfig (the library never reads flags): retrain's, or
    those of another command that takes retrain's data and network options (`check`)."""
    check_one_data_source(options.pop("dataset"), options["image_dir"], options["data_csv"])
    options["show_progress"] = not options.pop("quiet")
    if options.get("summaries_dir"):  # "" (off) and None (default) stay as they are
        options["summaries_dir"] = Path(options["summaries_dir"])
    if options["ray_address"]:
        options["extraction"] = "ray"
    elif options["ray_worker_cpus"] is not None:
        raise click.UsageError("--ray_worker_cpus needs --ray ADDRESS.")
    known = {f.name for f in fields(RetrainConfig)}
    config = RetrainConfig(**{k: v for k, v in options.items() if k in known})
    _check_block_counts(config)
    return config


def _check_block_counts(config: RetrainConfig) -> None:
    """An impossible K or N, or the two combined, is misuse, named as such before any work."""
    several_blocks = config.bottleneck_blocks != 1
    if config.tfhub_module and (config.fine_tune_blocks or several_blocks):
        option = "--fine_tune_blocks" if config.fine_tune_blocks else "--bottleneck_blocks"
        raise click.UsageError(
            f"{option} needs an --architecture from the registry, not a --tfhub_module."
        )
    if config.fine_tune_blocks and several_blocks:
        raise click.UsageError(NOT_WITH_FINE_TUNING)
    arch = None if config.tfhub_module else get_architecture(config.architecture)
    try:
        if config.fine_tune_blocks not in (0, "all"):
            cut_layer(arch, config.fine_tune_blocks)
        if arch is not None:
            resolve_bottleneck_blocks(arch, config.bottleneck_blocks)
    except PoetslearnError as e:
        raise click.UsageError(str(e)) from e


def _stop_then_interrupt(clock):
    """Ctrl-C in a --time_budget run: the first stops the clock (the best model so far is
    scored and exported), a second one interrupts as Ctrl-C always does."""

    def on_interrupt(signum, frame) -> None:
        if clock.stopped:
            raise KeyboardInterrupt
        clock.stop_now()
        echo_err(
            "Stopping (Ctrl-C): the best model so far is scored and exported; "
            "press Ctrl-C again to stop without it."
        )

    return on_interrupt


def _raise_keyboard_interrupt(signum, frame) -> None:
    # `kill` (SIGTERM) gets the same orderly stop as Ctrl-C: cache flushed, temporaries removed.
    raise KeyboardInterrupt


# The training stage's parts as the closing line names them, when the trainer had several.
TRAINING_PARTS = {
    "new_layer": "new layer",
    "activations": "activations",
    "fine_tuning": "fine-tuning",
}


def _done_line(t: dict[str, float]) -> str:
    parts = [(name, t[key]) for key, name in TRAINING_PARTS.items() if key in t]
    training = ", ".join(
        f"{name} {s:.1f} s" for name, s in parts or [("new layer", t["train_head"])]
    )
    return (
        f"Done in {t['total']:.1f} s (data {t['load_data']:.1f} s, network "
        f"{t['build_model']:.1f} s, bottlenecks {t['bottlenecks']:.1f} s, {training}, "
        f"export {t['export']:.1f} s); {describe_peak_memory()}."
    )


def _budget_line(plan: dict) -> str:
    from poetslearn.budget.duration import describe_duration as took

    chosen = plan["chosen"]
    return (
        f"--time_budget {took(plan['budget_seconds'])}: planned about "
        f"{took(chosen['estimated_seconds'])} for the run, took {took(plan['wall_seconds'])} "
        f"in all."
    )


def _retrain_report(result, peak_mb: float | None) -> dict:
    """What `retrain --json` prints: everything a script needs, nothing it must parse."""
    from poetslearn.export.stage import validation_key

    stats, score = result.extraction, result.score
    return {
        "outputs": {what: str(path) for what, path in result.outputs.items()},
        "architecture": result.extractor.arch.name,
        "bottleneck_blocks": result.extractor.bottleneck_blocks,
        "weights": result.weights.as_dict(),
        "dataset": {"name": result.dataset.name, "classes": result.dataset.class_names},
        validation_key(result.dataset): result.trained.best_validation_accuracy,
        "test_accuracy": score.accuracy,
        "test_size": score.size,
        **score.extra,
        "best_step": result.trained.best_step,
        # As the metadata records it: the epochs run (a --time_budget clock may end it early).
        **({"fine_tuning": result.trained.details} if result.trained.details else {}),
        "bottlenecks": {
            "total": stats.total,
            "cached": stats.cached,
            "computed": stats.computed,
            "failed": stats.failed,
            "engine": stats.engine,
            "computed_per_node": stats.by_node,
        },
        "misclassified": [
            {"image": n, "true": t, "predicted": p} for n, t, p in result.misclassified
        ],
        "timings_s": {k: round(v, 3) for k, v in result.timings.items()},
        **({"time_budget": result.plan} if result.plan else {}),
        "peak_memory_mb": None if peak_mb is None else round(peak_mb),
    }
