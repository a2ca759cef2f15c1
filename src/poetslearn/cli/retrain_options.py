"""Every option of `poetslearn retrain`, in `--help` order: their spelling, types, defaults
(from RetrainConfig, the one source of defaults) and help texts."""

from __future__ import annotations

import click

from poetslearn.backbone.architectures import architecture_names
from poetslearn.cli.budget_options import BUDGET_OPTIONS
from poetslearn.cli.common import (
    RETRAIN,
    BlockCount,
    PathType,
    option,
    retrain_setting,
    ruled_setting,
    with_options,
)
from poetslearn.cli.data_options import data_source_options
from poetslearn.extract.engines import ENGINE_CHOICES

RETRAIN_OPTIONS = [
    *BUDGET_OPTIONS,
    option(
        "architecture",
        type=click.Choice(architecture_names()),
        metavar="NAME",
        default=RETRAIN.architecture,
        show_default=True,
        help="Network to take features from: mobilenet_<1.0|0.75|0.50|0.25>_"
        "<224|192|160|128> or inception_v3 (test_tiny is a tiny network for tests).",
    ),
    option(
        "weights",
        default=RETRAIN.weights,
        show_default=True,
        help="'imagenet' (the codelab's MobileNet graphs in --model_dir, Keras weights there or in "
        "the Keras cache, else downloaded), 'none' (random, for quick tests only), or a path: a "
        "MobileNet v1 frozen graph (.pb/.tgz, e.g. a codelab retrained_graph.pb) or a Keras "
        "weights file.",
    ),
    option(
        "tfhub_module",
        default=None,
        help="Use a TF Hub image feature-vector module (a local SavedModel folder, or a URL when "
        "online) instead of --architecture.",
    ),
    option(
        "image_size",
        type=click.IntRange(min=8),
        default=None,
        help="Input size for a --tfhub_module that does not fix one.",
    ),
    option(
        "allow_size_mismatch",
        is_flag=True,
        help="Use MobileNet weights trained at another "
        "input size than --architecture's (with a warning).",
    ),
    *data_source_options("Train"),
    option(
        "multi_label",
        is_flag=True,
        help="Any number of labels per image (--data_csv rows such as 'beach;dog'): a sigmoid "
        "per label, a threshold per label chosen on validation, the best step by validation "
        "mAP. `label` then prints every label above its threshold.",
    ),
    option(
        "strict",
        is_flag=True,
        help="Stop with an error, before any work, if a file in --image_dir or --data_csv is "
        "missing or not a readable image (default: skip it with a warning).",
    ),
    option(
        "model_dir",
        type=PathType,
        default=RETRAIN.model_dir,
        show_default=True,
        envvar="POETSLEARN_MODEL_DIR",
        help="Folder searched first for pretrained weights. [env: POETSLEARN_MODEL_DIR]",
    ),
    option(
        "bottleneck_dir",
        type=PathType,
        default=RETRAIN.bottleneck_dir,
        show_default=True,
        help="Cache of computed bottleneck vectors.",
    ),
    option(
        "summaries_dir",
        type=str,
        default=None,
        help="TensorBoard summaries of training, one sub-folder per run. Default: "
        "tf_files/training_summaries/<architecture>; '' turns them off.",
    ),
    option(
        "output_graph",
        type=PathType,
        default=RETRAIN.output_graph,
        show_default=True,
        help="Frozen graph to write (its metadata goes beside it as .json).",
    ),
    option(
        "output_labels",
        type=PathType,
        default=RETRAIN.output_labels,
        show_default=True,
        help="Labels file to write, one class per line in output order.",
    ),
    option(
        "saved_model_dir",
        type=PathType,
        default=None,
        help="Also export a SavedModel there (signatures: serving_default takes pixels, "
        "classify_bytes takes encoded images).",
    ),
    option(
        "tflite_output",
        type=PathType,
        default=None,
        help="Also export a .tflite model there (labels and input size in a .json beside it).",
    ),
    option(
        "input_format",
        type=click.Choice(["pixels", "codelab"]),
        default=RETRAIN.input_format,
        show_default=True,
        help="What the exported graph and .tflite take: 'pixels' (0..255, any "
        "size; resized inside) or 'codelab' ([1, size, size, 3] scaled as (x - 128) / 128, the "
        "way the codelab's label_image.py and Android apps feed a graph).",
    ),
    option(
        "tflite_quantize",
        type=click.Choice(["int8"]),
        default=None,
        help="Make the .tflite model full-integer, calibrated on training images.",
    ),
    option(
        "onnx_output",
        type=PathType,
        default=None,
        help="Also export an .onnx model there, for ONNX Runtime (input [N, size, size, 3] as "
        "the .tflite's, output probabilities; labels and preprocessing in its metadata_props).",
    ),
    ruled_setting(
        "how_many_training_steps",
        int,
        "Training steps for the new layer. Default: 50 passes over the training images, "
        "at least 300 and at most 8,000 steps (CIFAR-10: 8,000; a 40-image folder: 300).",
    ),
    retrain_setting("learning_rate", help="Adam learning rate for the new layer."),
    retrain_setting("train_batch_size", help="Bottlenecks per training step."),
    retrain_setting("weight_decay", help="L2 regularisation of the new layer's weights."),
    retrain_setting(
        "eval_step_interval", help="Evaluate on the validation split every this many steps."
    ),
    retrain_setting(
        "validation_batch_size", help="Validation images per evaluation; -1 for all of them."
    ),
    retrain_setting(
        "test_batch_size", help="Test images for the final accuracy; -1 for all of them."
    ),
    retrain_setting(
        "validation_percentage",
        help="Percentage of images used for validation (for CIFAR-10: the last part "
        "of the training set).",
    ),
    retrain_setting(
        "testing_percentage",
        help="Percentage of images used for testing (image folders; CIFAR-10 has its own "
        "test set).",
    ),
    retrain_setting("bottleneck_batch_size", help="Images per batch when computing bottlenecks."),
    option(
        "flip_left_right",
        is_flag=True,
        help="Distortion: randomly mirror training images horizontally.",
    ),
    retrain_setting(
        "random_crop", help="Distortion: percentage of margin to randomly crop off training images."
    ),
    retrain_setting(
        "random_scale", help="Distortion: percentage by which to randomly enlarge training images."
    ),
    retrain_setting(
        "random_brightness",
        help="Distortion: percentage by which to randomly brighten or darken training images.",
    ),
    retrain_setting(
        "distorted_copies",
        help="With any distortion: fixed distorted copies made of each training "
        "image, cached like the other bottlenecks.",
    ),
    option(
        "fine_tune_blocks",
        type=BlockCount(),
        default=RETRAIN.fine_tune_blocks,
        show_default=True,
        metavar="K|all",
        help="Also train the top K blocks of the network (MobileNet: 1 to 13, Inception V3: 1 to "
        "10), on activations cached where the frozen part ends; 'all' trains the whole network "
        "on the images (no cache: for machines with a GPU); 0 trains the new layer alone.",
    ),
    option(
        "bottleneck_blocks",
        type=BlockCount(),
        default=RETRAIN.bottleneck_blocks,
        show_default=True,
        metavar="N|all",
        help="Make each bottleneck from the average-pooled outputs of the top N blocks of the "
        "network side by side (MobileNet: 1 to 14, Inception V3: 1 to 11, 'all': every block), "
        "not only the last block's (1, the codelab's bottleneck). Costs no extra extraction "
        "time; 'all' gains 3 points on CIFAR-10 at mobilenet_0.50_224 (docs/fine-tuning.md).",
    ),
    ruled_setting(
        "fine_tune_epochs",
        int,
        "Epochs of fine-tuning, the best on validation kept. Default: about 360,000 "
        "images seen, 2 to 30 epochs (CIFAR-10: 8; a folder of 2,000 images: 30).",
    ),
    ruled_setting(
        "fine_tune_learning_rate",
        float,
        "Peak learning rate of fine-tuning (AdamW, cosine). Default: 1e-4 / MobileNet's "
        "width multiplier (0.25: 4e-4, 0.50: 2e-4, 1.0 and Inception V3: 1e-4).",
    ),
    retrain_setting("fine_tune_batch_size", help="Images per fine-tuning step."),
    click.option(
        "--test_time_mirror/--no_test_time_mirror",
        "--test-time-mirror/--no-test-time-mirror",
        "test_time_mirror",
        default=False,
        help="Score every image and its mirror image, averaged: validation and test in retrain, "
        "and every exported model does the same, so label and evaluate give what retrain "
        "reports. Twice the cost of each classification; +0.5 points on CIFAR-10 validation at "
        "mobilenet_1.0_224 with --fine_tune_blocks 4 (BENCHMARKS.md). --time_budget may choose "
        "it for a fine-tuning plan on CIFAR-10 or with --flip_left_right; "
        "--no_test_time_mirror keeps it off.",
    ),
    option(
        "engine",
        type=click.Choice(list(ENGINE_CHOICES)),
        default=RETRAIN.engine,
        show_default=True,
        help="What runs the network for bottlenecks: TFLite/XNNPACK (2-3x "
        "faster than TensorFlow on MobileNet), ONNX Runtime (fastest on Inception V3), "
        "TensorFlow, or auto (the architecture's fastest engine that works and agrees with "
        "TensorFlow to 1e-4). tflite_int8 quantizes the network to 8 bits (calibrated on 100 "
        "training images) for faster extraction at a small accuracy cost (see BENCHMARKS.md); its "
        "vectors are cached apart.",
    ),
    click.option(
        "--ray",
        "ray_address",
        metavar="ADDRESS",
        default=None,
        envvar="POETSLEARN_RAY_ADDRESS",
        help="Compute the missing bottlenecks on a Ray cluster: HOST:PORT of its head, 'auto' "
        "(the cluster this machine belongs to) or 'local' (Ray on this machine alone). Needs "
        'pip install "poetslearn[ray]". See docs/more-than-one-machine.md. '
        "[env: POETSLEARN_RAY_ADDRESS]",
    ),
    option(
        "ray_worker_cpus",
        type=click.IntRange(min=1),
        default=None,
        help="With --ray: CPUs (engine threads) per extraction actor. Default: as many as the "
        "smallest node has, at most 8.",
    ),
    retrain_setting("seed", help="Random seed: same seed, same data, same result."),
    option(
        "print_misclassified_test_images",
        is_flag=True,
        help="List the test images the new layer got wrong.",
    ),
    option(
        "assert_accuracy_at_least",
        type=float,
        default=None,
        help="Fail (exit 1, 'ACCURACY FAILED', nothing exported) if the test accuracy is below "
        "this fraction, e.g. 0.8.",
    ),
    option("quiet", is_flag=True, help="No progress bars."),
    click.option(
        "--json",
        "json_output",
        is_flag=True,
        help="Print one JSON document on stdout (paths, accuracy, timings); the usual "
        "text goes to stderr.",
    ),
]


retrain_options = with_options(RETRAIN_OPTIONS)
