"""`retrain --onnx_output`: the classifier as ONNX, written by the extraction engine's own ONNX
writer, run by ONNX Runtime as a user would, agreeing with the frozen graph; labels and
preprocessing in its metadata_props."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from helpers import graph_probabilities, make_colour_folder, retrain_args
from poetslearn.backbone.architectures import get_architecture
from poetslearn.backbone.weights import build_backbone
from poetslearn.cli.main import cli
from poetslearn.data.images import load_image


def run_onnx(path, pixels: np.ndarray) -> tuple[np.ndarray, dict[str, str]]:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (name,) = [i.name for i in session.get_inputs()]
    probabilities = session.run(["probabilities"], {name: pixels.astype(np.float32)})[0]
    return probabilities, session.get_modelmeta().custom_metadata_map


@pytest.mark.parametrize(
    "extra",
    [[], ["--fine_tune_blocks", "1", "--fine_tune_epochs", "2"], ["--bottleneck_blocks", "2"]],
    ids=["plain", "fine_tuned", "block_features"],
)
def test_onnx_runtime_runs_the_export_as_the_graph_does(tmp_path, extra):
    images = make_colour_folder(tmp_path / "colours")
    result = CliRunner().invoke(
        cli,
        retrain_args(
            tmp_path,
            "--image_dir",
            str(images),
            "--onnx_output",
            str(tmp_path / "model.onnx"),
            *extra,
        ),
    )
    assert result.exit_code == 0, result.output
    assert f"ONNX model written to {tmp_path / 'model.onnx'}" in result.output
    paths = sorted(images.glob("*/*.png"))[:6]
    pixels = np.stack([load_image(p, 32) for p in paths])
    probabilities, meta = run_onnx(tmp_path / "model.onnx", pixels)
    expected = graph_probabilities(tmp_path / "out" / "graph.pb", pixels)
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    labels = (tmp_path / "out" / "labels.txt").read_text().split()
    assert meta["labels"].split("\n") == labels and meta["input_format"] == "pixels"
    # What a user compares: `poetslearn label`'s scores for the same files.
    graph = str(tmp_path / "out" / "graph.pb")
    labelled = CliRunner().invoke(cli, ["label", "--graph", graph, "--json", *map(str, paths)])
    for row, entry in zip(probabilities, json.loads(labelled.stdout)["results"]):
        for prediction in entry["predictions"]:
            assert abs(row[labels.index(prediction["label"])] - prediction["score"]) < 1e-4
    facts = json.loads(meta["poetslearn"])
    assert facts["artifact"] == "onnx" and facts["labels"] == labels
    assert facts["dataset"]["testing_percentage"] == 10
    assert "[N, 32, 32, 3]" in meta["input"]


def test_the_codelab_input_format_reaches_the_onnx_model(tmp_path, colour_dir):
    result = CliRunner().invoke(
        cli,
        retrain_args(
            tmp_path,
            "--image_dir",
            str(colour_dir),
            "--input_format",
            "codelab",
            "--onnx_output",
            str(tmp_path / "m.onnx"),
        ),
    )
    assert result.exit_code == 0, result.output
    pixels = np.stack([load_image(p, 32) for p in sorted(colour_dir.glob("*/*.png"))[:1]])
    scaled = (pixels - 128.0) / 128.0
    probabilities, meta = run_onnx(tmp_path / "m.onnx", scaled)
    expected = graph_probabilities(tmp_path / "out" / "graph.pb", scaled)  # codelab graph too
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    assert meta["input_format"] == "codelab" and "(x - 128) / 128" in meta["input"]
    # `label` scales as the model's metadata says (decoded and resized as in training, like
    # the .tflite; the codelab graph itself is fed as label_image.py feeds it).
    paths = sorted(colour_dir.glob("*/*.png"))[:3]
    scaled = (np.stack([load_image(p, 32) for p in paths]) - 128.0) / 128.0
    expected = np.sort(run_onnx(tmp_path / "m.onnx", scaled)[0], axis=1)[:, ::-1]
    np.testing.assert_allclose(label_scores(tmp_path / "m.onnx", paths), expected, atol=1e-6)


def label_scores(model, paths) -> np.ndarray:
    result = CliRunner().invoke(cli, ["label", "--graph", str(model), "--json", *map(str, paths)])
    assert result.exit_code == 0, result.output
    return np.array(
        [
            [p["score"] for p in entry["predictions"]]
            for entry in json.loads(result.stdout)["results"]
        ]
    )


def test_label_and_evaluate_read_the_onnx_model_alone(tmp_path, colour_dir):
    result = CliRunner().invoke(
        cli,
        retrain_args(
            tmp_path, "--image_dir", str(colour_dir), "--onnx_output", str(tmp_path / "m.onnx")
        ),
    )
    assert result.exit_code == 0, result.output
    alone = tmp_path / "alone" / "model.onnx"  # no labels file, no JSON beside it
    alone.parent.mkdir()
    alone.write_bytes((tmp_path / "m.onnx").read_bytes())
    paths = sorted(colour_dir.glob("*/*.*"))[::5]
    np.testing.assert_allclose(
        label_scores(alone, paths), label_scores(tmp_path / "out" / "graph.pb", paths), atol=1e-4
    )
    reports = []
    for model in (alone, tmp_path / "out" / "graph.pb"):
        evaluated = CliRunner().invoke(
            cli,
            [
                "evaluate",
                "--graph",
                str(model),
                "--image_dir",
                str(colour_dir),
                "--json",
                "--quiet",
            ],
        )
        assert evaluated.exit_code == 0, evaluated.output
        reports.append(json.loads(evaluated.stdout))
    assert reports[0]["confusion"] == reports[1]["confusion"] and reports[0]["n"] == reports[1]["n"]


def test_an_onnx_model_without_poetslearn_metadata_is_a_clear_error(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["pixels"], ["probabilities"])],
        "other",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [1, 3])],
    )
    onnx.save(helper.make_model(graph), tmp_path / "other.onnx")
    image = tmp_path / "x.png"
    from PIL import Image

    Image.new("RGB", (8, 8)).save(image)
    result = CliRunner().invoke(cli, ["label", "--graph", str(tmp_path / "other.onnx"), str(image)])
    assert result.exit_code != 0
    assert "carries no poetslearn metadata" in result.output and "ONNX Runtime" in result.output


@pytest.mark.parametrize("name", ["mobilenet_0.25_128", "inception_v3"])
def test_the_genuine_architectures_convert(name):
    """Random weights (no Inception V3 weights exist offline); the classifier ONNX Runtime runs
    equals TensorFlow's network with the same layer on top."""
    import tensorflow as tf

    from poetslearn.export.onnx_classifier import convert_classifier_to_onnx
    from poetslearn.extract.extractor import FeatureExtractor

    arch = get_architecture(name)
    backbone, _ = build_backbone(arch, "none")
    rng = np.random.default_rng(4)
    weights = rng.normal(0, 0.05, (arch.feature_dim, 5)).astype(np.float32)
    biases = rng.normal(0, 0.1, 5).astype(np.float32)
    size = arch.input_size
    pixels = rng.uniform(0, 255, (2, size, size, 3)).astype(np.float32)
    features = FeatureExtractor(arch, backbone, engine="tf").fn(pixels).numpy()
    expected = tf.nn.softmax(features @ weights + biases).numpy()
    model = convert_classifier_to_onnx(arch, backbone, weights, biases, metadata={"k": "v"})
    import onnxruntime

    session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    got = session.run(["probabilities"], {"pixels": pixels})[0]
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_onnx_output_with_a_tfhub_module_is_refused_before_any_work(tmp_path, colour_dir):
    result = CliRunner().invoke(
        cli,
        retrain_args(
            tmp_path,
            "--image_dir",
            str(colour_dir),
            "--tfhub_module",
            str(tmp_path),
            "--onnx_output",
            str(tmp_path / "m.onnx"),
        ),
    )
    assert result.exit_code == 1
    assert "a --tfhub_module's network cannot be written as ONNX" in result.output
    assert not (tmp_path / "bottlenecks").exists()
