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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from poetslearn.backbone.split import SplitBackbone, split_backbone
from poetslearn.errors import PoetslearnError
from poetslearn.extract.activation_cache import ActivationReader
from poetslearn.extract.activations import get_or_create_activations
from poetslearn.progress import printing_around
from poetslearn.train.checkpoints import checkpoint_path, restore_checkpoint, save_checkpoint
from poetslearn.train.fine_tune_recipe import learning_rate_schedule, loss_fn, training_batch
from poetslearn.train.head import EvalRecord, OutputLayer, TrainResult
from poetslearn.train.new_layer import open_summaries, train_new_layer
from poetslearn.train.schedule import with_fine_tuning_defaults

if TYPE_CHECKING:  # the stage signature's types
    from poetslearn.config import RetrainConfig
    from poetslearn.context import RunContext
    from poetslearn.data.sources import Dataset
    from poetslearn.extract.backends import ExtractionBackend
    from poetslearn.extract.bottlenecks import Bottlenecks
    from poetslearn.extract.extractor import FeatureExtractor

# Activations per inference pass of the top blocks (validation and test features). Their
# intermediate maps dominate peak memory: at mobilenet_1.0_224 with K=4 a pass over 256 took the
# process to 2,847 MB and over 64 to 1,243 MB (scripts/eval_batch_memory.py); a whole K=4 run
# with 256 peaked at 3,651 MB.
EVAL_BATCH = 64


@dataclass
class _Model:
    """The trained part: the top blocks and the new layer (on standardised features)."""

    split: SplitBackbone
    mean: np.ndarray
    std: np.ndarray
    weights: object  # tf.Variable [dim, classes]
    biases: object  # tf.Variable [classes]

    @property
    def variables(self) -> list:
        return list(self.split.top.trainable_variables) + [self.weights, self.biases]

    def logits(self, activations):
        features = self.split.top(activations, training=False)  # batch norm frozen
        return ((features - self.mean) / self.std) @ self.weights + self.biases

    def features(self, reader: ActivationReader) -> np.ndarray:
        out = [
            self.split.top(
                reader.read(range(i, min(i + EVAL_BATCH, len(reader)))), training=False
            ).numpy()
            for i in range(0, len(reader), EVAL_BATCH)
        ]
        return np.concatenate(out)

    def layer(self) -> OutputLayer:
        """The new layer on raw features, standardisation folded in (as `head` exports it)."""
        w, b = self.weights.numpy(), self.biases.numpy()
        return OutputLayer(
            (w / self.std[:, None]).astype(np.float32),
            (b - (self.mean / self.std) @ w).astype(np.float32),
            self.mean,
            self.std,
        )


def _build(split: SplitBackbone, start: OutputLayer) -> _Model:
    import keras
    import tensorflow as tf

    for layer in split.top.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    mean, std, w, b = start.standardised()
    return _Model(split, mean, std, tf.Variable(w), tf.Variable(b))


def _evaluate(model: _Model, reader: ActivationReader, labels: np.ndarray) -> tuple[float, float]:
    """(accuracy, cross entropy) on a whole split."""
    from poetslearn.train.objectives import cross_entropy, softmax

    layer = model.layer()
    probs = softmax(layer.logits(model.features(reader)))
    return float((probs.argmax(axis=1) == labels).mean()), cross_entropy(probs, labels)


def _run_epoch(
    epoch: int, step, model: _Model, readers: dict, labels: dict, batch: int, config, bar
) -> EvalRecord:
    """One pass over the training activations in an order drawn from (seed, epoch), so a resumed
    run repeats it exactly; then the validation figures."""
    n, classes = len(readers["train"]), model.biases.shape[0]
    rng = np.random.default_rng([config.seed, epoch])
    order, losses, correct = rng.permutation(n), [], 0.0
    for start in range(0, n, batch):
        idx = order[start : start + batch]
        x, targets = training_batch(readers["train"], idx, labels["train"], classes, config, rng)
        loss, hits = step(x, targets)
        losses.append(float(loss))
        correct += float(hits)
        bar.update(1)
    accuracy, ce = _evaluate(model, readers["validation"], labels["validation"])
    return EvalRecord(
        epoch, correct / n, float(np.mean(losses)), accuracy, len(labels["validation"]), ce
    )


def make_train_step(model: _Model, optimizer, label_smoothing: float = 0.0):
    """One optimizer step on a batch of activations and target distributions [batch, classes]:
    (mean loss, count of top scores on the targets' top class). (Also what
    scripts/fine_tune_speed.py times.)"""
    import tensorflow as tf

    variables = model.variables
    optimizer.build(variables)
    loss_of = loss_fn(label_smoothing)

    @tf.function(reduce_retracing=True)
    def step(x, targets):
        with tf.GradientTape() as tape:
            logits = model.logits(x)
            loss = loss_of(targets, logits)
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        hits = tf.argmax(logits, 1) == tf.argmax(targets, 1)
        return loss, tf.reduce_sum(tf.cast(hits, tf.float32))

    return step


