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
from poetslearn.errors import ImageError, PoetslearnError


@click.command()
@click.argument("images", nargs=-1, type=PathType)
@option("image", "-i", type=PathType, multiple=True, help="Image to classify (repeatable).")
@option(
    "graph",
    type=PathType,
    default=LABEL.graph,
    show_default=True,
    help="Frozen graph (.pb) or .tflite model from `poetslearn retrain`, or a codelab "
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
    help="How many labels to print per image.",
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
def label(images, image, json_output, verbose, **options) -> None:
    """Classify images with a graph exported by `retrain`.

    \b
    Examples:
      poetslearn label cat.png dog.jpg
      poetslearn label --image cat.png --top_k 3 --json
    """
    paths = list(image) + list(images)
    if not paths:
        raise click.UsageError("Give at least one image, as an argument or with --image.")
    start_command(verbose)
    from poetslearn.inference.label import load_classifier

    top_k = options.pop("top_k")
    config = LabelConfig(**options)
    with library_errors():
        classifier = load_classifier(config, warn=echo_err)

    results, failed = [], 0
    for path in paths:
        try:
            predictions = classifier.classify(path, top_k)
        except (ImageError, PoetslearnError) as e:
            failed += 1
            click.echo(f"Error: {e}", err=True)
            results.append({"image": str(path), "error": str(e)})
            continue
        results.append(
            {
                "image": str(path),
                "predictions": [{"label": p.label, "score": p.score} for p in predictions],
            }
        )
        if not json_output:
            if len(paths) > 1:
                click.echo(f"{path}:")
            for p in predictions:
                click.echo(f"{'  ' if len(paths) > 1 else ''}{p.label} (score={p.score:.5f})")
    if json_output:
        click.echo(
            json.dumps(
                {"graph": str(config.graph), "results": results}, indent=2, ensure_ascii=False
            )
        )
    if failed:
        sys.exit(1)
