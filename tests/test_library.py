"""The library pieces on their own: export fidelity, cache, splits, decoding, CIFAR-10."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import make_colour_folder, randomise_batch_norm
from poetslearn.backbone.architectures import get_architecture
from poetslearn.backbone.weights import build_backbone
from poetslearn.config import RetrainConfig
from poetslearn.data.cifar10 import load_cifar10
from poetslearn.data.image_folder import load_image_folder, split_of
from poetslearn.data.images import decode_image, load_image
from poetslearn.errors import DataError, EngineError, ImageError
from poetslearn.extract import bottleneck_cache
from poetslearn.extract.bottleneck_cache import BottleneckCache
from poetslearn.extract.bottlenecks import compute_bottlenecks
from poetslearn.extract.extractor import FeatureExtractor
from poetslearn.pipeline import retrain


def quiet(*_):
    pass


def tiny_config(tmp_path: Path, **overrides) -> RetrainConfig:
    settings = dict(
        architecture="test_tiny",
        weights="none",
        bottleneck_dir=tmp_path / "bottlenecks",
        output_graph=tmp_path / "out" / "graph.pb",
        output_labels=tmp_path / "out" / "labels.txt",
        how_many_training_steps=200,
        show_progress=False,
        summaries_dir=tmp_path / "summaries",
    )
    settings.update(overrides)
    return RetrainConfig(**settings)


def test_frozen_graph_gives_the_in_memory_probabilities(tmp_path, colour_dir):
    import tensorflow as tf

    result = retrain(tiny_config(tmp_path, image_dir=colour_dir), log=quiet, warn=quiet)
    paths = sorted((colour_dir / "green").iterdir())[:3]
    pixels = np.stack([load_image(p, 32) for p in paths])
    expected = result.trained.layer.probabilities(result.extractor(pixels))

    # Plain TensorFlow 2, no poetslearn code: import the GraphDef and run it.
    graph_def = tf.compat.v1.GraphDef.FromString((tmp_path / "out" / "graph.pb").read_bytes())
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    with tf.compat.v1.Session(graph=graph) as session:
        got = session.run("final_result:0", {"input:0": pixels})
        # Raw, un-resized pixels of another size go through the graph's own resize.
        raw = np.asarray(Image.open(paths[0]).convert("RGB"), np.float32)[np.newaxis]
        raw_probs = session.run("final_result:0", {"input:0": raw})
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert got.shape == (3, 3) and np.allclose(got.sum(axis=1), 1.0, atol=1e-5)
    assert raw_probs.argmax() == 1  # green


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


def test_splits_are_stable_when_images_are_added(tmp_path):
    folder = make_colour_folder(tmp_path / "data", per_class=40)
    before = load_image_folder(folder, show_progress=False, warn=quiet)
    make_colour_folder(tmp_path / "more", per_class=40)
    for colour_dir in (tmp_path / "more").iterdir():
        for image in colour_dir.iterdir():
            image.rename(folder / colour_dir.name / f"extra_{image.name}")
    after = load_image_folder(folder, show_progress=False, warn=quiet)
    for split in ("train", "validation", "test"):
        old = set(before.splits[split].images.names)
        new = set(after.splits[split].images.names)
        assert old <= new, split
    assert len(after.splits["train"]) > len(before.splits["train"])


def test_nohash_suffix_keeps_images_together():
    assert split_of("a/photo_nohash_1.jpg", 10, 10) == split_of("a/photo_nohash_2.jpg", 10, 10)
    placements = {split_of(f"x/img_{i}.jpg", 10, 10) for i in range(200)}
    assert placements == {"train", "validation", "test"}


def test_every_class_gets_a_validation_and_a_test_image(tmp_path):
    folder = make_colour_folder(tmp_path / "data", per_class=3)
    data = load_image_folder(folder, show_progress=False, warn=quiet)
    for split in data.splits.values():
        assert sorted(set(split.labels.tolist())) == [0, 1, 2]


def test_labels_are_normalised_and_collisions_rejected(tmp_path):
    folder = make_colour_folder(
        tmp_path / "data", per_class=3, colours={"Red Roses": (255, 0, 0), "blåbär": (0, 0, 255)}
    )
    data = load_image_folder(folder, show_progress=False, warn=quiet)
    assert data.class_names == ["red roses", "blåbär"]  # in folder-name order
    (folder / "red_roses").mkdir()
    with pytest.raises(DataError, match="both give the label 'red roses'"):
        load_image_folder(folder, show_progress=False, warn=quiet)


def test_non_images_are_skipped_with_a_warning(tmp_path):
    folder = make_colour_folder(tmp_path / "data", per_class=4)
    (folder / "red" / "notes.txt").write_text("hello")
    (folder / "red" / "empty.jpg").write_bytes(b"")
    (folder / "red" / ".DS_Store").write_bytes(b"\0\1")
    warnings = []
    data = load_image_folder(folder, show_progress=False, warn=warnings.append)
    assert sum(len(s) for s in data.splits.values()) == 12
    assert any("notes.txt" in w and "not an image" in w for w in warnings)
    assert any("empty.jpg" in w and "empty" in w for w in warnings)
    assert not any(".DS_Store" in w for w in warnings)  # hidden files are not even looked at


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **kw)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "mode, fmt, tolerance",
    [
        ("L", "PNG", 0),
        ("P", "GIF", 0),
        ("RGBA", "PNG", 0),
        ("RGB", "BMP", 0),
        ("CMYK", "JPEG", 3),
        ("CMYK", "TIFF", 0),
        ("YCbCr", "JPEG", 3),
    ],
)
def test_decode_any_mode_to_rgb_keeps_the_colour(mode, fmt, tolerance):
    img = Image.new("RGB", (20, 10), (200, 100, 50)).convert(mode)
    # What the mode itself holds, in RGB: gray for L, the palette's colour for P, the original
    # for CMYK (an inverted or raw-channel decode would be far off).
    expected = np.asarray(img.convert("RGB"), np.int16)
    pixels = decode_image(encode(img, fmt), "x")
    assert pixels.shape == (10, 20, 3) and pixels.dtype == np.uint8
    assert np.abs(pixels.astype(np.int16) - expected).max() <= tolerance, pixels[0, 0]
    if mode in ("RGB", "CMYK", "RGBA"):
        assert np.abs(pixels[0, 0].astype(int) - (200, 100, 50)).max() <= tolerance


def test_decode_composites_transparency_onto_white():
    img = Image.new("RGBA", (4, 4), (200, 100, 50, 128))
    pixels = decode_image(encode(img, "PNG"), "x").astype(float)
    alpha = 128 / 255
    expected = np.array([200, 100, 50]) * alpha + 255 * (1 - alpha)  # (227, 178, 153)
    assert np.abs(pixels[0, 0] - expected).max() <= 1


def test_decode_sixteen_bit_scales_every_value_to_eight_bits():
    values = np.array([[0, 1000, 32767, 40000, 65535]], np.uint16)
    pixels = decode_image(encode(Image.fromarray(values), "PNG"), "deep.png")
    expected = np.round(values.astype(float) * 255 / 65535)  # 0, 4, 127, 156, 255
    assert pixels.shape == (1, 5, 3)
    for channel in range(3):  # gray: every channel the same value
        np.testing.assert_array_equal(pixels[..., channel], expected)


def test_decode_rejects_garbage_with_the_file_name():
    with pytest.raises(ImageError, match="holiday.jpg is not a readable image"):
        decode_image(b"\xff\xd8\xff garbage", "holiday.jpg")


def test_decode_applies_exif_orientation():
    img = Image.new("RGB", (30, 10), (0, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    assert decode_image(encode(img, "JPEG", exif=exif), "x").shape == (30, 10, 3)


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


@pytest.mark.parametrize(
    "name",
    [
        "mobilenet_1.0_224",
        "mobilenet_0.75_192",
        "mobilenet_0.50_160",
        "mobilenet_0.25_128",
        "inception_v3",
    ],
)
def test_architectures_give_their_penultimate_features(name):
    arch = get_architecture(name)
    backbone, info = build_backbone(arch, "none")
    extractor = FeatureExtractor(arch, backbone)
    # Raw pixels of an arbitrary size: the extractor resizes them itself.
    features = extractor(np.random.default_rng(0).uniform(0, 255, (2, 50, 70, 3)).astype("f4"))
    expected = 2048 if name == "inception_v3" else int(1024 * float(name.split("_")[1]))
    assert features.shape == (2, expected) == (2, arch.feature_dim)
    assert info.kind == "random"


def test_registry_has_all_16_mobilenets_and_rejects_unknown_names():
    from poetslearn.backbone.architectures import architecture_names

    names = architecture_names(include_tests=False)
    assert len([n for n in names if n.startswith("mobilenet_")]) == 16
    with pytest.raises(ValueError, match="Valid names: mobilenet_1.0_224"):
        get_architecture("mobilenet_2.0_224")


@pytest.mark.parametrize("engine", ["tflite", "onnxruntime"])
@pytest.mark.parametrize("name", ["test_tiny", "mobilenet_0.25_128", "inception_v3"])
def test_fast_engines_match_tensorflow(name, engine):
    arch = get_architecture(name)
    backbone, _ = build_backbone(arch, "none")
    randomise_batch_norm(backbone)
    fast = FeatureExtractor(arch, backbone, engine=engine)
    reference = FeatureExtractor(arch, backbone, engine="tf")
    # 11 images of CIFAR size, enlarged inside the engine; batches of 8, the last one padded.
    pixels = np.random.default_rng(1).uniform(0, 255, (11, 32, 32, 3)).astype(np.float32)
    got = np.concatenate([fast(pixels[:8]), fast(pixels[8:])])
    expected = reference(pixels)
    assert fast.engine_name == engine and reference.engine_name == "tf"
    assert np.abs(expected).max() > 0
    assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max()


def test_auto_engine_takes_the_architectures_engines_in_order(monkeypatch):
    import dataclasses

    from poetslearn.extract import engines

    arch = dataclasses.replace(get_architecture("test_tiny"), engines=("onnxruntime", "tflite"))
    backbone, _ = build_backbone(arch, "none")
    pixels = np.zeros((3, 32, 32, 3), np.float32)
    extractor = FeatureExtractor(arch, backbone, engine="auto")
    extractor(pixels)
    assert extractor.engine_name == "onnxruntime"

    def broken(*args, **kwargs):
        raise RuntimeError("onnx converter exploded")

    monkeypatch.setattr("poetslearn.backbone.onnx.convert_to_onnx", broken)
    extractor = FeatureExtractor(arch, backbone, engine="auto")
    extractor(pixels)
    assert extractor.engine_name == "tflite"
    # "auto" only ever picks engines whose features equal TensorFlow's.
    from poetslearn.backbone.architectures import ARCHITECTURES

    assert all(engines.ENGINES[name].exact for a in ARCHITECTURES.values() for name in a.engines)


def test_int8_engine_is_near_float_and_keyed_by_its_calibration():
    arch = get_architecture("test_tiny")
    backbone, _ = build_backbone(arch, "none")
    rng = np.random.default_rng(4)
    calibration = rng.uniform(0, 255, (20, 32, 32, 3)).astype(np.float32)
    with pytest.raises(EngineError, match="needs calibration images"):
        FeatureExtractor(arch, backbone, engine="tflite_int8")
    int8 = FeatureExtractor(arch, backbone, engine="tflite_int8", int8_calibration=calibration)
    exact = FeatureExtractor(arch, backbone, engine="tflite")
    pixels = rng.uniform(0, 255, (11, 32, 32, 3)).astype(np.float32)
    approximate, reference = int8(pixels), exact(pixels)
    assert int8.engine_name == "tflite_int8"
    error = np.linalg.norm(approximate - reference) / np.linalg.norm(reference)
    assert 0 < error < 0.05  # quantized, so not equal; calibrated, so close
    other = FeatureExtractor(
        arch, backbone, engine="tflite_int8", int8_calibration=calibration[:10]
    )
    fingerprints = {int8.fingerprint, exact.fingerprint, other.fingerprint}
    assert len(fingerprints) == 3
    assert exact.fingerprint == FeatureExtractor(arch, backbone, engine="onnxruntime").fingerprint


def test_auto_engine_falls_back_to_tensorflow_when_no_fast_engine_works(monkeypatch):
    from poetslearn.extract import engines

    def broken(*args, **kwargs):
        raise RuntimeError("converter exploded")

    monkeypatch.setattr(engines, "convert_to_tflite", broken)
    monkeypatch.setattr("poetslearn.backbone.onnx.convert_to_onnx", broken)
    arch = get_architecture("test_tiny")
    backbone, _ = build_backbone(arch, "none")
    warnings = []
    extractor = FeatureExtractor(arch, backbone, engine="auto", warn=warnings.append)
    features = extractor(np.zeros((3, 32, 32, 3), np.float32))
    assert features.shape == (3, 16) and extractor.engine_name == "tf"
    assert "tflite: converter exploded" in warnings[0]
    assert "onnxruntime: converter exploded" in warnings[0]


def test_a_requested_engine_that_cannot_run_says_which_and_what_to_do():
    import keras

    from poetslearn.backbone.onnx import UnsupportedLayer, convert_to_onnx

    inputs = keras.Input((32, 32, 3))
    outputs = keras.layers.Dense(4)(keras.layers.Flatten()(inputs))
    backbone = keras.Model(inputs, outputs)
    arch = get_architecture("test_tiny")
    with pytest.raises(UnsupportedLayer, match="kind Flatten"):
        convert_to_onnx(arch, backbone)
    tiny, _ = build_backbone(arch, "none")
    extractor = FeatureExtractor(arch, tiny, engine="onnxruntime")
    extractor.backbone = backbone  # a network the converter cannot express
    with pytest.raises(EngineError, match="onnxruntime engine cannot run test_tiny.*--engine tf"):
        extractor(np.zeros((1, 32, 32, 3), np.float32))


def test_the_tflite_engine_enlarges_small_images_as_the_exported_graph_does():
    """The engine enlarges inside TFLite with plain bilinear (TFLite has no antialiased resize);
    the graph resizes with antialiasing. When enlarging the two agree, so the engine's vectors
    are the graph's."""
    from poetslearn.extract.engines import build_engine

    arch = get_architecture("test_tiny")
    backbone, _ = build_backbone(arch, "none")
    small = np.random.default_rng(2).uniform(0, 255, (4, 20, 24, 3)).astype(np.float32)
    reference = FeatureExtractor(arch, backbone, engine="tf")(small)  # the graph's own resize
    engine = build_engine("tflite", arch, backbone, 4, (20, 24))
    np.testing.assert_allclose(engine(small), reference, rtol=1e-4, atol=1e-5)


