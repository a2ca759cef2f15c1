"""Every default of `retrain` and `label`, in one place; the CLI reads its defaults from here."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from poetslearn.errors import PoetslearnError

WORK_DIR = Path("tf_files")  # the codelab's working folder, relative to where the command runs
DEFAULT_ARCHITECTURE = "mobilenet_0.50_224"  # a name of backbone.architectures.ARCHITECTURES
# Fine-tuning trains the network above a cut, so blocks below it cannot also feed the bottleneck.
NOT_WITH_FINE_TUNING = (
    "--bottleneck_blocks and --fine_tune_blocks cannot be combined: choose one "
    "of the two ways past the linear layer (docs/fine-tuning.md compares "
    "them)."
)


def _env_path(variable: str, default: Path) -> Path:
    value = os.environ.get(variable)
    return Path(value) if value else default


@dataclass
class RetrainConfig:
    architecture: str = DEFAULT_ARCHITECTURE
    weights: str = "imagenet"  # "imagenet", "none" or a weights file
    allow_size_mismatch: bool = False  # use MobileNet weights trained at another resolution
    tfhub_module: str | None = None  # a TF Hub image feature-vector module instead of architecture
    image_size: int | None = None  # the module's input size when it does not fix one
    image_dir: Path | None = None  # a folder of class sub-folders; None means CIFAR-10
    data_csv: Path | None = None  # a CSV file of paths, labels and splits (before image_dir)
    multi_label: bool = False  # a sigmoid per label, any number per image (needs data_csv)
    strict: bool = False  # unreadable images are an error (before any work) instead of skipped
    data_dir: Path = field(
        default_factory=lambda: _env_path("POETSLEARN_DATA_DIR", WORK_DIR / "data")
    )
    model_dir: Path = field(
        default_factory=lambda: _env_path("POETSLEARN_MODEL_DIR", WORK_DIR / "models")
    )
    bottleneck_dir: Path = WORK_DIR / "bottlenecks"
    # TensorBoard summaries; None: tf_files/training_summaries/<architecture>. A run gets its own
    # sub-folder. Empty string (--summaries_dir "") turns them off.
    summaries_dir: Path | str | None = None
    output_graph: Path = WORK_DIR / "retrained_graph.pb"
    output_labels: Path = WORK_DIR / "retrained_labels.txt"
    saved_model_dir: Path | None = None  # also export a SavedModel there
    tflite_output: Path | None = None  # also export a .tflite model there
    tflite_quantize: str | None = None  # None (float32) or "int8"
    onnx_output: Path | None = None  # also export an .onnx model there
    # "pixels": graphs take 0..255 pixels of any size; "codelab": [1, s, s, 3] scaled as
    # (x - 128) / 128, for clients built around the codelab (label_image.py, its Android apps).
    input_format: str = "pixels"
    # The head: Adam on standardised bottlenecks, best validation step kept. The codelab's plain
    # SGD at 0.01 for 4,000 steps of 100 is measurably worse (docs/how-it-works.md, "Training
    # defaults").
    how_many_training_steps: int | None = None  # None: train.schedule's rule of the data's size
    learning_rate: float = 0.001
    train_batch_size: int = 256
    weight_decay: float = 1e-4
    eval_step_interval: int = 100
    validation_batch_size: int = -1  # -1: the whole validation split
    test_batch_size: int = -1  # -1: the whole test split
    validation_percentage: float = 10.0
    testing_percentage: float = 10.0
    bottleneck_batch_size: int = 128
    # Distortions (the codelab's flags); with any of them, each training image also gets
    # `distorted_copies` fixed distorted variants, cached like every other bottleneck.
    flip_left_right: bool = False
    random_crop: float = 0.0
    random_scale: float = 0.0
    random_brightness: float = 0.0
    distorted_copies: int = 2
    engine: str = "auto"  # runs the backbone: "auto" or a name of engines.ENGINES
    seed: int = 0
    print_misclassified_test_images: bool = False
    assert_accuracy_at_least: float | None = None  # a fraction; below it, export nothing
    show_progress: bool = True
    trainer: str = "new_layer"  # a name of trainers.TRAINERS
    # Fine-tuning: the top K blocks of the backbone trained with the new layer, on cached
    # activations (0: the new layer alone; "all": the whole network, on the images).
    fine_tune_blocks: int | str = 0
    # Each bottleneck from the pooled outputs of the top N blocks (1: the last block alone, as
    # the codelab; "all": every block), see `block_features`.
    bottleneck_blocks: int | str = 1
    fine_tune_epochs: int | None = None  # None: train.schedule's rule of the data's size
    fine_tune_learning_rate: float | None = None  # None: train.schedule's rule of the width
    fine_tune_batch_size: int = 64
    # The fine-tuning recipe's levers (train/fine_tuning/recipe.py; measured in BENCHMARKS.md):
    # warm-up epochs before the cosine decay, label smoothing, mixup's Beta(a, a) on activations.
    fine_tune_warmup: float = 0.0
    label_smoothing: float = 0.0
    mixup: float = 0.0
    # Test-time mirroring: every scored image averaged with its mirror image, in retrain's
    # validation and test figures and inside every export (data/mirror.py).
    test_time_mirror: bool = False
    # Where missing bottlenecks are computed: a name of extraction.EXTRACTION_BACKENDS.
    extraction: str = "local"
    # The `ray` backend: the cluster to join ("auto", "local" or HOST:PORT) and the CPUs each
    # of its extraction actors takes (None: as many as the smallest node has, at most 8).
    ray_address: str | None = None
    ray_worker_cpus: int | None = None
    # --time_budget: what was planned and why (budget.plans), recorded in every export's metadata.
    plan: dict | None = None


@dataclass
class LabelConfig:
    graph: Path = WORK_DIR / "retrained_graph.pb"
    labels: Path | None = None  # None: from the metadata file, else tf_files/retrained_labels.txt
    top_k: int = 5
    # Images per classifier call, in `label` and `evaluate`: enough to amortise a call; at 64,
    # `evaluate` of 400 photos with the default `.pb` read 0.73-0.81x the rate (BENCHMARKS.md,
    # "`evaluate` in batches of 32").
    batch_size: int = 32
    # Only for graphs without a poetslearn metadata file (such as the codelab's retrain.py output);
    # these are the codelab label_image.py defaults.
    input_layer: str = "input"
    output_layer: str = "final_result"
    input_height: int | None = None  # None: read from the graph's input shape, else 224
    input_width: int | None = None
    input_mean: float = 128.0
    input_std: float = 128.0


DEFAULT_LABELS_FILE = WORK_DIR / "retrained_labels.txt"


def check_settings(config: RetrainConfig) -> None:
    """Rejects impossible settings before any work starts."""
    positive = (
        "how_many_training_steps",
        "learning_rate",
        "train_batch_size",
        "eval_step_interval",
        "bottleneck_batch_size",
    )
    for name in positive:  # None: chosen by a rule (the training length)
        if getattr(config, name) is not None and getattr(config, name) <= 0:
            raise PoetslearnError(f"--{name} must be greater than 0; got {getattr(config, name)}.")
    for name in ("validation_batch_size", "test_batch_size"):
        value = getattr(config, name)
        if value == 0 or value < -1:
            raise PoetslearnError(
                f"--{name} must be a positive number or -1 (all images); got {value}."
            )
    if (
        config.assert_accuracy_at_least is not None
        and not 0 <= config.assert_accuracy_at_least <= 1
    ):
        raise PoetslearnError(
            f"--assert_accuracy_at_least is a fraction between 0 and 1 (0.8 "
            f"for 80%); got {config.assert_accuracy_at_least}."
        )
    if config.input_format not in ("pixels", "codelab"):
        raise PoetslearnError(
            f"--input_format is 'pixels' or 'codelab'; got {config.input_format!r}."
        )
    if config.onnx_output is not None and config.tfhub_module:
        raise PoetslearnError(
            "--onnx_output writes MobileNet v1 and Inception V3 networks; a --tfhub_module's "
            "network cannot be written as ONNX. Use --tflite_output or --saved_model_dir."
        )
    if config.tflite_quantize and config.tflite_output is None:
        raise PoetslearnError("--tflite_quantize needs --tflite_output (where to write the model).")
    for name in ("random_crop", "random_scale", "random_brightness"):
        if not 0 <= getattr(config, name) < 100:
            raise PoetslearnError(
                f"--{name} is a percentage from 0 to below 100; got {getattr(config, name)}."
            )
    if not 1 <= config.distorted_copies <= 50:
        raise PoetslearnError(
            f"--distorted_copies must be between 1 and 50; got {config.distorted_copies}."
        )
    for name in ("fine_tune_epochs", "fine_tune_learning_rate", "fine_tune_batch_size"):
        if getattr(config, name) is not None and getattr(config, name) <= 0:
            raise PoetslearnError(f"--{name} must be greater than 0; got {getattr(config, name)}.")
    if config.fine_tune_blocks and config.bottleneck_blocks != 1:
        raise PoetslearnError(NOT_WITH_FINE_TUNING)
    if config.weight_decay < 0:
        raise PoetslearnError(f"--weight_decay must be 0 or more; got {config.weight_decay}.")
    _check_multi_label(config)
    v, t = config.validation_percentage, config.testing_percentage
    if not 0 < v < 100 or not 0 < t < 100 or v + t >= 100:
        raise PoetslearnError(
            f"--validation_percentage ({v}) and --testing_percentage ({t}) must each be between "
            f"0 and 100 (exclusive) and sum to less than 100, leaving images for training."
        )


def _check_multi_label(config: RetrainConfig) -> None:
    if not config.multi_label:
        return
    if config.data_csv is None:
        raise PoetslearnError(
            "--multi_label needs --data_csv: a folder of class sub-folders and CIFAR-10 give one "
            "label per image. Describe the images and their labels in a CSV file (docs/data.md)."
        )