def _train(
    model: _Model,
    readers: dict,
    labels: dict,
    config,
    checkpoint: Path,
    ctx: RunContext,
    on_epoch=None,
) -> tuple[int, float, list[EvalRecord]]:
    """Trains for --fine_tune_epochs; returns (best epoch, its validation accuracy, history),
    with the best epoch's weights in place (epoch 0: the start, if no epoch beat it)."""
    import keras

    log = ctx.log
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
    step = make_train_step(model, optimizer, config.label_smoothing)
    if checkpoint.is_file():
        done, best, history = restore_checkpoint(checkpoint, model, optimizer)
        log(f"Resuming fine-tuning after epoch {done} of {epochs} ({checkpoint}).")
    else:
        accuracy, ce = _evaluate(model, readers["validation"], labels["validation"])
        done, best, history = 0, (accuracy, -ce, [v.numpy() for v in variables]), []
        log(
            f"Epoch 0/{epochs} (the new layer alone): Validation accuracy = {accuracy:.1%} "
            f"(N={len(labels['validation'])})"
        )
    with ctx.progress(steps * (epochs - done), "Fine-tuning", "step") as bar:
        for epoch in range(done + 1, epochs + 1):
            history.append(_run_epoch(epoch, step, model, readers, labels, batch, config, bar))
            printing_around(bar, log)(
                f"Epoch {epoch}/{epochs}: Train accuracy = {history[-1].train_accuracy:.1%}, "
                f"Cross entropy = {history[-1].cross_entropy:.4f}, Validation accuracy = "
                f"{history[-1].validation_accuracy:.1%} (N={len(labels['validation'])})"
            )
            if on_epoch is not None:
                on_epoch(history[-1], model.weights.numpy())
            score = (history[-1].validation_accuracy, -history[-1].validation_cross_entropy)
            if score > best[:2]:
                best = (*score, [v.numpy() for v in variables])
            save_checkpoint(checkpoint, epoch, model, optimizer, best, history)
    for variable, value in zip(variables, best[2]):
        variable.assign(value)
    best_epoch = max(
        (
            r.step
            for r in history
            if (r.validation_accuracy, -r.validation_cross_entropy) == best[:2]
        ),
        default=0,
    )
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
    split = split_backbone(extractor.arch, extractor.backbone, config.fine_tune_blocks)
    return run_fine_tuning(
        split,
        bottlenecks,
        dataset,
        extractor,
        config,
        ctx,
        lambda: get_or_create_activations(
            bottlenecks.splits, split, extractor, config, backend, ctx
        ),
    )


def run_fine_tuning(
    split: SplitBackbone,
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
    log = ctx.log
    start = train_new_layer(bottlenecks, dataset, extractor, config, None, ctx)
    config = with_fine_tuning_defaults(
        config, len(bottlenecks.splits["train"].labels), extractor.arch.alpha, log
    )
    checkpoint = checkpoint_path(
        config, extractor, start.layer, bottlenecks.splits["train"].images.keys()
    )
    readers = make_readers()
    labels = {name: s.labels for name, s in bottlenecks.splits.items()}
    model = _build(split, start.layer)
    writer = open_summaries(config, extractor.arch.name)
    try:
        best_epoch, accuracy, history = _train(
            model, readers, labels, config, checkpoint, ctx, writer
        )
    finally:
        if writer is not None:
            writer.close()
            log(f"TensorBoard summaries of the fine-tuning written to {writer.run_dir}")
    log(f"Kept the weights of epoch {best_epoch} (best validation accuracy {accuracy:.1%}).")
    test_features = model.features(readers["test"])
    for reader in readers.values():
        reader.close()
    checkpoint.unlink(missing_ok=True)
    details = {
        "blocks": config.fine_tune_blocks,
        "cut": split.cut,
        "epochs": config.fine_tune_epochs,
        "learning_rate": config.fine_tune_learning_rate,
        "batch_size": config.fine_tune_batch_size,
        "warmup_epochs": config.fine_tune_warmup,
        "label_smoothing": config.label_smoothing,
        "mixup": config.mixup,
        "best_epoch": best_epoch,
        "new_layer_validation_accuracy": start.best_validation_accuracy,
    }
    return TrainResult(
        model.layer(), best_epoch, accuracy, history, test_features=test_features, details=details
    )