def test_prepare_shrinks_large_images_only(tiny_extractor):
    small = np.zeros((2, 20, 20, 3), np.float32)
    large = np.zeros((2, 64, 48, 3), np.float32)
    assert tiny_extractor.prepare(small).shape == (2, 20, 20, 3)
    assert tiny_extractor.prepare(large).shape == (2, 32, 32, 3)


def test_progress_without_a_terminal_prints_tenths_with_rate_and_eta(capsys):
    from poetslearn.progress import progress

    with progress(100, "Work", "img") as bar:
        for _ in range(100):
            bar.update(1)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 10 and lines[0].startswith("Work: 10% (10/100), ")
    assert "img/s" in lines[0] and "s left" in lines[0] and "left" not in lines[-1]
    with progress(100, "Quiet", "img", enabled=False) as bar:
        bar.update(100)
    assert capsys.readouterr().err == ""


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


def test_line_progress_prints_each_tenth_once_when_threads_update_it(capsys):
    from concurrent.futures import ThreadPoolExecutor

    from poetslearn.progress import _LineProgress

    bar = _LineProgress(1000, "Scanning images", "file")
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: bar.update(1), range(1000)))
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(":")[1].split("%")[0].strip() for line in lines] == [
        str(p) for p in range(10, 101, 10)
    ]
