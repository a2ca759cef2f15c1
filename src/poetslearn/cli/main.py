"""The `poetslearn` command: a thin click layer over the library.

Options keep the codelab's spelling (`--image_dir`) and accept kebab-case (`--image-dir`).
Library errors (PoetslearnError) become `Error: ...` with exit code 1; misuse of options is
left to click (exit code 2). TensorFlow is imported only inside commands, so `--help` is instant.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from poetslearn import __version__
from poetslearn.cli.common import (LABEL, RETRAIN, PathType, echo_err, library_errors, option,
                                   start_command, verbose_option)
from poetslearn.cli.retrain import retrain
from poetslearn.config import LabelConfig
from poetslearn.errors import ImageError, PoetslearnError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="poetslearn")
def cli() -> None:
    """Transfer learning from the command line: retrain an ImageNet network's last layer on your
    images (or CIFAR-10) and label new images with the result."""


cli.add_command(retrain)


@cli.command()
@click.argument("images", nargs=-1, type=PathType)
@option("image", "-i", type=PathType, multiple=True, help="Image to classify (repeatable).")
@option("graph", type=PathType, default=LABEL.graph, show_default=True,
        help="Frozen graph (.pb) or .tflite model from `poetslearn retrain`, or a codelab "
        "retrained_graph.pb.")
@option("labels", type=PathType, default=None,
        help="Labels file. Default: the labels recorded with the graph; for a graph without "
        "metadata, tf_files/retrained_labels.txt.")
@option("top_k", type=click.IntRange(min=1), default=LABEL.top_k, show_default=True,
        help="How many labels to print per image.")
@click.option("--json", "json_output", is_flag=True,
              help="Print one JSON document instead of text.")
@option("input_layer", default=LABEL.input_layer, show_default=True,
        help="Codelab graphs only: name of the input tensor.")
@option("output_layer", default=LABEL.output_layer, show_default=True,
        help="Codelab graphs only: name of the output tensor.")
@option("input_height", type=click.IntRange(min=1), default=None,
        help="Codelab graphs only: input height (default: from the graph, else 224).")
@option("input_width", type=click.IntRange(min=1), default=None,
        help="Codelab graphs only: input width (default: from the graph, else 224).")
@option("input_mean", type=float, default=LABEL.input_mean, show_default=True,
        help="Codelab graphs only: subtracted from pixel values.")
@option("input_std", type=float, default=LABEL.input_std, show_default=True,
        help="Codelab graphs only: pixel values are divided by this.")
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
        results.append({"image": str(path), "predictions": [
            {"label": p.label, "score": p.score} for p in predictions]})
        if not json_output:
            if len(paths) > 1:
                click.echo(f"{path}:")
            for p in predictions:
                click.echo(f"{'  ' if len(paths) > 1 else ''}{p.label} (score={p.score:.5f})")
    if json_output:
        click.echo(json.dumps({"graph": str(config.graph), "results": results}, indent=2,
                              ensure_ascii=False))
    if failed:
        sys.exit(1)


@cli.command()
@option("graph", type=PathType, default=LABEL.graph, show_default=True,
        help="Frozen graph (.pb) or .tflite model from `poetslearn retrain`.")
@option("labels", type=PathType, default=None,
        help="Labels file. Default: the labels recorded with the graph.")
@option("dataset", type=click.Choice(["cifar10"]), default=None,
        help="Evaluate on CIFAR-10 (the default when --image_dir is not given).")
@option("image_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
        help="Folder with one sub-folder of images per class.")
@option("data_dir", type=PathType, default=RETRAIN.data_dir, show_default=True,
        envvar="POETSLEARN_DATA_DIR", help="Where CIFAR-10 is. [env: POETSLEARN_DATA_DIR]")
@option("split", type=click.Choice(["test", "validation", "train", "all"]), default="test",
        show_default=True, help="Which images: the split retrain used for testing (same rule, "
        "same percentages as recorded with the graph), another split, or all of them.")
@option("plot", type=PathType, default=None,
        help="Draw the confusion matrix and the most confidently misclassified images to "
        "this PNG file.")
@click.option("--json", "json_output", is_flag=True,
              help="Print one JSON document on stdout; the usual text goes to stderr.")
@option("batch_size", type=click.IntRange(min=1), default=64, show_default=True,
        help="Images per graph run.")
@option("quiet", is_flag=True, help="No progress output.")
@verbose_option
def evaluate(graph, labels, dataset, image_dir, data_dir, split, plot, json_output, batch_size,
             quiet, verbose) -> None:
    """Measure an exported classifier on labelled images: accuracy, per-class precision and
    recall, confusion matrix.

    \b
    Examples:
      poetslearn evaluate --dataset cifar10 --data_dir ../shared/data
      poetslearn evaluate --image_dir tf_files/flower_photos --plot confusion.png
    """
    if dataset and image_dir is not None:
        raise click.UsageError("Give either --dataset cifar10 or --image_dir, not both.")
    start_command(verbose)
    from poetslearn.data.datasets import load_split_to_evaluate
    from poetslearn.inference.evaluate import (describe_exact_rows, evaluate_split, exact_rows_figures,
                                     plot_evaluation)
    from poetslearn.inference.label import load_classifier

    echo = echo_err if json_output else click.echo
    with library_errors():
        classifier = load_classifier(LabelConfig(graph=graph, labels=labels), echo_err)
        recorded = (getattr(classifier, "metadata", None) or {}).get("dataset", {})
        data, chosen = load_split_to_evaluate(image_dir, data_dir, split, recorded, not quiet,
                                              echo_err)
        result = evaluate_split(classifier, chosen, data.class_names, batch_size, not quiet,
                                echo_err)
        plotted = None
        if plot is not None:
            plotted = plot_evaluation(result, chosen, plot,
                                      f"{Path(graph).name} on {data.name} ({split})")

    echo(f"{data.name}, {split} split: accuracy = {result.accuracy:.1%} "
         f"(N={len(result.truth)})")
    whole_test = split == "test" and len(result.truth) == len(data.splits["test"])
    exact = exact_rows_figures(result, data.exact_test_rows, whole_test)
    for line in describe_exact_rows(exact, data.exact_test_rows, len(result.truth)):
        echo(line)
    width = max(len(lbl) for lbl in result.labels)
    echo(f"{'label':{width}s}  precision  recall  support")
    for row in result.per_class():
        echo(f"{row['label']:{width}s}  {row['precision']:9.1%}  {row['recall']:6.1%}  "
             f"{row['support']:7d}")
    echo("Confusion matrix (rows: true, columns: predicted):")
    for label, row in zip(result.labels, result.confusion):
        echo(f"{label:{width}s}  " + " ".join(f"{v:5d}" for v in row))
    if plotted is not None:
        echo(f"Plot written to {plotted}")
    if json_output:
        report = {"graph": str(graph), "dataset": data.name, "split": split, **result.as_dict(),
                  **exact}
        if plotted is not None:
            report["plot"] = str(plotted)
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    if result.failed:
        sys.exit(1)


def main() -> None:
    cli()
