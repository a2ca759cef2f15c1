"""The fast engines: each agrees with TensorFlow, auto takes them in order and falls back, int8
near float, small images enlarged as the graph does."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import randomise_batch_norm
from poetslearn.backbone.architectures import get_architecture
from poetslearn.backbone.weights import build_backbone
from poetslearn.errors import EngineError
from poetslearn.extract.extractor import FeatureExtractor


@pytest.fixture
def tiny_extractor() -> FeatureExtractor:
    arch = get_architecture("test_tiny")
    backbone, _ = build_backbone(arch, "none")
    return FeatureExtractor(arch, backbone)


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
