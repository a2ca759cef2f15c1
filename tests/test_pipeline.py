"""The seams of the retrain pipeline: the picklable extractor description and the registries."""

from __future__ import annotations

import dataclasses
import pickle
import subprocess
import sys

import numpy as np
import pytest

from poetslearn.backbone.load import fetch_backbone
from poetslearn.config import RetrainConfig
from poetslearn.context import RunContext
from poetslearn.data.datasets import load_dataset
from poetslearn.errors import PoetslearnError, WeightsError
from poetslearn.extract.engines import ENGINE_CHOICES, ENGINES, build_engine, is_exact
from poetslearn.extract.extractor import ExtractorSpec, build_extractor

# Another process: unpickle a spec from stdin, build the extractor, print its fingerprint and
# the features of fixed pixels (what a Ray worker will do with what it receives).
OTHER_PROCESS = """
import pickle, sys
import numpy as np
spec = pickle.loads(sys.stdin.buffer.read())
extractor = spec.build()
pixels = np.random.default_rng(5).uniform(0, 255, (3, 32, 32, 3)).astype(np.float32)
sys.stdout.buffer.write(pickle.dumps((extractor.fingerprint, extractor(pixels),
                                      extractor.engine_name)))
"""


def build_elsewhere(spec: ExtractorSpec):
    done = subprocess.run(
        [sys.executable, "-c", OTHER_PROCESS],
        input=pickle.dumps(spec),
        capture_output=True,
        check=True,
        timeout=300,
    )
    return pickle.loads(done.stdout)


def extractor_for(config: RetrainConfig):
    dataset = load_dataset(config.image_dir, config.data_dir, 10, 10, show_progress=False)
    backbone = fetch_backbone(config, RunContext.silent())
    return build_extractor(backbone, config, dataset, RunContext.silent())


@pytest.mark.processes
@pytest.mark.parametrize("engine", ["tflite", "tflite_int8"])
def test_spec_builds_the_same_extractor_in_another_process(colour_dir, engine):
    config = RetrainConfig(
        architecture="test_tiny", weights="none", image_dir=colour_dir, engine=engine, seed=3
    )
    extractor = extractor_for(config)
    spec = extractor.description
    assert spec.engine == engine and spec.weights == "none" and spec.seed == 3
    assert (spec.int8_calibration is None) == is_exact(engine)
    fingerprint, features, engine_name = build_elsewhere(spec)
    pixels = np.random.default_rng(5).uniform(0, 255, (3, 32, 32, 3)).astype(np.float32)
    assert fingerprint == extractor.fingerprint
    np.testing.assert_allclose(features, extractor(pixels), rtol=1e-5, atol=1e-6)
    assert engine_name == extractor.engine_name == engine


def test_spec_pins_a_weights_file_by_its_hash(shared, tmp_path, monkeypatch, colour_dir):
    import shutil

    monkeypatch.setenv("POETSLEARN_CACHE_DIR", str(tmp_path / "cache"))
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(shared / "models" / "mobilenet_v1_0.25_128_frozen.tgz", models)
    config = RetrainConfig(
        architecture="mobilenet_0.25_128", image_dir=colour_dir, model_dir=models, engine="tf"
    )
    extractor = extractor_for(config)
    spec = extractor.description
    assert spec.weights == str(models / "mobilenet_v1_0.25_128_frozen.tgz")
    assert spec.weights_sha256 == (
        "30af63cf9039861bc03f86c7b8092fab754d51b27f042830c456ddbfa2b72fce"
    )
    assert spec.build().fingerprint == extractor.fingerprint  # no --model_dir needed
    with pytest.raises(WeightsError, match="the file changed"):
        dataclasses.replace(spec, weights_sha256="0" * 64).build()


def test_engine_registry_knows_each_engine_and_how_many_threads_it_may_use():
    from poetslearn.backbone.architectures import get_architecture
    from poetslearn.backbone.weights import build_backbone

    assert ENGINE_CHOICES == ("auto", "tflite", "onnxruntime", "tf", "tflite_int8")
    assert [name for name, kind in ENGINES.items() if not kind.exact] == ["tflite_int8"]
    arch = get_architecture("test_tiny")
    backbone, _ = build_backbone(arch, "none")
    pixels = np.random.default_rng(1).uniform(0, 255, (5, 32, 32, 3)).astype(np.float32)
    reference = build_engine("tf", arch, backbone, 4, (32, 32))(pixels)
    for name in ("tflite", "onnxruntime"):
        engine = build_engine(name, arch, backbone, 4, (32, 32), threads=1)
        np.testing.assert_allclose(engine(pixels), reference, rtol=1e-4, atol=1e-5)
    assert build_engine("tflite", arch, backbone, 4, (32, 32), threads=1).interpreter is not None
    with pytest.raises(ValueError, match="no engine called 'fast'"):
        build_engine("fast", arch, backbone, 4, (32, 32))


class SpecBuiltOutOfOrder:
    """A stand-in for a distributed backend: it builds its own extractor from the picklable
    description (as a worker elsewhere would) and returns the batches last first."""

    used = 0

    def run(self, batches, splits, extractor):
        from poetslearn.extract.backends import LocalExtraction

        SpecBuiltOutOfOrder.used += 1
        spec = pickle.loads(pickle.dumps(extractor.description))
        worker = spec.build()
        return reversed(list(LocalExtraction().run(batches, splits, worker)))


def test_an_extraction_backend_registers_beside_local_and_gives_the_same_run(
    tmp_path, colour_dir, monkeypatch
):
    from poetslearn.extract.backends import registry as extraction
    from poetslearn.pipeline import retrain

    monkeypatch.setitem(
        extraction.EXTRACTION_BACKENDS, "elsewhere", lambda config: SpecBuiltOutOfOrder()
    )
    results = {}
    for name in ("local", "elsewhere"):
        config = RetrainConfig(
            architecture="test_tiny",
            weights="none",
            image_dir=colour_dir,
            bottleneck_dir=tmp_path / name / "b",
            summaries_dir="",
            output_graph=tmp_path / name / "g.pb",
            output_labels=tmp_path / name / "l.txt",
            how_many_training_steps=60,
            bottleneck_batch_size=4,
            show_progress=False,
            extraction=name,
        )
        results[name] = retrain(config, log=lambda m: None, warn=lambda m: None)
    assert SpecBuiltOutOfOrder.used == 1
    local, elsewhere = results["local"], results["elsewhere"]
    assert elsewhere.extraction.computed == local.extraction.computed == 30
    np.testing.assert_allclose(
        elsewhere.trained.layer.weights, local.trained.layer.weights, rtol=1e-4, atol=1e-6
    )
    assert elsewhere.trained.best_step == local.trained.best_step
    with pytest.raises(PoetslearnError, match="Unknown extraction backend .nowhere."):
        retrain(
            dataclasses.replace(config, extraction="nowhere", image_dir=tmp_path / "none"),
            log=lambda m: None,
            warn=lambda m: None,
        )  # refused before the data is read
