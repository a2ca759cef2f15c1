"""`poetslearn evaluate`: an exported model measured on labelled images, as text or JSON, with
an optional plot."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from poetslearn.cli.common import (
    LABEL,
    PathType,
    echo_err,
    library_errors,
    option,
    start_command,
    verbose_option,
    with_options,
)
from poetslearn.cli.data_options import check_one_data_source, data_source_options
from poetslearn.config import LabelConfig


@click.command()
@option(
    "graph",
    type=PathType,
    default=LABEL.graph,
    show_default=True,
    help="Frozen graph (.pb), .tflite or .onnx model from `poetslearn retrain`.",
)
@option(
    "labels",
    type=PathType,
    default=None,
    help="Labels file. Default: the labels recorded with the graph.",
)
@with_options(data_source_options("Evaluate"))
@option(
    "split",
    type=click.Choice(["test", "validation", "train", "all"]),
    default="test",
    show_default=True,
    help="Which images: the split retrain used for testing (same rule, "
    "same percentages as recorded with the graph), another split, or all of them.",
)
@option(
    "plot",
    type=PathType,
    default=None,
    help="Draw the confusion matrix and the most confidently misclassified images to "
    "this PNG file.",
)
@click.option(
    "--json",
    "json_output",
    is_flag=True,
    help="Print one JSON document on stdout; the usual text goes to stderr.",
)
@option(
    "batch_size",
    type=click.IntRange(min=1),
    default=LABEL.batch_size,
    show_default=True,
    help="Images per graph run.",
)
@option("quiet", is_flag=True, help="No progress output.")
@verbose_option
def evaluate(
    graph,
    labels,
    dataset,
    image_dir,
    data_csv,
    data_dir,
    split,
    plot,
    json_output,
    batch_size,
    quiet,
    verbose,
) -> None:
    """Measure an exported classifier on labelled images: accuracy, per-class precision and
    recall, confusion matrix.

    \b
    Examples:
      poetslearn evaluate --dataset cifar10 --data_dir ../shared/data
      poetslearn evaluate --image_dir tf_files/flower_photos --plot confusion.png
      poetslearn evaluate --data_csv photos.csv --split test
    """
    check_one_data_source(dataset, image_dir, data_csv)
    start_command(verbose)
    from poetslearn.data.datasets import load_split_to_evaluate
    from poetslearn.inference.evaluate import evaluate_split
    from poetslearn.inference.label import load_classifier
    from poetslearn.inference.plot import plot_evaluation
    from poetslearn.inference.plot_multi_label import plot_label_figures

    echo = echo_err if json_output else click.echo
    with library_errors():
        classifier = load_classifier(LabelConfig(graph=graph, labels=labels))
        recorded = (classifier.metadata or {}).get("dataset", {})
        data, chosen = load_split_to_evaluate(
            image_dir, data_dir, split, recorded, not quiet, echo_err, data_csv
        )
        result = evaluate_split(
            classifier, chosen, data.class_names, batch_size, not quiet, echo_err
        )
        plotted = None
        if plot is not None:
            draw = plot_label_figures if data.multi_label else plot_evaluation
            plotted = draw(result, chosen, plot, f"{Path(graph).name} on {data.name} ({split})")

    print_report = _print_multi_label_report if data.multi_label else _print_report
    exact = print_report(echo, result, data, split, plotted)
    if json_output:
        report = {"graph": str(graph), "dataset": data.name, "split": split}
        report.update({**result.as_dict(), **exact})
        report.update({"plot": str(plotted)} if plotted is not None else {})
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    if result.failed:
        sys.exit(1)


def _print_report(echo, result, data, split: str, plotted: Path | None) -> dict[str, float]:
    """The evaluation as text: accuracy, the bit-exact rows' figure, per-class precision and
    recall, the confusion matrix. Returns the bit-exact rows' figures for the JSON report."""
    from poetslearn.inference.evaluate import describe_exact_rows, exact_rows_figures

    echo(f"{data.name}, {split} split: accuracy = {result.accuracy:.1%} (N={len(result.truth)})")
    whole_test = split == "test" and len(result.truth) == len(data.splits["test"])
    exact = exact_rows_figures(result, data.exact_test_rows, whole_test)
    for line in describe_exact_rows(exact, data.exact_test_rows, len(result.truth)):
        echo(line)
    width = max(len(lbl) for lbl in result.labels)
    echo(f"{'label':{width}s}  precision  recall  support")
    for row in result.per_class():
        echo(
            f"{row['label']:{width}s}  {row['precision']:9.1%}  {row['recall']:6.1%}  "
            f"{row['support']:7d}"
        )
    echo("Confusion matrix (rows: true, columns: predicted):")
    for label, row in zip(result.labels, result.confusion):
        echo(f"{label:{width}s}  " + " ".join(f"{v:5d}" for v in row))
    if plotted is not None:
        echo(f"Plot written to {plotted}")
    return exact


def _print_multi_label_report(echo, result, data, split: str, plotted: Path | None) -> dict:
    """A multi-label evaluation as text: mAP, micro and macro F1, then per label its threshold,
    precision, recall, F1, average precision and support."""
    for line in result.describe():
        echo(f"{data.name}, {split} split: {line}")
    width = max(5, *(len(lbl) for lbl in result.labels))
    echo(f"{'label':{width}s}  threshold  precision  recall      F1      AP  support")
    shown = lambda v, w: f"{'-':>{w}s}" if v is None else f"{v:{w}.3f}"  # noqa: E731
    for row in result.per_class():
        echo(
            f"{row['label']:{width}s}  {row['threshold']:9.3f}  {shown(row['precision'], 9)}  "
            f"{shown(row['recall'], 6)}  {shown(row['f1'], 6)}  "
            f"{shown(row['average_precision'], 6)}  {row['support']:7d}"
        )
    if plotted is not None:
        echo(f"Plot written to {plotted}")
    return {}
