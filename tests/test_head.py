"""The new layer: feature statistics in chunks, training on standardised features without copies."""

from __future__ import annotations

import numpy as np


def quiet(*_):
    pass


def test_feature_statistics_work_in_chunks_and_match_numpy(monkeypatch):
    from poetslearn.train import head

    monkeypatch.setattr(head, "_CHUNK_ROWS", 7)  # several chunks and a ragged last one
    x = np.random.default_rng(5).normal(3.0, 2.0, (50, 6)).astype(np.float32)
    mean, std = head._column_mean_std(x)
    np.testing.assert_allclose(mean, x.astype(np.float64).mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(std, x.astype(np.float64).std(axis=0), rtol=1e-5, atol=1e-6)


def test_head_trains_on_standardised_features_without_copying_them():
    """Training sees standardised features: shifting and scaling each raw feature, which
    standardisation undoes, leaves every step the same (the folded gradient is right)."""
    from poetslearn.train.head import HeadParams, accuracy, train_output_layer

    rng = np.random.default_rng(3)
    centres = rng.normal(0, 1, (4, 12))
    y = rng.integers(0, 4, 600)
    x = (centres[y] + rng.normal(0, 1.5, (600, 12))).astype(np.float32)
    x[:, 5] = 2.0  # a constant feature stays harmless
    scale = rng.uniform(0.1, 10, 12).astype(np.float32)
    offset = rng.uniform(-20, 20, 12).astype(np.float32)
    moved = (x * scale + offset).astype(np.float32)
    params = HeadParams(
        steps=300,
        learning_rate=0.01,
        batch_size=64,
        eval_step_interval=50,
        validation_batch_size=-1,
        weight_decay=1e-3,
        seed=0,
    )
    a = train_output_layer(x[:500], y[:500], x[500:], y[500:], 4, params, log=quiet)
    b = train_output_layer(moved[:500], y[:500], moved[500:], y[500:], 4, params, log=quiet)
    assert a.best_step == b.best_step and a.best_validation_accuracy > 0.8
    np.testing.assert_allclose(a.layer.probabilities(x), b.layer.probabilities(moved), atol=2e-3)
    assert [r.validation_accuracy for r in a.history] == [r.validation_accuracy for r in b.history]
    assert accuracy(b.layer, moved[500:], y[500:]) == b.best_validation_accuracy
    # The layer keeps its standardisation for 8-bit exports: unfolded, it gives the same logits.
    mean, std, w, bias = b.layer.standardised()
    np.testing.assert_allclose(
        ((moved - mean) / std) @ w + bias, b.layer.logits(moved), rtol=1e-3, atol=1e-3
    )
