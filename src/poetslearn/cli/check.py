"""`poetslearn check`: what is wrong with a data set, as a summary, JSON, a CSV of findings, an
HTML page of pictures, and a cleaned CSV data set. It takes retrain's data and network options
(the same objects, so the two commands cannot drift apart) and fills the same bottleneck
cache."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from poetslearn.check.near_copies import DEFAULT_SIMILARITY
from poetslearn.check.neighbours import SEARCH_CHOICES
from poetslearn.cli.common import (
    PathType,
    echo_err,
    library_errors,
    option,
    start_command,
    verbose_option,
    with_options,
)
from poetslearn.cli.data_options import data_source_options
from poetslearn.cli.retrain import retrain as retrain_command
from poetslearn.cli.retrain import retrain_config
from poetslearn.config import RetrainConfig

# Retrain's options that say which images, which network and which cache: check takes them.
SHARED_OPTIONS = (
    "architecture",
    "weights",
    "tfhub_module",
    "image_size",
    "allow_size_mismatch",
    "multi_label",
    "strict",
    "model_dir",
    "bottleneck_dir",
    "validation_percentage",
    "testing_percentage",
    "bottleneck_batch_size",
    "bottleneck_blocks",
    "engine",
    "ray_address",
    "ray_worker_cpus",
    "learning_rate",
    "train_batch_size",
    "weight_decay",
    "seed",
    "quiet",
)


@click.command()
@with_options(data_source_options("Check"))
@option(
    "report",
    type=PathType,
    default=None,
    metavar="DIR",
    help="Write an HTML page (DIR/index.html) showing every finding as pictures beside its "
    "copies, nearest images or suggested class, worst first, with findings.csv beside it.",
)
@option(
    "findings_csv",
    type=PathType,
    default=None,
    metavar="FILE",
    help="Write every finding as CSV: kind, score, path, split, label, suggested label, "
    "group, detail.",
)
@option(
    "write_csv",
    type=PathType,
    default=None,
    metavar="FILE",
    help="Write the data set as a --data_csv file without the validation and test images "
    "that have an exact copy in an earlier split, and without what --drop names. Your "
    "images and input files are never changed.",
)
@option(
    "drop",
    multiple=True,
    metavar="KIND[:MIN_SCORE]",
    help="With --write_csv: also leave out the images of findings of KIND scoring at least "
    "MIN_SCORE (default 0), e.g. --drop label_error:0.9 --drop outlier. Of a group of copies "
    "one image stays (training's first). Repeatable.",
)
@option(
    "fail_on",
    multiple=True,
    metavar="KIND",
    help="Exit with code 1 (after writing every output) if any finding of KIND exists, e.g. "
    "--fail_on copy_across_splits in CI. Repeatable.",
)
@option(
    "folds",
    type=click.IntRange(min=2),
    default=5,
    show_default=True,
    help="Folds of the out-of-fold new layer that finds label errors.",
)
@option(
    "near_copy_similarity",
    type=click.FloatRange(0, 1, min_open=True),
    default=None,
    help="Cosine similarity of two bottlenecks from which their images are compared as "
    "near-copies (their thumbnails must then look alike too). Default: 0.75 (BENCHMARKS.md).",
)
@option(
    "neighbour_search",
    type=click.Choice(SEARCH_CHOICES),
    default="auto",
    show_default=True,
    help="How nearest neighbours are found: exactly (faiss, or TensorFlow where faiss is not "
    "installed), or approximately (faiss_hnsw); auto is exact up to about 60,000 images of "
    "1,024 features and approximate beyond.",
)
@click.option(
    "--json",
    "json_output",
    is_flag=True,
    help="Print one JSON document on stdout; the usual text goes to stderr.",
)
@verbose_option
def check(json_output: bool, **options) -> None:
    """Find what is wrong with a data set: exact and near copies across splits and classes,
    likely label errors, outliers, small classes and unreadable files.

    \b
    Examples:
      poetslearn check --image_dir flower_photos --report check_report
      poetslearn check --image_dir flower_photos --write_csv clean.csv --drop label_error:0.9
      poetslearn retrain --data_csv clean.csv
    """
    start_command(options.pop("verbose"))
    from poetslearn.check import check_data
    from poetslearn.check.outputs import DropRule, plan_outputs

    echo = echo_err if json_output else click.echo
    own = {
        name: options.pop(name)
        for name in (
            "report",
            "findings_csv",
            "write_csv",
            "drop",
            "fail_on",
            "folds",
            "near_copy_similarity",
            "neighbour_search",
        )
    }
    config, settings = retrain_config(options), _settings(own)
    try:
        with library_errors("your images and data files were left as they were."):
            rules = [DropRule.parse(text) for text in own["drop"]]
            plan_outputs(
                own["findings_csv"],
                own["write_csv"],
                own["report"],
                [config.data_csv],
                files=config.image_dir is not None or config.data_csv is not None,
            )
            result = check_data(config, settings, log=echo, warn=echo_err)
            outputs = _write_outputs(result, own, rules, config, echo)
    except KeyboardInterrupt:
        echo_err("Interrupted; the bottlenecks computed so far are cached for the next run.")
        sys.exit(130)
    _print_results(result, outputs, json_output, echo)
    failing = [f for f in result.findings if f.kind in own["fail_on"]]
    if failing:
        echo_err(
            f"check failed: {len(failing):,} finding(s) of "
            f"{', '.join(sorted({f.kind for f in failing}))} (--fail_on)."
        )
        sys.exit(1)


def _in_retrains_order(params: list) -> list:
    """Retrain's options first, in retrain's order (the data source after the network's
    options, as in `retrain --help`), then check's own."""
    shared = [p for p in retrain_command.params if p.name in SHARED_OPTIONS]
    data = [p for p in params if p.name in ("dataset", "image_dir", "data_csv", "data_dir")]
    after = next(i for i, p in enumerate(shared) if p.name == "allow_size_mismatch") + 1
    own = [p for p in params if p not in data]
    return shared[:after] + data + shared[after:] + own


