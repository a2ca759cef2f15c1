"""`poetslearn retrain`: its options, the call into the library, and what it prints."""

from __future__ import annotations

import json
import signal
import sys
from dataclasses import fields
from pathlib import Path

import click

from poetslearn.backbone.architectures import architecture_names, get_architecture
from poetslearn.backbone.split import cut_layer
from poetslearn.backbone.block_features import NOT_WITH_FINE_TUNING, resolve_bottleneck_blocks
from poetslearn.cli.common import (RETRAIN, PathType, echo_err, library_errors, option,
                                   retrain_setting, start_command, verbose_option)
from poetslearn.config import RetrainConfig
from poetslearn.extract.engines import ENGINE_CHOICES
from poetslearn.errors import PoetslearnError
from poetslearn.memory import describe_peak_memory, peak_memory_mb


class BlockCount(click.ParamType):
    """--fine_tune_blocks, --bottleneck_blocks: a number of blocks, or 'all'."""

    name = "N|all"

    def convert(self, value, param, ctx):
        if isinstance(value, int) or value == "all":
            return value
        try:
            return int(value)
        except ValueError:
            self.fail(f"{value!r} is neither a number of blocks nor 'all'.", param, ctx)


@click.command()
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
@option("input_format", type=click.Choice(["pixels", "codelab"]), default=RETRAIN.input_format,
        show_default=True, help="What the exported graph and .tflite take: 'pixels' (0..255, any "
        "size; resized inside) or 'codelab' ([1, size, size, 3] scaled as (x - 128) / 128, the "
        "way the codelab's label_image.py and Android apps feed a graph).")
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
@option("fine_tune_blocks", type=BlockCount(), default=RETRAIN.fine_tune_blocks,
        show_default=True, metavar="K|all",
        help="Also train the top K blocks of the network (MobileNet: 1 to 13, Inception V3: 1 to "
        "10), on activations cached where the frozen part ends; 'all' trains the whole network "
        "on the images (no cache: for machines with a GPU); 0 trains the new layer alone.")
@option("bottleneck_blocks", type=BlockCount(), default=RETRAIN.bottleneck_blocks,
        show_default=True, metavar="N|all",
        help="Make each bottleneck from the average-pooled outputs of the top N blocks of the "
        "network side by side (MobileNet: 1 to 14, Inception V3: 1 to 11, 'all': every block), "
        "not only the last block's (1, the codelab's bottleneck). Costs no extra extraction "
        "time; 'all' gains 3 points on CIFAR-10 at mobilenet_0.50_224 (README \"Bottlenecks "
        "from several blocks\").")
@retrain_setting("fine_tune_epochs", help="Epochs of fine-tuning (the best on validation is "
                 "kept).")
@retrain_setting("fine_tune_learning_rate", help="Peak learning rate of fine-tuning (AdamW, "
                 "cosine schedule).")
@retrain_setting("fine_tune_batch_size", help="Images per fine-tuning step.")
@option("engine", type=click.Choice(list(ENGINE_CHOICES)), default=RETRAIN.engine,
        show_default=True, help="What runs the network for bottlenecks: TFLite/XNNPACK (2-3x "
        "faster than TensorFlow on MobileNet), ONNX Runtime (fastest on Inception V3), "
        "TensorFlow, or auto (the architecture's fastest engine that works and agrees with "
        "TensorFlow to 1e-4). tflite_int8 quantizes the network to 8 bits (calibrated on 100 "
        "training images) for faster extraction at a small accuracy cost (see README); its "
        "vectors are cached apart.")
@click.option("--ray", "ray_address", metavar="ADDRESS", default=None, envvar="POETSLEARN_RAY_ADDRESS",
        help="Compute the missing bottlenecks on a Ray cluster: HOST:PORT of its head, 'auto' "
        "(the cluster this machine belongs to) or 'local' (Ray on this machine alone). Needs "
        'pip install "poetslearn[ray]". See README "More than one machine". '
        "[env: POETSLEARN_RAY_ADDRESS]")
