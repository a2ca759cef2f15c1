"""`poetslearn label`: classify images with an exported model, as text or one JSON document."""

from __future__ import annotations

import json
import sys

import click

from poetslearn.cli.common import (
    LABEL,
    PathType,
    echo_err,
    library_errors,
    option,
    start_command,
    verbose_option,
)
from poetslearn.config import LabelConfig


@click.command()
@click.argument("images", nargs=-1, type=PathType)
@option("image", "-i", type=PathType, multiple=True, help="Image to classify (repeatable).")
@option(
    "image_list",
    type=str,
    default=None,
    help="A file naming one image per line (relative paths: relative to the file's folder); "
    "'-' reads the names from standard input. Arguments that are folders are searched for "
    "images recursively.",
)
@option(
    "graph",
    type=PathType,
    default=LABEL.graph,
    show_default=True,
    help="Frozen graph (.pb), .tflite or .onnx model from `poetslearn retrain`, or a codelab "
    "retrained_graph.pb.",
)
@option(
    "labels",
    type=PathType,
    default=None,
    help="Labels file. Default: the labels recorded with the graph; for a graph without "
    "metadata, tf_files/retrained_labels.txt.",
)
@option(
    "top_k",
    type=click.IntRange(min=1),
    default=LABEL.top_k,
    show_default=True,
    help="How many labels to print per image (a --multi_label model prints every label at or "
    "above its threshold, and gives its top k scores in --json).",
)
@click.option(
    "--json", "json_output", is_flag=True, help="Print one JSON document instead of text."
)
@option(
    "input_layer",
    default=LABEL.input_layer,
    show_default=True,
    help="Codelab graphs only: name of the input tensor.",
)
@option(
    "output_layer",
    default=LABEL.output_layer,
    show_default=True,
    help="Codelab graphs only: name of the output tensor.",
)
@option(
    "input_height",
    type=click.IntRange(min=1),
    default=None,
    help="Codelab graphs only: input height (default: from the graph, else 224).",
)
@option(
    "input_width",
    type=click.IntRange(min=1),
    default=None,
    help="Codelab graphs only: input width (default: from the graph, else 224).",
)
@option(
    "input_mean",
    type=float,
    default=LABEL.input_mean,
    show_default=True,
    help="Codelab graphs only: subtracted from pixel values.",
)
@option(
    "input_std",
    type=float,
    default=LABEL.input_std,
    show_default=True,
    help="Codelab graphs only: pixel values are divided by this.",
)
@verbose_option
def label(images, image, image_list, json_output, verbose, **options) -> None:
    """Classify images with a graph exported by `retrain`.

    \b
    Examples:
      poetslearn label cat.png dog.jpg
      poetslearn label --image cat.png --top_k 3 --json
      poetslearn label holiday_photos/ --json
      find . -name '*.jpg' | poetslearn label --image_list -
    """
    from poetslearn.inference.batch import expand_paths, read_image_list

    named = list(image) + list(images)
    with library_errors():
        paths = expand_paths(named) + (read_image_list(image_list) if image_list else [])
    if not paths:
        raise click.UsageError(
            "Give at least one image: as an argument, with --image, with --image_list, or a "
            "folder that holds images (.jpg, .png, ...)."
        )
    start_command(verbose)
    from poetslearn.inference.batch import label_all
    from poetslearn.inference.label import load_classifier

    top_k = options.pop("top_k")
    config = LabelConfig(**options)
    results, failed = [], 0
    with library_errors():
        classifier = load_classifier(config)
        for done in label_all(classifier, paths, top_k):
            if done.error is not None:
                failed += 1
                click.echo(f"Error: {done.error}", err=True)
                results.append({"image": str(done.path), "error": done.error})
                continue
            results.append(_result(done))
            if not json_output:
                _print_predictions(done, several=len(paths) > 1)
    if json_output:
        report = {"graph": str(config.graph), "results": results}
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    if failed:
        sys.exit(1)


def _result(done) -> dict:
    """One image's JSON: its predictions (multi-label: the labels it has, and its top k
    scores)."""
    as_list = lambda predictions: [{"label": p.label, "score": p.score} for p in predictions]  # noqa: E731
    result = {"image": str(done.path), "predictions": as_list(done.predictions)}
    if done.scores is not None:
        result["scores"] = as_list(done.scores)
    return result


def _print_predictions(done, several: bool) -> None:
    """The codelab's form, best first; with several images, each block headed by its file. A
    multi-label image with no label at or above its threshold prints none (and says so on
    standard error)."""
    if several:
        click.echo(f"{done.path}:")
    for p in done.predictions:
        click.echo(f"{'  ' if several else ''}{p.label} (score={p.score:.5f})")
    if done.scores is not None and not done.predictions:
        best = done.scores[0]
        echo_err(
            f"{done.path}: no label at or above its threshold (highest: {best.label}, "
            f"score={best.score:.5f})."
        )
