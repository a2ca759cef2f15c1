"""What fine-tuning trains: the top blocks of the backbone and the new layer (on standardised
features), built from the new layer trained first, and its training step (also what
scripts/fine_tune_speed.py times)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from poetslearn.backbone.cut import CutBackbone
from poetslearn.extract.activation_cache import ActivationReader
from poetslearn.train.head import OutputLayer
from poetslearn.train.objectives import SingleLabel

# Activations per inference pass of the top blocks (validation and test features). Their
# intermediate maps dominate peak memory: at mobilenet_1.0_224 with K=4 a pass over 256 took the
# process to 2,847 MB and over 64 to 1,243 MB (scripts/eval_batch_memory.py); a whole K=4 run
# with 256 peaked at 3,651 MB.
EVAL_BATCH = 64


@dataclass
class FineTuneModel:
    """The trained part: the top blocks and the new layer (on standardised features)."""

    split: CutBackbone
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

    def layer(self, activation: str = "softmax") -> OutputLayer:
        """The new layer on raw features, standardisation folded in (as `head` exports it)."""
        w, b = self.weights.numpy(), self.biases.numpy()
        return OutputLayer(
            (w / self.std[:, None]).astype(np.float32),
            (b - (self.mean / self.std) @ w).astype(np.float32),
            self.mean,
            self.std,
            activation,
        )


def build_model(split: CutBackbone, start: OutputLayer) -> FineTuneModel:
    import keras
    import tensorflow as tf

    for layer in split.top.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    mean, std, w, b = start.standardised()
    return FineTuneModel(split, mean, std, tf.Variable(w), tf.Variable(b))


def make_train_step(model: FineTuneModel, optimizer, label_smoothing: float = 0.0, objective=None):
    """One optimizer step on a batch of activations and targets [batch, classes]: (mean loss,
    count of right answers: top scores on the targets' top class, or, multi-label, images whose
    every label is right). (Also what scripts/fine_tune_speed.py times.)"""
    import tensorflow as tf

    objective = objective or SingleLabel()
    variables = model.variables
    optimizer.build(variables)
    loss_of = objective.tf_loss(label_smoothing)

    @tf.function(reduce_retracing=True)
    def step(x, targets):
        with tf.GradientTape() as tape:
            logits = model.logits(x)
            loss = loss_of(targets, logits)
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss, objective.tf_hits(logits, targets)

    return step


def step_on_random_activations(split: CutBackbone, classes: int, batch: int, seed: int = 0):
    """(step, activations, targets): the training step retrain runs, from a random new layer,
    and one batch of random activations of the cut's shape to run it on; for timing the step
    (`budget.measure`, scripts/fine_tune_speed.py) without computing any activation."""
    import keras

    rng = np.random.default_rng(seed)
    dim = int(split.top.output.shape[-1])
    start = OutputLayer(
        rng.normal(0, 0.01, (dim, classes)).astype(np.float32),
        np.zeros(classes, np.float32),
        np.zeros(dim, np.float32),
        np.ones(dim, np.float32),
    )
    step = make_train_step(build_model(split, start), keras.optimizers.AdamW(1e-4))
    x = rng.uniform(0, 6, (batch, *split.activation_shape)).astype(np.float32)
    y = np.eye(classes, dtype=np.float32)[rng.integers(0, classes, batch)]
    return step, x, y
