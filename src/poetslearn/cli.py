"""The `poetslearn` command: a thin click layer over the library.

Options keep the codelab's spelling (`--image_dir`) and accept kebab-case (`--image-dir`).
Library errors (PoetslearnError) become `Error: ...` with exit code 1; misuse of options is
left to click (exit code 2). TensorFlow is imported only inside commands, so `--help` is instant.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import signal
import sys
from dataclasses import fields
from pathlib import Path

import click

from poetslearn import __version__
from poetslearn.architectures import architecture_names
from poetslearn.config import LabelConfig, RetrainConfig
from poetslearn.engines import ENGINES
from poetslearn.errors import ImageError, PoetslearnError

RETRAIN = RetrainConfig()
LABEL = LabelConfig()


def option(name: str, *args, **kwargs):
    """A click option reachable as --snake_case and --kebab-case, stored under `name`."""
    spellings = [f"--{name}"]
    if "_" in name:
        spellings.append(f"--{name.replace('_', '-')}")
    return click.option(*spellings, *args, name, **kwargs)


def retrain_setting(name: str, **kwargs):
    """An option whose type and default come from RetrainConfig: one source of defaults."""
    default = getattr(RETRAIN, name)
    return option(name, type=type(default), default=default, show_default=True, **kwargs)


def _raise_keyboard_interrupt(signum, frame) -> None:
    # `kill` (SIGTERM) gets the same orderly stop as Ctrl-C: cache flushed, temporaries removed.
    raise KeyboardInterrupt


def _describe_os_error(e: OSError) -> str:
    where = f" {e.filename}" if e.filename else ""
    if e.errno == errno.ENOSPC:
        return (f"The disk is full (writing{where}). Free some space and run the command again; "
                f"the previous graph and labels were left intact and the bottlenecks computed so "
                f"far are kept.")
    return (f"Could not read or write{where}: {e.strerror or e}. The previous graph and labels "
            f"were left intact.")


def _quiet_tensorflow() -> None:
    # TensorFlow's C++ start-up chatter (CUDA probes, CPU feature notes) is noise for our users.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="poetslearn")
def cli() -> None:
    """Transfer learning from the command line: retrain an ImageNet network's last layer on your
    images (or CIFAR-10) and label new images with the result."""


PathType = click.Path(path_type=Path)


@cli.command()
@option("architecture", type=click.Choice(architecture_names()), metavar="NAME",
        default=RETRAIN.architecture,
        show_default=True, help="Network to take features from: mobilenet_<1.0|0.75|0.50|0.25>_"
        "<224|192|160|128> or inception_v3 (test_tiny is a tiny network for tests).")
@option("weights", default=RETRAIN.weights, show_default=True,
        help="'imagenet' (the codelab's MobileNet graphs in --model_dir, Keras weights there or in "
        "the Keras cache, else downloaded), 'none' (random, for quick tests only), or a path: a "
        "MobileNet v1 frozen graph (.pb/.tgz, e.g. a codelab retrained_graph.pb) or a Keras "
        "weights file.")
@option("tfhub_module", default=None,
        help="Use a TF Hub image feature-vector module (a local SavedModel folder, or a URL when "
        "online) instead of --architecture.")
@option("image_size", type=click.IntRange(min=8), default=None,
        help="Input size for a --tfhub_module that does not fix one.")
@option("allow_size_mismatch", is_flag=True, help="Use MobileNet weights trained at another "
        "input size than --architecture's (with a warning).")
@option("dataset", type=click.Choice(["cifar10"]), default=None,
        help="Train on CIFAR-10 (the default when --image_dir is not given).")
@option("image_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
        help="Folder with one sub-folder of images per class; the sub-folder name is the label.")
@option("strict", is_flag=True, help="Stop with an error, before any work, if a file in "
        "--image_dir is not a readable image (default: skip it with a warning).")
@option("data_dir", type=PathType, default=RETRAIN.data_dir, show_default=True,
        envvar="POETSLEARN_DATA_DIR", help="Where cifar-10-python.tar.gz (or its extracted "
        "cifar-10-batches-py/) is, or is downloaded to. [env: POETSLEARN_DATA_DIR]")
@option("model_dir", type=PathType, default=RETRAIN.model_dir, show_default=True,
        envvar="POETSLEARN_MODEL_DIR", help="Folder searched first for pretrained weights. "
        "[env: POETSLEARN_MODEL_DIR]")
@option("bottleneck_dir", type=PathType, default=RETRAIN.bottleneck_dir, show_default=True,
        help="Cache of computed bottleneck vectors.")
@option("summaries_dir", type=str, default=None,
        help="TensorBoard summaries of training, one sub-folder per run. Default: "
        "tf_files/training_summaries/<architecture>; '' turns them off.")
@option("output_graph", type=PathType, default=RETRAIN.output_graph, show_default=True,
        help="Frozen graph to write (its metadata goes beside it as .json).")
@option("output_labels", type=PathType, default=RETRAIN.output_labels, show_default=True,
        help="Labels file to write, one class per line in output order.")
@option("saved_model_dir", type=PathType, default=None,
        help="Also export a SavedModel there (signatures: serving_default takes pixels, "
        "classify_bytes takes encoded images).")
@option("tflite_output", type=PathType, default=None,
        help="Also export a .tflite model there (labels and input size in a .json beside it).")
@option("tflite_quantize", type=click.Choice(["int8"]), default=None,
        help="Make the .tflite model full-integer, calibrated on training images.")
@retrain_setting("how_many_training_steps", help="Training steps for the new layer.")
@retrain_setting("learning_rate", help="Adam learning rate for the new layer.")
@retrain_setting("train_batch_size", help="Bottlenecks per training step.")
@retrain_setting("weight_decay", help="L2 regularisation of the new layer's weights.")
@retrain_setting("eval_step_interval",
                 help="Evaluate on the validation split every this many steps.")
@retrain_setting("validation_batch_size",
                 help="Validation images per evaluation; -1 for all of them.")
@retrain_setting("test_batch_size", help="Test images for the final accuracy; -1 for all of them.")
@retrain_setting("validation_percentage",
                 help="Percentage of images used for validation (for CIFAR-10: the last part "
                 "of the training set).")
@retrain_setting("testing_percentage",
                 help="Percentage of images used for testing (image folders; CIFAR-10 has its "
                 "own test set).")
@retrain_setting("bottleneck_batch_size", help="Images per batch when computing bottlenecks.")
@option("flip_left_right", is_flag=True,
        help="Distortion: randomly mirror training images horizontally.")
@retrain_setting("random_crop",
                 help="Distortion: percentage of margin to randomly crop off training images.")
@retrain_setting("random_scale",
                 help="Distortion: percentage by which to randomly enlarge training images.")
@retrain_setting("random_brightness",
                 help="Distortion: percentage by which to randomly brighten or darken training "
                 "images.")
@retrain_setting("distorted_copies",
                 help="With any distortion: fixed distorted copies made of each training "
                 "image, cached like the other bottlenecks.")
@option("engine", type=click.Choice(list(ENGINES)), default=RETRAIN.engine,
        show_default=True, help="What runs the network for bottlenecks: TFLite/XNNPACK (2-3x "
        "faster than TensorFlow on MobileNet), ONNX Runtime (fastest on Inception V3), "
        "TensorFlow, or auto (the architecture's fastest engine that works and agrees with "
        "TensorFlow to 1e-4). tflite_int8 quantizes the network to 8 bits (calibrated on 100 "
        "training images) for faster extraction at a small accuracy cost (see README); its "
        "vectors are cached apart.")
@retrain_setting("seed", help="Random seed: same seed, same data, same result.")
@option("print_misclassified_test_images", is_flag=True,
        help="List the test images the new layer got wrong.")
@option("assert_accuracy_at_least", type=float, default=None,
        help="Fail (exit 1, 'ACCURACY FAILED', nothing exported) if the test accuracy is below "
        "this fraction, e.g. 0.8.")
@option("quiet", is_flag=True, help="No progress bars.")
@click.option("--json", "json_output", is_flag=True,
              help="Print one JSON document on stdout (paths, accuracy, timings); the usual "
              "text goes to stderr.")
def retrain(json_output: bool, **options) -> None:
    """Train a new classifier layer on top of a pretrained network and export it as a graph.

    \b
    Examples:
      poetslearn retrain --architecture mobilenet_0.50_224          # CIFAR-10
      poetslearn retrain --image_dir tf_files/flower_photos
    """
    _quiet_tensorflow()
    from poetslearn.retrain import retrain as run_retrain

    dataset = options.pop("dataset")
    if dataset and options["image_dir"] is not None:
        raise click.UsageError("Give either --dataset cifar10 or --image_dir, not both.")
    options["show_progress"] = not options.pop("quiet")
    if options["summaries_dir"]:  # "" (off) and None (default) stay as they are
        options["summaries_dir"] = Path(options["summaries_dir"])
    known = {f.name for f in fields(RetrainConfig)}
    config = RetrainConfig(**{k: v for k, v in options.items() if k in known})
    previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    echo = (lambda m: click.echo(m, err=True)) if json_output else click.echo
    try:
        result = run_retrain(config, log=echo, warn=lambda m: click.echo(m, err=True))
    except PoetslearnError as e:
        raise click.ClickException(str(e)) from e
    except OSError as e:  # disk full, permissions, a file vanishing: outputs are never half-written
        raise click.ClickException(_describe_os_error(e)) from e
    except KeyboardInterrupt:
        click.echo("Interrupted; the bottlenecks computed so far are cached and the next run "
                   "resumes from there. Earlier outputs were left as they were.", err=True)
        sys.exit(130)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if config.print_misclassified_test_images:
        echo("=== MISCLASSIFIED TEST IMAGES ===")
        for name, true, predicted in result.misclassified:
            echo(f"{name}  (true: {true}, predicted: {predicted})")
    for what, path in result.outputs.items():
        echo(f"{what.capitalize()} written to {path}")
    t = result.timings
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    if json_output:
        click.echo(json.dumps(_retrain_report(result, peak_mb), indent=2, ensure_ascii=False))
    echo(f"Done in {t['total']:.1f} s (data {t['load_data']:.1f} s, network "
               f"{t['build_model']:.1f} s, bottlenecks {t['bottlenecks']:.1f} s, new layer "
               f"{t['train_head']:.1f} s, export {t['export']:.1f} s); peak memory "
               f"{peak_mb:,.0f} MB.")


def _retrain_report(result, peak_mb: float) -> dict:
    """What `retrain --json` prints: everything a script needs, nothing it must parse."""
    return {
        "outputs": {what: str(path) for what, path in result.outputs.items()},
        "architecture": result.extractor.arch.name,
        "weights": result.weights.as_dict(),
        "dataset": {"name": result.dataset.name, "classes": result.dataset.class_names},
        "validation_accuracy": result.validation_accuracy,
        "test_accuracy": result.test_accuracy,
        "test_size": result.test_size,
        **result.extra_metrics,
        "best_step": result.best_step,
        "bottlenecks": {"total": result.extraction.total, "cached": result.extraction.cached,
                        "computed": result.extraction.computed,
                        "failed": result.extraction.failed,
                        "engine": result.extractor.engine_name},
        "misclassified": [{"image": n, "true": t, "predicted": p}
                          for n, t, p in result.misclassified],
        "timings_s": {k: round(v, 3) for k, v in result.timings.items()},
        "peak_memory_mb": round(peak_mb),
    }


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
def label(images, image, json_output, **options) -> None:
    """Classify images with a graph exported by `retrain`.

    \b
    Examples:
      poetslearn label cat.png dog.jpg
      poetslearn label --image cat.png --top_k 3 --json
    """
    paths = list(image) + list(images)
    if not paths:
        raise click.UsageError("Give at least one image, as an argument or with --image.")
    _quiet_tensorflow()
    from poetslearn.label import load_classifier

    top_k = options.pop("top_k")
    config = LabelConfig(**options)
    try:
        classifier = load_classifier(config, warn=lambda m: click.echo(m, err=True))
    except PoetslearnError as e:
        raise click.ClickException(str(e)) from e

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
def evaluate(graph, labels, dataset, image_dir, data_dir, split, plot, json_output, batch_size,
             quiet) -> None:
    """Measure an exported classifier on labelled images: accuracy, per-class precision and
    recall, confusion matrix.

    \b
    Examples:
      poetslearn evaluate --dataset cifar10 --data_dir ../shared/data
      poetslearn evaluate --image_dir tf_files/flower_photos --plot confusion.png
    """
    if dataset and image_dir is not None:
        raise click.UsageError("Give either --dataset cifar10 or --image_dir, not both.")
    _quiet_tensorflow()
    from poetslearn.evaluate import evaluate_split, load_split_to_evaluate, plot_evaluation
    from poetslearn.label import load_classifier

    echo = (lambda m: click.echo(m, err=True)) if json_output else click.echo
    warn = lambda m: click.echo(m, err=True)  # noqa: E731
    try:
        classifier = load_classifier(LabelConfig(graph=graph, labels=labels), warn)
        recorded = (getattr(classifier, "metadata", None) or {}).get("dataset", {})
        data, chosen = load_split_to_evaluate(image_dir, data_dir, split, recorded, not quiet,
                                              warn)
        result = evaluate_split(classifier, chosen, data.class_names, batch_size, not quiet, warn)
        plotted = None
        if plot is not None:
            plotted = plot_evaluation(result, chosen, plot,
                                      f"{Path(graph).name} on {data.name} ({split})")
    except PoetslearnError as e:
        raise click.ClickException(str(e)) from e
    except OSError as e:
        raise click.ClickException(_describe_os_error(e)) from e

    echo(f"{data.name}, {split} split: accuracy = {result.accuracy:.1%} "
         f"(N={len(result.truth)})")
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
        report = {"graph": str(graph), "dataset": data.name, "split": split, **result.as_dict()}
        if plotted is not None:
            report["plot"] = str(plotted)
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    if result.failed:
        sys.exit(1)


def main() -> None:
    cli()
