"""CIFAR-10: the real archive from ../shared, a damaged archive a clear error."""

from __future__ import annotations

import numpy as np
import pytest

from poetslearn.data.cifar10 import load_cifar10
from poetslearn.errors import DataError


def test_real_cifar10_from_shared(shared):
    data = load_cifar10(shared / "data", download=False)
    assert data.class_names[:3] == ["airplane", "automobile", "bird"]
    train, val, test = (data.splits[s] for s in ("train", "validation", "test"))
    assert train.images.pixels.shape == (45000, 32, 32, 3) and len(val) == 5000
    assert test.images.pixels.shape == (10000, 32, 32, 3)
    assert np.bincount(test.labels).tolist() == [1000] * 10
    assert (
        np.bincount(train.labels, minlength=10) + np.bincount(val.labels, minlength=10)
    ).tolist() == [5000] * 10
    # The official first labels: frog, truck, truck, deer, automobile (train); cat, ship (test).
    assert train.labels[:5].tolist() == [6, 9, 9, 4, 1]
    assert test.labels[:4].tolist() == [3, 8, 8, 0]
    assert val.images.names[0] == "cifar10_train_45000_horse.png"


def test_damaged_cifar_archive_is_a_clear_error(tmp_path, tiny_cifar):
    archive = tiny_cifar / "cifar-10-python.tar.gz"
    archive.write_bytes(archive.read_bytes()[:500])
    with pytest.raises(DataError, match="damaged or truncated"):
        load_cifar10(tiny_cifar, download=False)
