"""Fine-tuning the top K blocks of the backbone with the new layer, on cached activations.

The trainer behind `retrain --fine_tune_blocks K`. It starts from the new layer trained on the
bottlenecks (so it never starts from a random head), computes once the activations where the
frozen part of the network ends (the activation cache), then trains the top K blocks and the
layer together on them: batch-norm statistics frozen (inference mode), AdamW with a cosine
schedule, the best epoch on validation kept, a checkpoint after every epoch so that a killed run
resumes where it stopped and ends as an uninterrupted one would. The trained blocks are the
backbone's own layers, so the export carries them.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from poetslearn.backbone.cut import CutBackbone, cut_backbone
from poetslearn.clock import OutOfTime
from poetslearn.data.mirror import MIRROR_SUFFIX, mean_with_mirror
from poetslearn.errors import PoetslearnError
from poetslearn.extract.activations import get_or_create_activations
from poetslearn.progress import printing_around
from poetslearn.train.checkpoints import checkpoint_path, restore_checkpoint, save_checkpoint
from poetslearn.train.fine_tuning.model import FineTuneModel, build_model, make_train_step
from poetslearn.train.fine_tuning.recipe import learning_rate_schedule, training_batch
from poetslearn.train.fine_tuning.time_left import epochs_that_fit, time_for
from poetslearn.train.head import EvalRecord, OutputLayer, TrainResult, ranking
from poetslearn.train.new_layer import open_summaries, train_new_layer
from poetslearn.train.objectives import objective_for
from poetslearn.train.schedule import with_fine_tuning_defaults

if TYPE_CHECKING:  # the stage signature's types
    from poetslearn.config import RetrainConfig
    from poetslearn.context import RunContext
    from poetslearn.data.sources import Dataset
    from poetslearn.extract.backends import ExtractionBackend
    from poetslearn.extract.bottlenecks import Bottlenecks
    from poetslearn.extract.extractor import FeatureExtractor


def _split_features(model: FineTuneModel, readers: dict, name: str) -> np.ndarray:
    """A scored split's features through the trained blocks; with --test_time_mirror, averaged
    with its mirror images' (whose activations are read as a split of their own)."""
    features = model.features(readers[name])
    mirror = readers.get(name + MIRROR_SUFFIX)
    return features if mirror is None else mean_with_mirror(name, features, model.features(mirror))


def _evaluate(model: FineTuneModel, readers: dict, labels: np.ndarray, objective):
    """(score, loss) on the whole validation split: accuracy and cross entropy, or mAP and
    weighted binary cross entropy for multi-label data."""
    features = _split_features(model, readers, "validation")
    probs = objective.probabilities(model.layer().logits(features))
    return objective.score(probs, labels), objective.loss(probs, labels)


def _run_epoch(
    epoch: int,
    step,
    model: FineTuneModel,
    data: tuple[dict, dict],
    batch: int,
    config,
    objective,
    bar,
    clock=None,
) -> EvalRecord:
    """One pass over the training activations in an order drawn from (seed, epoch), so a resumed
    run repeats it exactly; then the validation figures."""
    readers, labels = data
    n, classes = len(readers["train"]), model.biases.shape[0]
    rng = np.random.default_rng([config.seed, epoch])
    order, losses, correct = rng.permutation(n), [], 0.0
    for start in range(0, n, batch):
        if clock is not None and clock.passed():
            break  # out of time (--time_budget): this epoch ends here, validated as any other
        idx = order[start : start + batch]
        x, targets = training_batch(readers["train"], idx, labels["train"], classes, config, rng)
        loss, hits = step(x, targets)
        losses.append(float(loss))
        correct += float(hits)
        bar.update(1)
    score, loss = _evaluate(model, readers, labels["validation"], objective)
    return EvalRecord(
        epoch, correct / n, float(np.mean(losses)), score, len(labels["validation"]), loss
    )


def _epoch_line(record: EvalRecord, epochs: int, objective) -> str:
    return (
        f"Epoch {record.step}/{epochs}: Train {objective.train_figure} = "
        f"{record.train_accuracy:.1%}, Cross entropy = {record.cross_entropy:.4f}, Validation "
        f"{objective.score_name} = {objective.format_score(record.validation_accuracy)} "
        f"(N={record.validation_size})"
    )


def _train(
    model: FineTuneModel,
    data: tuple[dict, dict],
    config,
    checkpoint: Path,
    ctx: RunContext,
    objective,
    on_epoch=None,
) -> tuple[int, float, list[EvalRecord]]:
    """Trains for --fine_tune_epochs on (readers, labels) per split; returns (best epoch, its
    validation score, history), with the best epoch's weights in place (epoch 0: the start, if
    no epoch beat it)."""
    import keras

    log, (readers, labels) = ctx.log, data
    n, epochs = len(readers["train"]), config.fine_tune_epochs
    batch = min(config.fine_tune_batch_size, n)
    steps = math.ceil(n / batch)
    optimizer = keras.optimizers.AdamW(
        learning_rate_schedule(
            config.fine_tune_learning_rate, steps, epochs, config.fine_tune_warmup
        ),
        weight_decay=config.weight_decay,
    )
    variables = model.variables
    step = make_train_step(model, optimizer, config.label_smoothing, objective)
    if checkpoint.is_file():
        done, best, history = restore_checkpoint(checkpoint, model, optimizer)
        log(f"Resuming fine-tuning after epoch {done} of {epochs} ({checkpoint}).")
    else:
        score, loss = _evaluate(model, readers, labels["validation"], objective)
        done, best, history = 0, (score, -loss, [v.numpy() for v in variables]), []
        log(
            f"Epoch 0/{epochs} (the new layer alone): Validation {objective.score_name} = "
            f"{objective.format_score(score)} (N={len(labels['validation'])})"
        )
    with ctx.progress(steps * (epochs - done), "Fine-tuning", "step") as bar:
        for epoch in range(done + 1, epochs + 1):
            history.append(
                _run_epoch(epoch, step, model, data, batch, config, objective, bar, ctx.clock)
            )
            printing_around(bar, log)(_epoch_line(history[-1], epochs, objective))
            if on_epoch is not None:
                on_epoch(history[-1], model.weights.numpy())
            if ranking(history[-1]) > best[:2]:
                best = (*ranking(history[-1]), [v.numpy() for v in variables])
            save_checkpoint(checkpoint, epoch, model, optimizer, best, history)
            if ctx.clock is not None and ctx.clock.passed():
                log(f"Out of time after epoch {epoch} of {epochs} (--time_budget).")
                break
    for variable, value in zip(variables, best[2]):
        variable.assign(value)
    best_epoch = max((r.step for r in history if ranking(r) == best[:2]), default=0)
    return best_epoch, best[0], history