@option("ray_worker_cpus", type=click.IntRange(min=1), default=None,
        help="With --ray: CPUs (engine threads) per extraction actor. Default: as many as the "
        "smallest node has, at most 8.")
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
@verbose_option
def retrain(json_output: bool, **options) -> None:
    """Train a new classifier layer on top of a pretrained network and export it as a graph.

    \b
    Examples:
      poetslearn retrain --architecture mobilenet_0.50_224          # CIFAR-10
      poetslearn retrain --image_dir tf_files/flower_photos
    """
    start_command(options.pop("verbose"))
    from poetslearn.pipeline import retrain as run_retrain

    config = _retrain_config(options)
    echo = echo_err if json_output else click.echo
    previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        with library_errors("the previous graph and labels were left intact and the "
                            "bottlenecks computed so far are kept."):
            result = run_retrain(config, log=echo, warn=echo_err)
    except KeyboardInterrupt:
        echo_err("Interrupted; the bottlenecks computed so far are cached and the next run "
                 "resumes from there. Earlier outputs were left as they were.")
        sys.exit(130)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if config.print_misclassified_test_images:
        echo("=== MISCLASSIFIED TEST IMAGES ===")
        for name, true, predicted in result.misclassified:
            echo(f"{name}  (true: {true}, predicted: {predicted})")
    for what, path in result.outputs.items():
        echo(f"{what.capitalize()} written to {path}")
    if json_output:
        click.echo(json.dumps(_retrain_report(result, peak_memory_mb()), indent=2,
                              ensure_ascii=False))
    echo(_done_line(result.timings))


def _retrain_config(options: dict) -> RetrainConfig:
    """The command's options as a RetrainConfig (the library never reads flags)."""
    if options.pop("dataset") and options["image_dir"] is not None:
        raise click.UsageError("Give either --dataset cifar10 or --image_dir, not both.")
    options["show_progress"] = not options.pop("quiet")
    if options["summaries_dir"]:  # "" (off) and None (default) stay as they are
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
        raise click.UsageError(f"{option} needs an --architecture from the registry, not a "
                               f"--tfhub_module.")
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


def _raise_keyboard_interrupt(signum, frame) -> None:
    # `kill` (SIGTERM) gets the same orderly stop as Ctrl-C: cache flushed, temporaries removed.
    raise KeyboardInterrupt


def _done_line(t: dict[str, float]) -> str:
    return (f"Done in {t['total']:.1f} s (data {t['load_data']:.1f} s, network "
            f"{t['build_model']:.1f} s, bottlenecks {t['bottlenecks']:.1f} s, new layer "
            f"{t['train_head']:.1f} s, export {t['export']:.1f} s); {describe_peak_memory()}.")


def _retrain_report(result, peak_mb: float | None) -> dict:
    """What `retrain --json` prints: everything a script needs, nothing it must parse."""
    stats, score = result.extraction, result.score
    return {
        "outputs": {what: str(path) for what, path in result.outputs.items()},
        "architecture": result.extractor.arch.name,
        "bottleneck_blocks": result.extractor.bottleneck_blocks,
        "weights": result.weights.as_dict(),
        "dataset": {"name": result.dataset.name, "classes": result.dataset.class_names},
        "validation_accuracy": result.trained.best_validation_accuracy,
        "test_accuracy": score.accuracy,
        "test_size": score.size,
        **score.extra,
        "best_step": result.trained.best_step,
        "bottlenecks": {"total": stats.total, "cached": stats.cached,
                        "computed": stats.computed, "failed": stats.failed,
                        "engine": stats.engine, "computed_per_node": stats.by_node},
        "misclassified": [{"image": n, "true": t, "predicted": p}
                          for n, t, p in result.misclassified],
        "timings_s": {k: round(v, 3) for k, v in result.timings.items()},
        "peak_memory_mb": None if peak_mb is None else round(peak_mb),
    }
