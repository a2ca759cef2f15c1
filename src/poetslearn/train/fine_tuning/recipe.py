"""What a fine-tuning step sees and minimises: the batch of cached activations (mirrored, mixed),
its targets (smoothed), the loss and the learning-rate schedule (warm-up, then cosine).

Kept apart from the loop in `fine_tuning` so each lever is one small function that
`scripts/fine_tune_levers.py` can switch on and off and measure. Label smoothing, warm-up and
mixup are off by default (measured not to pay on CIFAR-10: BENCHMARKS.md, "The recipe"), so
they are `RetrainConfig` settings for that script rather than command-line options.
"""

from __future__ import annotations

import numpy as np


def training_batch(
    reader, indices: np.ndarray, labels: np.ndarray, classes: int, config, rng
) -> tuple[np.ndarray, np.ndarray]:
    """(activations, targets [batch, classes]) for one step: one-hot targets of class indices, or
    the 0/1 targets of multi-label data as they are. Mirrored maps stand in for mirrored images
    (--flip_left_right); with `config.mixup` A > 0, each activation map and its target is
    blended with another of the batch at a share drawn from Beta(A, A)."""
    x = reader.read(indices)
    picked = labels[indices]
    targets = (
        picked.astype(np.float32) if picked.ndim == 2 else np.eye(classes, dtype=np.float32)[picked]
    )
    if config.flip_left_right:
        flip = rng.random(len(indices)) < 0.5
        x[flip] = x[flip][:, :, ::-1]
    if config.mixup > 0 and len(indices) > 1:
        share = rng.beta(config.mixup, config.mixup, len(indices)).astype(np.float32)
        other = rng.permutation(len(indices))
        per_map = share.reshape(-1, *[1] * (x.ndim - 1))
        x = per_map * x + (1 - per_map) * x[other]
        targets = share[:, None] * targets + (1 - share[:, None]) * targets[other]
    return x, targets


def loss_fn(label_smoothing: float):
    """Mean cross entropy of logits against (smoothed) target distributions."""
    import tensorflow as tf

    def loss(targets, logits):
        if label_smoothing:
            classes = tf.cast(tf.shape(targets)[1], targets.dtype)
            targets = targets * (1 - label_smoothing) + label_smoothing / classes
        return tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(targets, logits))

    return loss


def sigmoid_loss_fn(positive_weights: np.ndarray):
    """Multi-label: binary cross entropy of each label's logit, positives weighted per label,
    summed over labels and averaged over the batch (as `objectives.MultiLabel.loss`)."""
    import tensorflow as tf

    weights = tf.constant(positive_weights, tf.float32)

    def loss(targets, logits):
        per_label = tf.nn.weighted_cross_entropy_with_logits(targets, logits, weights)
        return tf.reduce_mean(tf.reduce_sum(per_label, axis=1))

    return loss


def learning_rate_schedule(peak: float, steps_per_epoch: int, epochs: int, warmup: float):
    """Linear warm-up over the first `warmup` epochs (a fraction allowed), then cosine decay to
    zero at the last step."""
    import keras

    total = steps_per_epoch * epochs
    warm = min(int(round(warmup * steps_per_epoch)), total - 1)
    if warm <= 0:
        return keras.optimizers.schedules.CosineDecay(peak, total)
    return keras.optimizers.schedules.CosineDecay(
        0.0, total - warm, warmup_target=peak, warmup_steps=warm
    )
