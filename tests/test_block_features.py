"""`retrain --bottleneck_blocks N`: bottlenecks from the pooled outputs of the top N blocks,
cached apart, exported, evaluated, and refused where they cannot be made."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from helpers import bottleneck_of, graph_probabilities, retrain_args
from poetslearn.cli.main import cli


def block_args(tmp_path: Path, colour_dir: Path, blocks: str, *extra: str) -> list[str]:
    return retrain_args(
        tmp_path, "--image_dir", str(colour_dir), "--bottleneck_blocks", blocks, "--json", *extra
    )


def test_two_blocks_make_the_bottleneck_export_it_and_evaluate_agrees(tmp_path, colour_dir):
    import tensorflow as tf

    from poetslearn.backbone.architectures import get_architecture
    from poetslearn.backbone.weights import build_backbone
    from poetslearn.data.images import load_image
    from poetslearn.extract.extractor import FeatureExtractor

    result = CliRunner().invoke(
        cli,
        block_args(
            tmp_path,
            colour_dir,
            "2",
            "--saved_model_dir",
            str(tmp_path / "saved"),
            "--tflite_output",
            str(tmp_path / "model.tflite"),
        ),
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["bottleneck_blocks"] == 2 and report["bottlenecks"]["computed"] == 30
    assert "the pooled outputs of the top 2 blocks (image, conv), 19 values each" in result.stderr
    meta = json.loads((tmp_path / "out" / "graph.pb.json").read_text())
    assert meta["feature_dim"] == 19 and meta["pooled_layers"] == ["image", "conv"]
    # The exported graph computes them: the image's mean (scaled as the network sees it) beside
    # the one-block bottleneck the plain extractor gives.
    images = sorted((tmp_path / "colours").glob("*/*.png"))
    pixels = np.stack([load_image(p, 32) for p in images])
    arch = get_architecture("test_tiny")
    plain = FeatureExtractor(arch, build_backbone(arch, "none")[0], "tf")(pixels)
    scaled_mean = ((pixels - arch.input_mean) / arch.input_std).mean(axis=(1, 2))
    exported = bottleneck_of(tmp_path / "out" / "graph.pb", pixels)
    np.testing.assert_allclose(exported, np.concatenate([scaled_mean, plain], axis=1), atol=1e-5)
    # The SavedModel and the .tflite hold the same network: the same probabilities.
    expected = graph_probabilities(tmp_path / "out" / "graph.pb", pixels)
    saved = tf.saved_model.load(str(tmp_path / "saved"))
    np.testing.assert_allclose(
        saved.signatures["serving_default"](images=tf.constant(pixels))["probabilities"].numpy(),
        expected,
        rtol=1e-5,
        atol=1e-6,
    )
    labelled = CliRunner().invoke(
        cli,
        [
            "label",
            "--graph",
            str(tmp_path / "model.tflite"),
            "--json",
            "--top_k",
            "3",
            *map(str, images[:3]),
        ],
    )
    assert labelled.exit_code == 0, labelled.output
    labels = (tmp_path / "out" / "labels.txt").read_text().split()
    for got, probabilities in zip(json.loads(labelled.stdout)["results"], expected):
        for prediction in got["predictions"]:
            assert (
                abs(prediction["score"] - probabilities[labels.index(prediction["label"])]) < 1e-4
            )
    evaluated = CliRunner().invoke(
        cli,
        [
            "evaluate",
            "--graph",
            str(tmp_path / "out" / "graph.pb"),
            "--image_dir",
            str(colour_dir),
            "--json",
            "--quiet",
        ],
    )
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.stdout)["accuracy"] == report["test_accuracy"]


def test_each_block_count_has_its_own_cache_and_all_is_every_block(tmp_path, colour_dir):
    first = CliRunner().invoke(cli, block_args(tmp_path, colour_dir, "2"))
    assert first.exit_code == 0, first.output
    # 'all' is both of test_tiny's blocks: the same vectors, all cached.
    every = CliRunner().invoke(cli, block_args(tmp_path, colour_dir, "all"))
    assert every.exit_code == 0, every.output
    assert json.loads(every.stdout)["bottlenecks"]["cached"] == 30
    # One block is the codelab's bottleneck: other vectors, computed anew and kept apart.
    one = CliRunner().invoke(cli, block_args(tmp_path, colour_dir, "1"))
    assert one.exit_code == 0, one.output
    assert json.loads(one.stdout)["bottlenecks"]["computed"] == 30
    assert len(list((tmp_path / "bottlenecks").glob("test_tiny_*"))) == 2


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            ["--bottleneck_blocks", "3"],
            "--bottleneck_blocks 3 is not possible for test_tiny; it can "
            "pool the top 1 to 2 blocks (or 'all').",
        ),
        (["--bottleneck_blocks", "0"], "--bottleneck_blocks 0 is not possible"),
        (["--bottleneck_blocks", "two"], "'two' is neither a number of blocks nor 'all'."),
        (
            ["--bottleneck_blocks", "2", "--fine_tune_blocks", "1"],
            "--bottleneck_blocks and --fine_tune_blocks cannot be combined",
        ),
        (
            ["--bottleneck_blocks", "all", "--tfhub_module", "somewhere"],
            "--bottleneck_blocks needs an --architecture from the registry",
        ),
    ],
)
def test_impossible_block_counts_are_usage_errors_before_any_work(
    tmp_path, colour_dir, extra, message
):
    result = CliRunner().invoke(cli, retrain_args(tmp_path, "--image_dir", str(colour_dir), *extra))
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "bottlenecks").exists()


def test_mobilenet_pools_every_block_and_the_fast_engine_agrees():
    from poetslearn.backbone.architectures import get_architecture
    from poetslearn.backbone.weights import build_backbone
    from poetslearn.extract.extractor import FeatureExtractor

    arch = get_architecture("mobilenet_0.25_128")
    backbone = build_backbone(arch, "none")[0]
    one = FeatureExtractor(arch, backbone, "tf")
    every = FeatureExtractor(arch, backbone, "auto", bottleneck_blocks="all")
    # The stem and 13 blocks: 8 + 16 + 32 + 32 + 64 + 64 + 128 * 6 + 256 * 2 channels.
    assert every.bottleneck_blocks == 14 and every.feature_dim == 1496
    pixels = np.random.default_rng(0).uniform(0, 255, (3, 128, 128, 3)).astype(np.float32)
    features = every(pixels)  # auto: a fast engine, checked against TensorFlow to 1e-4
    assert every.engine_name != "tf"
    np.testing.assert_allclose(features[:, -256:], one(pixels), rtol=1e-4, atol=1e-4)
    # One block keeps the fingerprint (and so the caches) every earlier run made.
    assert (
        FeatureExtractor(arch, backbone, "tf", bottleneck_blocks=1).fingerprint
        == one.fingerprint
        != every.fingerprint
    )


def test_a_worker_given_the_description_builds_the_same_extractor(colour_dir):
    import pickle

    from poetslearn.backbone.load import load_backbone
    from poetslearn.config import RetrainConfig
    from poetslearn.context import RunContext
    from poetslearn.data.datasets import load_dataset
    from poetslearn.extract.extractor import build_extractor

    dataset = load_dataset(colour_dir, Path("."), 10, 10, show_progress=False)
    config = RetrainConfig(architecture="test_tiny", weights="none", bottleneck_blocks="all")
    extractor = build_extractor(
        load_backbone("test_tiny", "none"), config, dataset, RunContext.silent()
    )
    # What a Ray worker receives: the pickled description, never the model.
    remote = pickle.loads(pickle.dumps(extractor.description)).build()
    assert remote.bottleneck_blocks == 2 and remote.fingerprint == extractor.fingerprint
    pixels = np.random.default_rng(1).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(remote(pixels), extractor(pixels), rtol=1e-6)
