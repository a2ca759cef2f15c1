"""The bottleneck cache: an interrupted extraction resumes, a damaged shard is recomputed, every
row gets its own image's vector."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from poetslearn.backbone.architectures import get_architecture
from poetslearn.backbone.weights import build_backbone
from poetslearn.data.image_folder import load_image_folder
from poetslearn.data.images import load_image
from poetslearn.extract import bottleneck_cache
from poetslearn.extract.bottleneck_cache import BottleneckCache
from poetslearn.extract.bottlenecks import compute_bottlenecks
from poetslearn.extract.extractor import FeatureExtractor


def quiet(*_):
    pass


class CountingExtractor:
    """Wraps a real extractor, counting images; can raise KeyboardInterrupt after some batches."""

    def __init__(self, inner: FeatureExtractor, interrupt_after: int | None = None) -> None:
        self.inner, self.arch, self.interrupt_after = inner, inner.arch, interrupt_after
        self.prepare, self.release_engines = inner.prepare, inner.release_engines
        self.images = self.calls = 0

    def __call__(self, pixels):
        if self.interrupt_after is not None and self.calls >= self.interrupt_after:
            raise KeyboardInterrupt
        self.calls += 1
        self.images += len(pixels)
        return self.inner(pixels)


@pytest.fixture
def tiny_extractor() -> FeatureExtractor:
    arch = get_architecture("test_tiny")
    backbone, _ = build_backbone(arch, "none")
    return FeatureExtractor(arch, backbone)


def open_cache(root: Path, extractor) -> BottleneckCache:
    return BottleneckCache(root, "test_tiny", extractor.fingerprint, extractor.feature_dim, quiet)


def assert_same_as_a_fresh_computation(vectors, data, root: Path, extractor) -> None:
    fresh, _, _ = compute_bottlenecks(
        data.splits, extractor, open_cache(root, extractor), 4, False, quiet
    )
    for split in fresh:
        np.testing.assert_allclose(vectors[split], fresh[split], rtol=1e-6)


def test_interrupted_extraction_resumes_where_it_stopped(
    tmp_path, colour_dir, tiny_extractor, monkeypatch
):
    monkeypatch.setattr(bottleneck_cache, "SHARD_ROWS", 4)
    data = load_image_folder(colour_dir, show_progress=False, warn=quiet)
    interrupted = CountingExtractor(tiny_extractor, interrupt_after=3)
    with pytest.raises(KeyboardInterrupt):
        compute_bottlenecks(
            data.splits, interrupted, open_cache(tmp_path, tiny_extractor), 4, False, quiet
        )
    assert interrupted.images == 12
    resumed = CountingExtractor(tiny_extractor)
    vectors, _, stats = compute_bottlenecks(
        data.splits, resumed, open_cache(tmp_path, tiny_extractor), 4, False, quiet
    )
    assert resumed.images == 30 - 12 and stats.cached == 12 and stats.computed == 18
    assert_same_as_a_fresh_computation(vectors, data, tmp_path / "fresh", tiny_extractor)


def test_damaged_cache_shard_is_reported_and_recomputed(
    tmp_path, colour_dir, tiny_extractor, monkeypatch
):
    monkeypatch.setattr(bottleneck_cache, "SHARD_ROWS", 10)
    data = load_image_folder(colour_dir, show_progress=False, warn=quiet)
    compute_bottlenecks(
        data.splits, tiny_extractor, open_cache(tmp_path, tiny_extractor), 10, False, quiet
    )
    shards = sorted(tmp_path.glob("test_tiny_*/shard-*.npz"))
    assert len(shards) == 3
    raw = bytearray(shards[0].read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # flip bits inside the vectors
    shards[0].write_bytes(bytes(raw))
    shards[1].write_bytes(shards[1].read_bytes()[:100])  # truncated

    warnings = []
    cache = BottleneckCache(tmp_path, "test_tiny", tiny_extractor.fingerprint, 16, warnings.append)
    # The truncated shard fails as its keys are read; the flipped bits when its vectors are.
    assert len(warnings) == 1 and "is damaged" in warnings[0] and shards[1].name in warnings[0]
    counting = CountingExtractor(tiny_extractor)
    vectors, _, stats = compute_bottlenecks(data.splits, counting, cache, 10, False, quiet)
    assert len(warnings) == 2 and "is damaged" in warnings[1] and shards[0].name in warnings[1]
    assert counting.images == 20 and stats.cached == 10 and stats.computed == 20
    assert not shards[0].exists() and not shards[1].exists()
    assert_same_as_a_fresh_computation(vectors, data, tmp_path / "fresh", tiny_extractor)


def test_every_row_gets_its_own_images_vector(tmp_path, colour_dir, tiny_extractor, monkeypatch):
    """Repeated images (one key, several rows and splits), failed images, cold and warm cache."""
    monkeypatch.setattr(bottleneck_cache, "SHARD_ROWS", 7)
    source = colour_dir / "red" / "img_1.jpg"
    for i in range(6):  # the same image under other names: several splits, several rows
        (colour_dir / ("red", "green", "blue")[i % 3] / f"copy_{i}.jpg").write_bytes(
            source.read_bytes()
        )
    # A PNG cut short: it passes the folder scan (its header is right) and fails to decode.
    (colour_dir / "green" / "broken.png").write_bytes(
        (colour_dir / "green" / "img_0.png").read_bytes()[:80]
    )
    data = load_image_folder(colour_dir, show_progress=False, warn=quiet)

    def check(vectors, splits):
        for name, split in splits.items():
            assert "broken.png" not in " ".join(split.images.names)
            expected = tiny_extractor(np.stack([load_image(p, 32) for p in split.images.paths]))
            np.testing.assert_allclose(vectors[name], expected, rtol=1e-5, atol=1e-6)

    cold = CountingExtractor(tiny_extractor)
    vectors, splits, stats = compute_bottlenecks(
        data.splits, cold, open_cache(tmp_path, tiny_extractor), 4, False, quiet
    )
    assert stats.failed == 1 and cold.images == 30  # the 6 copies share one computation
    check(vectors, splits)
    next(iter(sorted(tmp_path.glob("test_tiny_*/shard-*.npz")))).unlink()  # part-warm
    vectors, splits, stats = compute_bottlenecks(
        data.splits,
        CountingExtractor(tiny_extractor),
        open_cache(tmp_path, tiny_extractor),
        4,
        False,
        quiet,
    )
    assert 0 < stats.cached < 36 and stats.failed == 1 and stats.computed > 0
    check(vectors, splits)


def test_extraction_stopped_by_the_clock_keeps_what_it_finished(
    tmp_path, colour_dir, tiny_extractor
):
    data = load_image_folder(colour_dir, show_progress=False, warn=quiet)
    counting, batches = CountingExtractor(tiny_extractor), []

    def stop() -> bool:  # asked after each batch: out of time once two are done
        batches.append(1)
        return len(batches) >= 2

    cache = open_cache(tmp_path, tiny_extractor)
    vectors, splits, stats = compute_bottlenecks(
        data.splits, counting, cache, 4, False, quiet, stop=stop
    )
    assert stats.computed == 8 and stats.unfinished == 30 - 8 and stats.failed == 0
    assert "out of time (--time_budget), 22 images are left out" in stats.describe()
    assert sum(len(s) for s in splits.values()) == 8 == len(cache)
    for name, split in splits.items():  # each kept row has its own image's vector
        assert vectors[name].shape == (len(split), tiny_extractor.feature_dim)
    fresh, _, _ = compute_bottlenecks(
        {n: s for n, s in splits.items()},
        tiny_extractor,
        open_cache(tmp_path / "f", tiny_extractor),
        4,
        False,
        quiet,
    )
    for name in splits:
        np.testing.assert_allclose(vectors[name], fresh[name], rtol=1e-6)