def fine_tune(
    bottlenecks: Bottlenecks,
    dataset: Dataset,
    extractor: FeatureExtractor,
    config: RetrainConfig,
    backend: ExtractionBackend,
    ctx: RunContext,
) -> TrainResult:
    """The trainer for --fine_tune_blocks K: the top K blocks, on cached activations computed
    by the run's own extraction backend."""
    split = cut_backbone(extractor.arch, extractor.backbone, config.fine_tune_blocks)
    return run_fine_tuning(
        split,
        bottlenecks,
        dataset,
        extractor,
        config,
        ctx,
        lambda: get_or_create_activations(
            {**bottlenecks.splits, **bottlenecks.mirrored}, split, extractor, config, backend, ctx
        ),
    )


def run_fine_tuning(
    split: CutBackbone,
    bottlenecks: Bottlenecks,
    dataset: Dataset,
    extractor: FeatureExtractor,
    config: RetrainConfig,
    ctx: RunContext,
    make_readers,
) -> TrainResult:
    """The new layer first, then the part of the network above `split.cut` with it, on what
    `make_readers()` gives per split (cached activations, or the images themselves)."""
    if not extractor.exact:
        raise PoetslearnError(
            "--fine_tune_blocks trains on float activations; use an exact "
            "--engine (auto, tflite, onnxruntime or tf), not tflite_int8."
        )
    log, began = ctx.log, time.perf_counter()
    start = train_new_layer(bottlenecks, dataset, extractor, config, None, ctx)
    new_layer_done = time.perf_counter()
    config = with_fine_tuning_defaults(
        config, len(bottlenecks.splits["train"].labels), extractor.arch.alpha, log
    )
    if not time_for(ctx, "activations", "fine_tune_epoch"):
        return start
    try:
        readers = make_readers()
    except OutOfTime:
        log("Out of time computing the activations (--time_budget): keeping the new layer.")
        return start
    readers_done = time.perf_counter()
    config = epochs_that_fit(config, ctx, readers_done - new_layer_done)
    if config is None:
        _close(readers)
        return start
    checkpoint = checkpoint_path(
        config, extractor, start.layer, bottlenecks.splits["train"].images.keys()
    )
    labels = {name: s.labels for name, s in bottlenecks.splits.items()}
    objective = objective_for(dataset.multi_label, labels["train"])
    model = build_model(split, start.layer)
    best_epoch, score, history = _train_with_summaries(
        model, (readers, labels), config, checkpoint, ctx, objective, extractor.arch.name
    )
    log(
        f"Kept the weights of epoch {best_epoch} (best validation {objective.score_name} "
        f"{objective.format_score(score)})."
    )
    layer = _finished_layer(model, objective, readers, labels["validation"])
    test_features = _split_features(model, readers, "test")
    _close(readers)
    checkpoint.unlink(missing_ok=True)
    details = _details(config, split, best_epoch, start)
    seconds = {
        "new_layer": new_layer_done - began,
        "activations": readers_done - new_layer_done,  # cached, or computed now
        "fine_tuning": time.perf_counter() - readers_done,
    }
    return TrainResult(
        layer, best_epoch, score, history, test_features, details, stage_seconds=seconds
    )


def _train_with_summaries(model, data, config, checkpoint, ctx, objective, architecture):
    """`_train`, with TensorBoard summaries of each epoch unless they are turned off."""
    writer = open_summaries(config, architecture)
    try:
        return _train(model, data, config, checkpoint, ctx, objective, writer)
    finally:
        if writer is not None:
            writer.close()
            ctx.log(f"TensorBoard summaries of the fine-tuning written to {writer.run_dir}")


def _close(readers: dict) -> None:
    for reader in readers.values():
        reader.close()


def _details(config, split: CutBackbone, best_epoch: int, start: TrainResult) -> dict:
    """What the metadata records of the fine-tuning."""
    return {
        "blocks": config.fine_tune_blocks,
        "cut": split.cut,
        "epochs": config.fine_tune_epochs,
        "learning_rate": config.fine_tune_learning_rate,
        "batch_size": config.fine_tune_batch_size,
        "warmup_epochs": config.fine_tune_warmup,
        "label_smoothing": config.label_smoothing,
        "mixup": config.mixup,
        "best_epoch": best_epoch,
        "new_layer_validation_accuracy": start.best_validation_accuracy,  # mAP if multi-label
    }


def _finished_layer(model: FineTuneModel, objective, readers: dict, labels) -> OutputLayer:
    """The trained layer with the objective's activation and, multi-label, the thresholds chosen
    on the validation split."""
    layer = model.layer(objective.activation)
    layer.thresholds = objective.thresholds(
        lambda: layer.probabilities(_split_features(model, readers, "validation")), labels
    )
    return layer
