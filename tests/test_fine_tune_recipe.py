"""The fine-tuning recipe's levers (train/fine_tuning/recipe.py), each a small function."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from poetslearn.train.fine_tuning.recipe import learning_rate_schedule, loss_fn, training_batch


class ArrayReader:
    def __init__(self, x: np.ndarray) -> None:
        self.x = x

    def read(self, indices) -> np.ndarray:
        return self.x[np.asarray(indices)].copy()


def recipe(flip=False, mixup=0.0):
    return SimpleNamespace(flip_left_right=flip, mixup=mixup)


def test_plain_batches_are_the_activations_with_one_hot_targets():
    x = np.random.default_rng(0).normal(size=(6, 2, 3, 4)).astype(np.float32)
    labels = np.array([0, 2, 1, 2, 0, 1])
    got, targets = training_batch(ArrayReader(x), np.array([4, 1]), labels, 3, recipe(), None)
    np.testing.assert_array_equal(got, x[[4, 1]])
    np.testing.assert_array_equal(targets, [[1, 0, 0], [0, 0, 1]])


def test_mixup_blends_maps_and_targets_with_the_same_share():
    rng = np.random.default_rng(1)
    x = np.stack([np.full((2, 2, 1), float(i)) for i in range(8)]).astype(np.float32)
    labels = np.arange(8) % 4
    got, targets = training_batch(ArrayReader(x), np.arange(8), labels, 4, recipe(mixup=0.4), rng)
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, atol=1e-6)
    assert (targets.max(axis=1) < 1).any()  # some rows really are mixtures
    # Each blended map is constant, share * own + (1 - share) * other's: its value is its
    # target's weighted mean of the two images' values.
    assert np.ptp(got.reshape(8, -1), axis=1).max() < 1e-5
    assert got.min() >= 0 and got.max() <= 7


def test_flip_mirrors_the_width_axis_of_some_maps():
    x = np.arange(4 * 2 * 3 * 1, dtype=np.float32).reshape(4, 2, 3, 1)
    got, _ = training_batch(
        ArrayReader(x), np.arange(4), np.zeros(4, int), 2, recipe(flip=True),
        np.random.default_rng(3),
    )  # fmt: skip
    for a, b in zip(got, x):
        assert np.array_equal(a, b) or np.array_equal(a, b[:, ::-1])


def test_label_smoothing_moves_a_tenth_of_the_target_to_every_class():
    logits = np.log(np.array([[0.7, 0.2, 0.1]], np.float32))
    targets = np.array([[1.0, 0.0, 0.0]], np.float32)
    smoothed = np.array([[0.9 + 0.1 / 3, 0.1 / 3, 0.1 / 3]])
    assert float(loss_fn(0.1)(targets, logits)) == pytest.approx(
        -(smoothed * np.log([0.7, 0.2, 0.1])).sum(), rel=1e-5
    )
    assert float(loss_fn(0.0)(targets, logits)) == pytest.approx(-np.log(0.7), rel=1e-5)


def test_warm_up_rises_to_the_peak_then_decays_to_zero():
    schedule = learning_rate_schedule(1e-3, steps_per_epoch=10, epochs=4, warmup=0.5)
    assert float(schedule(0)) == pytest.approx(0.0, abs=1e-9)
    assert float(schedule(5)) == pytest.approx(1e-3, rel=1e-5)
    assert float(schedule(40)) == pytest.approx(0.0, abs=1e-9)
    plain = learning_rate_schedule(1e-3, steps_per_epoch=10, epochs=4, warmup=0.0)
    assert float(plain(0)) == pytest.approx(1e-3) and float(plain(40)) == pytest.approx(0.0)
