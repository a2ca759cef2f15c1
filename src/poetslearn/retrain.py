"""`retrain` as a library call: architecture -> weights -> data -> bottlenecks -> head -> export."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from poetslearn.architectures import get_architecture
from poetslearn.bottlenecks import BottleneckCache, ExtractionStats, compute_bottlenecks
from poetslearn.config import WORK_DIR, RetrainConfig
from poetslearn.datasets import Dataset, Split, load_cifar10, load_image_folder
from poetslearn.distortions import DistortedImages, Distortions
from poetslearn.engines import is_exact, return_freed_memory
from poetslearn.errors import AccuracyError, DataError, PoetslearnError
from poetslearn.export import (check_writable, export_classifier, export_saved_model,
                               export_tflite, metadata_path_for)
from poetslearn.extractor import FeatureExtractor
from poetslearn.head import HeadParams, SoftmaxLayer, train_softmax
from poetslearn.progress import printing_around, progress
from poetslearn.summaries import SummaryWriter, new_run_dir
from poetslearn.weights import WeightsInfo, build_backbone


@dataclass
class RetrainResult:
    dataset: Dataset
    extractor: FeatureExtractor
    weights: WeightsInfo
    extraction: ExtractionStats
    layer: SoftmaxLayer
    best_step: int
    validation_accuracy: float
    test_accuracy: float
    test_size: int
    misclassified: list[tuple[str, str, str]]  # (image name, true label, predicted label)
    outputs: dict[str, Path]
    timings: dict[str, float] = field(default_factory=dict)
    extra_metrics: dict[str, float] = field(default_factory=dict)


def validate_config(config: RetrainConfig) -> None:
    """Rejects impossible settings before any work starts."""
    positive = ("how_many_training_steps", "learning_rate", "train_batch_size",
                "eval_step_interval", "bottleneck_batch_size")
    for name in positive:
        if getattr(config, name) <= 0:
            raise PoetslearnError(f"--{name} must be greater than 0; got {getattr(config, name)}.")
    for name in ("validation_batch_size", "test_batch_size"):
        value = getattr(config, name)
        if value == 0 or value < -1:
            raise PoetslearnError(f"--{name} must be a positive number or -1 (all images); "
                                  f"got {value}.")
    if config.assert_accuracy_at_least is not None and \
            not 0 <= config.assert_accuracy_at_least <= 1:
        raise PoetslearnError(f"--assert_accuracy_at_least is a fraction between 0 and 1 (0.8 "
                              f"for 80%); got {config.assert_accuracy_at_least}.")
    if config.tflite_quantize and config.tflite_output is None:
        raise PoetslearnError("--tflite_quantize needs --tflite_output (where to write the model).")
    for name in ("random_crop", "random_scale", "random_brightness"):
        if not 0 <= getattr(config, name) < 100:
            raise PoetslearnError(f"--{name} is a percentage from 0 to below 100; got "
                                  f"{getattr(config, name)}.")
    if not 1 <= config.distorted_copies <= 50:
        raise PoetslearnError(f"--distorted_copies must be between 1 and 50; got "
                              f"{config.distorted_copies}.")
    if config.weight_decay < 0:
        raise PoetslearnError(f"--weight_decay must be 0 or more; got {config.weight_decay}.")
    v, t = config.validation_percentage, config.testing_percentage
    if not 0 < v < 100 or not 0 < t < 100 or v + t >= 100:
        raise PoetslearnError(
            f"--validation_percentage ({v}) and --testing_percentage ({t}) must each be between "
            f"0 and 100 (exclusive) and sum to less than 100, leaving images for training.")


def load_dataset(config: RetrainConfig, warn) -> Dataset:
    if config.image_dir is not None:
        return load_image_folder(config.image_dir, config.validation_percentage,
                                 config.testing_percentage, config.show_progress, warn,
                                 config.strict)
    return load_cifar10(config.data_dir, config.validation_percentage,
                        show_progress=config.show_progress)


def calibration_images(split, size: int, count: int = 100) -> np.ndarray:
    """Up to `count` training images, evenly spread, as loaded: int8 calibration data."""
    indices = list(range(0, len(split), max(1, len(split) // count)))[:count]
    pixels, _ = split.images.load_batch(indices, size)
    return pixels


def representative_images(split, extractor, count: int = 100) -> np.ndarray:
    """Up to `count` training images at the network's input size: int8 calibration data."""
    import tensorflow as tf

    size = extractor.arch.input_size
    return tf.image.resize(calibration_images(split, size, count), (size, size),
                           method="bilinear", antialias=True).numpy()