check.params[:] = _in_retrains_order(check.params)


def _settings(own: dict):
    from poetslearn.check import CheckSettings
    from poetslearn.check.findings import KINDS

    unknown = [k for k in own["fail_on"] if k not in KINDS]
    if unknown:
        raise click.UsageError(f"--fail_on {unknown[0]}: expected one of {', '.join(KINDS)}.")
    return CheckSettings(
        folds=own["folds"],
        near_copy_similarity=own["near_copy_similarity"] or DEFAULT_SIMILARITY,
        neighbour_search=own["neighbour_search"],
    )


def _write_outputs(result, own: dict, rules, config: RetrainConfig, echo) -> dict[str, str]:
    from poetslearn.check.outputs import cleaned_csv, findings_csv
    from poetslearn.check.report import write_report
    from poetslearn.outputs import write_atomic

    outputs = {}
    if own["findings_csv"]:
        write_atomic(Path(own["findings_csv"]), findings_csv(result))
        outputs["findings_csv"] = str(own["findings_csv"])
    if own["write_csv"]:
        dropped = cleaned_csv(result, own["write_csv"], rules, [config.data_csv])
        echo(f"Left out {dropped:,} image(s) of {len(result.table):,} in {own['write_csv']}.")
        outputs["write_csv"] = str(own["write_csv"])
    if own["report"]:
        outputs["report"] = str(write_report(result, own["report"]))
    return outputs


def _print_results(result, outputs: dict, json_output: bool, echo) -> None:
    from poetslearn.check.outputs import json_report, summary_lines

    for line in summary_lines(result):
        echo(line)
    titles = {"findings_csv": "Findings", "write_csv": "Cleaned data set", "report": "Report"}
    for what, path in outputs.items():
        echo(f"{titles[what]} written to {path}")
    if json_output:
        click.echo(json.dumps(json_report(result, outputs), indent=2, ensure_ascii=False))
