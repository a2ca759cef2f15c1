"""`retrain --test_time_mirror`: validation and test scored on each image and its mirror image,
averaged, and every export doing the same, so `label` and `evaluate` give what retrain reported."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from helpers import graph_probabilities, retrain_args
from poetslearn.cli.main import cli
from poetslearn.data.mirror import MirroredImages, average_with_mirror, mirrored_splits
from poetslearn.data.sources import ArrayImages, Split
from poetslearn.errors import DataError


def random_folder(root: Path, classes=("a", "b", "c"), per_class: int = 12) -> Path:
    """Random pictures whose mirror images differ, so mirroring changes every score."""
    rng = np.random.default_rng(7)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (32, 40, 3))
            pixels[:, :20] = (pixels[:, :20] + 60 * c) % 256  # left half tells the class
            Image.fromarray(pixels.astype(np.uint8)).save(root / name / f"{i}.png")
    return root


def test_mirror_images_are_flipped_and_keyed_apart_from_their_originals():
    pixels = np.arange(2 * 4 * 5 * 3, dtype=np.uint8).reshape(2, 4, 5, 3)
    base = ArrayImages(pixels, ["x", "y"])
    mirrored = MirroredImages(base)
    out, failures = mirrored.load_batch([1, 0], 4)
    assert failures == {} and np.array_equal(out, pixels[[1, 0], :, ::-1].astype(np.float32))
    assert np.array_equal(mirrored.read_original(0), pixels[0, :, ::-1])
    assert set(mirrored.keys()).isdisjoint(base.keys()) and len(set(mirrored.keys())) == 2
    assert mirrored.keys() == MirroredImages(ArrayImages(pixels.copy(), ["p", "q"])).keys()
    assert mirrored.subset([1]).keys() == [mirrored.keys()[1]]
    assert mirrored.names == ["x (mirrored)", "y (mirrored)"]


def test_only_validation_and_test_are_mirrored_and_averaged():
    split = Split(ArrayImages(np.zeros((2, 4, 4, 3), np.uint8), ["x", "y"]), np.array([0, 1]))
    assert sorted(mirrored_splits({"train": split, "validation": split, "test": split})) == [
        "test_mirror",
        "validation_mirror",
    ]
    features = {
        "train": np.ones((2, 3)),
        "validation": np.zeros((2, 3)),
        "validation_mirror": np.full((2, 3), 4.0),
    }
    averaged = average_with_mirror(features)
    assert sorted(averaged) == ["train", "validation"]
    assert np.array_equal(averaged["validation"], np.full((2, 3), 2.0))
    assert np.array_equal(averaged["train"], np.ones((2, 3)))
    with pytest.raises(DataError, match="1 validation_mirror|2 validation images but 1"):
        average_with_mirror({**features, "validation_mirror": np.zeros((1, 3))})


def export_args(out: Path) -> list[str]:
    return [
        "--tflite_output",
        str(out / "graph.tflite"),
        "--onnx_output",
        str(out / "graph.onnx"),
        "--saved_model_dir",
        str(out / "saved_model"),
    ]


def every_export(out: Path, pixels: np.ndarray) -> dict[str, np.ndarray]:
    """Each export's probabilities for [N, 32, 32, 3] pixels (test_tiny's input size)."""
    import onnxruntime
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    session = onnxruntime.InferenceSession(
        str(out / "graph.onnx"), providers=["CPUExecutionProvider"]
    )
    interpreter = Interpreter(model_path=str(out / "graph.tflite"))
    interpreter.allocate_tensors()

    def tflite(image):
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image[np.newaxis])
        interpreter.invoke()
        return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0]

    serving = tf.saved_model.load(str(out / "saved_model")).signatures["serving_default"]
    return {
        "graph": graph_probabilities(out / "graph.pb", pixels),
        "onnx": session.run(None, {"pixels": pixels})[0],
        "tflite": np.stack([tflite(image) for image in pixels]),
        "saved_model": serving(images=tf.constant(pixels))["probabilities"].numpy(),
    }


@pytest.mark.parametrize("fine_tune_blocks", ["0", "1"])
def test_every_export_scores_an_image_as_its_mirror_and_evaluate_agrees(tmp_path, fine_tune_blocks):
    folder = random_folder(tmp_path / "pictures")
    args = retrain_args(tmp_path, "--image_dir", str(folder), "--json")
    tuned = ["--fine_tune_blocks", fine_tune_blocks, "--fine_tune_epochs", "2"]
    runs = {}
    for name, extra in (("plain", []), ("mirror", ["--test_time_mirror"])):
        out = tmp_path / name
        run_args = [a.replace(str(tmp_path / "out"), str(out)) for a in args]
        result = CliRunner().invoke(cli, run_args + tuned + export_args(out) + extra)
        assert result.exit_code == 0, result.output
        runs[name] = (out, json.loads(result.stdout), result.stderr)
    out, report, log = runs["mirror"]
    assert "with its mirror image, averaged (--test_time_mirror)" in log
    sizes = json.loads((out / "graph.pb.json").read_text())["dataset"]["sizes"]
    if fine_tune_blocks == "1":  # the mirror images' activations are cached like the others'
        mirrored = sizes["validation"] + sizes["test"]
        assert f"Activations at image (32x32x3): computed {mirrored}, 36 were cached" in log
    meta = json.loads((out / "graph.pb.json").read_text())
    assert meta["test_time_mirror"] is True
    assert json.loads((out / "graph.tflite.json").read_text())["test_time_mirror"] is True
    assert json.loads((runs["plain"][0] / "graph.pb.json").read_text())["test_time_mirror"] is False

    pixels = np.random.default_rng(1).uniform(0, 255, (3, 32, 32, 3)).astype(np.float32)
    mirror = np.ascontiguousarray(pixels[:, :, ::-1])
    scores = {name: every_export(runs[name][0], pixels) for name in runs}
    mirrors = {name: every_export(runs[name][0], mirror) for name in runs}
    for kind, probabilities in scores["mirror"].items():
        np.testing.assert_allclose(probabilities, mirrors["mirror"][kind], atol=1e-6)
        np.testing.assert_allclose(probabilities, scores["mirror"]["graph"], atol=1e-5)
    # Without the flag an image and its mirror image score differently (the check above bites).
    assert np.abs(scores["plain"]["graph"] - mirrors["plain"]["graph"]).max() > 1e-3

    for graph in ("graph.pb", "graph.tflite", "graph.onnx"):
        evaluated = CliRunner().invoke(
            cli,
            [
                "evaluate",
                "--graph",
                str(out / graph),
                "--image_dir",
                str(folder),
                "--json",
                "--quiet",
            ],
        )
        assert evaluated.exit_code == 0, evaluated.output
        assert json.loads(evaluated.stdout)["accuracy"] == report["test_accuracy"]


def test_retrain_scores_each_test_image_as_the_exported_graph_does(tmp_path):
    from poetslearn import RetrainConfig, retrain

    folder = random_folder(tmp_path / "pictures")
    config = RetrainConfig(
        architecture="test_tiny",
        weights="none",
        image_dir=folder,
        bottleneck_dir=tmp_path / "bottlenecks",
        output_graph=tmp_path / "graph.pb",
        output_labels=tmp_path / "labels.txt",
        summaries_dir="",
        how_many_training_steps=200,
        show_progress=False,
        test_time_mirror=True,
    )
    result = retrain(config, log=lambda _: None, warn=lambda _: None)
    test = result.dataset.splits["test"]
    pixels, failures = test.images.load_batch(list(range(len(test))), 32)
    assert not failures
    exported = graph_probabilities(tmp_path / "graph.pb", pixels)
    evaluation = result.score.evaluation
    assert np.array_equal(exported.argmax(axis=1), evaluation.predicted)
    np.testing.assert_allclose(exported.max(axis=1), evaluation.confidence, atol=1e-5)
    # ... which is not how the images alone score: the check above would catch a plain run.
    alone = result.trained.layer.probabilities(result.extractor(pixels)).max(axis=1)
    assert np.abs(alone - evaluation.confidence).max() > 1e-4