def _sample(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """All indices when size is -1 or covers everything, else a random sample (codelab style)."""
    return np.arange(n) if size < 0 or size >= n else np.sort(rng.choice(n, size, replace=False))


def retrain(config: RetrainConfig, log=print, warn=print) -> RetrainResult:
    """Runs the whole pipeline; `log` gets progress lines, `warn` gets warnings."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    arch = get_architecture(config.architecture)
    validate_config(config)
    outputs = [config.output_graph, config.output_labels, metadata_path_for(config.output_graph)]
    if config.tflite_output is not None:
        outputs += [config.tflite_output, metadata_path_for(config.tflite_output)]
    if config.saved_model_dir is not None:
        outputs.append(config.saved_model_dir / "saved_model.pb")
    check_writable(outputs)

    dataset = load_dataset(config, warn)
    log(f"Dataset {dataset.summary()} (from {dataset.source})")
    timings["load_data"] = time.perf_counter() - t0

    t = time.perf_counter()
    if config.tfhub_module:
        from poetslearn.tfhub import hub_architecture

        arch, backbone, weights = hub_architecture(config.tfhub_module, config.image_size)
    else:
        backbone, weights = build_backbone(arch, config.weights, config.model_dir, config.seed,
                                           config.allow_size_mismatch, warn)
    calibration = None
    if not is_exact(config.engine):
        calibration = calibration_images(dataset.splits["train"], arch.input_size)
    extractor = FeatureExtractor(arch, backbone, config.engine, warn, calibration)
    log(f"Architecture {arch.name}: {arch.input_size}x{arch.input_size} input, "
        f"{arch.feature_dim} features; weights: {weights.description}"
        + (f" (sha256 {weights.sha256})" if weights.sha256 else ""))
    if weights.kind == "random":
        warn("Warning: --weights none uses random weights; the classifier will be far worse "
             "than with ImageNet weights. Use it for quick tests only.")
    timings["build_model"] = time.perf_counter() - t

    t = time.perf_counter()
    cache = BottleneckCache(config.bottleneck_dir, arch.name, extractor.fingerprint,
                            extractor.feature_dim, warn)
    distortions = Distortions(config.flip_left_right, config.random_crop, config.random_scale,
                              config.random_brightness, config.distorted_copies, config.seed)
    to_compute = dict(dataset.splits)
    if distortions.enabled:
        train = dataset.splits["train"]
        to_compute["distorted"] = Split(DistortedImages(train.images, distortions),
                                        np.repeat(train.labels, distortions.copies))
    vectors, splits, stats = compute_bottlenecks(
        to_compute, extractor, cache, config.bottleneck_batch_size, config.show_progress, warn)
    log(stats.describe() + (f" Engine: {extractor.engine_name}." if stats.computed else "")
        + f" Cache: {cache.dir}")
    timings["bottlenecks"] = time.perf_counter() - t
    for name, split in splits.items():
        present = set(split.labels.tolist())
        empty = [dataset.class_names[c] for c in range(len(dataset.class_names))
                 if c not in present]
        if empty:
            raise DataError(f"After skipping unreadable images, the {name} split has no image of "
                            f"class(es) {', '.join(empty)}; add readable images to them.")

    train_x, train_y = vectors["train"], splits["train"].labels
    if "distorted" in splits:
        train_x = np.concatenate([train_x, vectors.pop("distorted")])
        train_y = np.concatenate([train_y, splits.pop("distorted").labels])
        log(f"Training on {len(splits['train']):,} images and {len(train_y) - len(splits['train']):,}"
            f" distorted copies ({distortions.describe()}).")

    t = time.perf_counter()
    params = HeadParams(config.how_many_training_steps, config.learning_rate,
                        config.train_batch_size, config.eval_step_interval,
                        config.validation_batch_size, config.weight_decay, config.seed)
    writer = None
    if config.summaries_dir != "":
        root = config.summaries_dir or WORK_DIR / "training_summaries" / arch.name
        writer = SummaryWriter(new_run_dir(root))
    done_steps = [0]

    def on_eval(record, weights) -> None:
        bar.update(record.step - done_steps[0])
        done_steps[0] = record.step
        if writer is not None:
            writer(record, weights)

    try:
        with progress(params.steps, "Training", "step", config.show_progress) as bar:
            trained = train_softmax(train_x, train_y, vectors["validation"],
                                    splits["validation"].labels, len(dataset.class_names),
                                    params, printing_around(bar, log), on_eval=on_eval)
    finally:
        if writer is not None:
            writer.close()
            log(f"TensorBoard summaries written to {writer.run_dir}")
    timings["train_head"] = time.perf_counter() - t
    log(f"Kept the weights of step {trained.best_step} (best validation accuracy "
        f"{trained.best_validation_accuracy:.1%}).")

    rng = np.random.default_rng(config.seed + 1)
    test_idx = _sample(len(splits["test"]), config.test_batch_size, rng)
    test_x, test_y = vectors["test"][test_idx], splits["test"].labels[test_idx]
    predictions = trained.layer.logits(test_x).argmax(axis=1)
    # Every vector is done with; freed, they make room for building the export (about 500 MB for
    # Inception V3's graph), which keeps a full CIFAR-10 run's peak memory lower.
    del vectors, train_x, test_x
    return_freed_memory()
    test_accuracy = float((predictions == test_y).mean())
    log(f"Final test accuracy = {test_accuracy:.1%} (N={len(test_idx)})")
    extra: dict[str, float] = {}
    if dataset.name == "CIFAR-10" and len(test_idx) == len(splits["test"]):
        # Test rows 0-999 are the ones every CIFAR-10 copy agrees on bit for bit.
        extra["test_accuracy_rows_0_999"] = float((predictions[:1000] == test_y[:1000]).mean())
        log(f"Test accuracy on test images 0-999 = {extra['test_accuracy_rows_0_999']:.1%} "
            f"(N=1000)")
    if not extractor.exact:
        log(f"Note: these accuracies are on {extractor.engine_name} bottlenecks. The exported "
            f"float graph computes float features, which the new layer was not trained on, and "
            f"scores lower (3 points on CIFAR-10 at mobilenet_0.50_224); the int8 TFLite model "
            f"(--tflite_output FILE --tflite_quantize int8) matches these figures. Measure either "
            f"with `poetslearn evaluate --graph FILE`.")
    names = splits["test"].images.names
    misclassified = [(names[i], dataset.class_names[test_y[k]],
                      dataset.class_names[predictions[k]])
                     for k, i in enumerate(test_idx) if predictions[k] != test_y[k]]
    if config.assert_accuracy_at_least is not None and \
            test_accuracy < config.assert_accuracy_at_least:
        raise AccuracyError(
            f"ACCURACY FAILED: test accuracy {test_accuracy:.1%} is below "
            f"--assert_accuracy_at_least {config.assert_accuracy_at_least:g} "
            f"({config.assert_accuracy_at_least:.1%}); nothing was exported.")

    t = time.perf_counter()
    metadata = {
        "dataset": {"name": dataset.name, "source": dataset.source,
                    "sizes": {name: len(split) for name, split in splits.items()},
                    "validation_percentage": config.validation_percentage,
                    "testing_percentage": config.testing_percentage},
        "weights": weights.as_dict(),
        "validation_accuracy": trained.best_validation_accuracy,
        "test_accuracy": test_accuracy,
        # When every vector was cached no engine ran: the requested one says how they were made.
        "bottleneck_engine": extractor.engine_name or extractor.requested_engine,
        "test_size": int(len(test_idx)),
        **extra,
        "best_step": trained.best_step,
        "training": {k: getattr(config, k) for k in (
            "how_many_training_steps", "learning_rate", "train_batch_size", "weight_decay",
            "seed")},
    }
    paths = export_classifier(extractor, trained.layer, dataset.class_names, config.output_graph,
                              config.output_labels, metadata)
    if config.saved_model_dir is not None:
        paths["saved_model"] = export_saved_model(extractor, trained.layer, dataset.class_names,
                                                  config.saved_model_dir)
    if config.tflite_output is not None:
        representative = (representative_images(splits["train"], extractor)
                          if config.tflite_quantize else None)
        paths.update(export_tflite(extractor, trained.layer, dataset.class_names,
                                   config.tflite_output, config.tflite_quantize, representative))
    timings["export"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    return RetrainResult(dataset, extractor, weights, stats, trained.layer, trained.best_step,
                         trained.best_validation_accuracy, test_accuracy, int(len(test_idx)),
                         misclassified, paths, timings, extra)
