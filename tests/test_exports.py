"""SavedModel and TFLite exports agree with the frozen graph; `label` reads .tflite models."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from helpers import (
    COLOURS,
    cifar_folder,
    graph_probabilities,
    noisy_colour,
    retrain_args,
)
from poetslearn.cli.main import cli
from poetslearn.config import RetrainConfig
from poetslearn.data.images import load_image
from poetslearn.pipeline import retrain


@pytest.fixture
def exported(tmp_path, colour_dir):
    args = retrain_args(
        tmp_path,
        "--image_dir",
        str(colour_dir),
        "--saved_model_dir",
        str(tmp_path / "saved"),
        "--tflite_output",
        str(tmp_path / "model.tflite"),
    )
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    images = []
    for i, (name, colour) in enumerate(COLOURS.items()):
        path = tmp_path / f"new_{name}.png"
        Image.fromarray(noisy_colour(colour, size=(50, 60), seed=500 + i)).save(path)
        images.append((name, path))
    return tmp_path, images


def test_saved_model_matches_the_frozen_graph(exported):
    import tensorflow as tf
    import tensorflow_hub as hub

    tmp_path, images = exported
    pixels = np.stack([load_image(p, 32) for _, p in images])
    expected = graph_probabilities(tmp_path / "out" / "graph.pb", pixels)
    loaded = tf.saved_model.load(str(tmp_path / "saved"))
    out = loaded.signatures["serving_default"](images=tf.constant(pixels))
    np.testing.assert_allclose(out["probabilities"].numpy(), expected, rtol=1e-5, atol=1e-6)
    assert [s.decode() for s in out["labels"].numpy()] == [n for n, _ in images]
    # The encoded-bytes signature decodes and resizes by itself.
    raw = tf.constant([p.read_bytes() for _, p in images])
    by_bytes = loaded.signatures["classify_bytes"](image_bytes=raw)
    assert [s.decode() for s in by_bytes["labels"].numpy()] == [n for n, _ in images]
    # tensorflow_hub.load reads the same folder.
    via_hub = hub.load(str(tmp_path / "saved"))
    np.testing.assert_allclose(
        via_hub.classify_images(pixels)["probabilities"].numpy(), expected, rtol=1e-5, atol=1e-6
    )


def test_tflite_matches_the_frozen_graph_and_label_reads_it(exported):
    tmp_path, images = exported
    result = CliRunner().invoke(
        cli,
        [
            "label",
            "--graph",
            str(tmp_path / "model.tflite"),
            "--json",
            *[str(p) for _, p in images],
        ],
    )
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)["results"]
    assert [r["predictions"][0]["label"] for r in got] == [n for n, _ in images]
    graph = json.loads(
        CliRunner()
        .invoke(
            cli,
            [
                "label",
                "--graph",
                str(tmp_path / "out" / "graph.pb"),
                "--json",
                *[str(p) for _, p in images],
            ],
        )
        .stdout
    )["results"]
    for a, b in zip(got, graph):
        scores_a = {p["label"]: p["score"] for p in a["predictions"]}
        scores_b = {p["label"]: p["score"] for p in b["predictions"]}
        for label in scores_a:
            assert abs(scores_a[label] - scores_b[label]) < 1e-4


def test_int8_tflite_agrees_with_float_on_real_images(tmp_path, shared, monkeypatch):
    """Full-integer model vs float model on held-out real photos, genuine ImageNet weights."""
    from poetslearn.config import LabelConfig
    from poetslearn.inference.label import TFLiteClassifier

    monkeypatch.setenv("POETSLEARN_CACHE_DIR", str(tmp_path / "cache"))
    train_dir = cifar_folder(shared, tmp_path / "train")
    held_out = cifar_folder(shared, tmp_path / "held_out", per_class=15, offset=100)
    weights = str(shared / "models" / "mobilenet_v1_0.25_128_frozen.tgz")
    for name, extra in (("f", []), ("q", ["--tflite_quantize", "int8"])):
        result = CliRunner().invoke(
            cli,
            retrain_args(
                tmp_path,
                "--image_dir",
                str(train_dir),
                "--architecture",
                "mobilenet_0.25_128",
                "--weights",
                weights,
                "--tflite_output",
                str(tmp_path / f"{name}.tflite"),
                *extra,
            ),
        )
        assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "q.tflite.json").read_text())
    assert meta["quantization"] == "int8"
    floats = TFLiteClassifier(LabelConfig(graph=tmp_path / "f.tflite"))
    ints = TFLiteClassifier(LabelConfig(graph=tmp_path / "q.tflite"))
    images = sorted(held_out.glob("*/*.png"))
    agree = sum(floats.classify(p, 1)[0].label == ints.classify(p, 1)[0].label for p in images)
    assert agree / len(images) >= 0.85, f"{agree}/{len(images)}"


def test_tflite_quantize_without_output_is_an_error(tmp_path, colour_dir):
    result = CliRunner().invoke(
        cli, retrain_args(tmp_path, "--image_dir", str(colour_dir), "--tflite_quantize", "int8")
    )
    assert result.exit_code == 1 and "--tflite_quantize needs --tflite_output" in result.output


def tiny_hub_module(path, size=24):
    """A feature-vector module the way TF Hub publishes them: __call__([N, s, s, 3] in [0, 1])."""
    import tensorflow as tf

    class Features(tf.Module):
        def __init__(self):
            super().__init__()
            rng = np.random.default_rng(0)
            self.kernel = tf.Variable(rng.normal(0, 1, (3, 3, 3, 12)).astype(np.float32))

        @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32)])
        def __call__(self, images):
            x = tf.nn.relu(tf.nn.conv2d(images * 2.0 - 1.0, self.kernel, 2, "SAME"))
            return tf.concat([tf.reduce_mean(x, axis=[1, 2]), tf.reduce_mean(images, [1, 2])], 1)

    tf.saved_model.save(Features(), str(path))
    return path


def test_retrain_on_a_local_tfhub_module(tmp_path, colour_dir):
    module = tiny_hub_module(tmp_path / "module")
    result = CliRunner().invoke(
        cli, retrain_args(tmp_path, "--image_dir", str(colour_dir), "--tfhub_module", str(module))
    )
    assert result.exit_code == 0, result.output
    assert "24x24 input, 15 features; weights: TF Hub module" in result.output
    assert "Final test accuracy = 100.0%" in result.output
    image = sorted((colour_dir / "blue").iterdir())[0]
    out = CliRunner().invoke(
        cli, ["label", "--graph", str(tmp_path / "out" / "graph.pb"), "--top_k", "1", str(image)]
    )
    assert out.output.startswith("blue (score="), out.output


def test_our_saved_model_is_itself_a_tfhub_module(exported, colour_dir):
    tmp_path, images = exported
    again = tmp_path / "again"
    result = CliRunner().invoke(
        cli,
        retrain_args(
            again, "--image_dir", str(colour_dir), "--tfhub_module", str(tmp_path / "saved")
        ),
    )
    assert result.exit_code == 0, result.output
    assert "32x32 input, 16 features" in result.output  # test_tiny's size and bottleneck
    assert "Final test accuracy = 100.0%" in result.output


def test_tfhub_module_that_is_missing_says_so(tmp_path, colour_dir):
    result = CliRunner().invoke(
        cli,
        retrain_args(
            tmp_path, "--image_dir", str(colour_dir), "--tfhub_module", str(tmp_path / "nothing")
        ),
    )
    assert result.exit_code == 1 and "no such folder, and not a URL" in result.output


def test_classify_bytes_lays_transparency_on_white_like_label(exported):

    import tensorflow as tf

    from poetslearn.config import LabelConfig
    from poetslearn.inference.label import load_classifier

    tmp_path, _ = exported
    rng = np.random.default_rng(9)
    rgba = np.concatenate(
        [
            np.full((40, 48, 3), (30, 200, 50), np.uint8),
            rng.integers(0, 256, (40, 48, 1), dtype=np.uint8),
        ],
        axis=2,
    )
    files = {
        "alpha.png": Image.fromarray(rgba, "RGBA"),
        "gray.png": Image.fromarray(rng.integers(0, 256, (40, 48), dtype=np.uint8), "L"),
        "gray_alpha.png": Image.fromarray(rgba[..., 2:], "LA"),
    }
    loaded = tf.saved_model.load(str(tmp_path / "saved"))
    classifier = load_classifier(LabelConfig(graph=tmp_path / "out" / "graph.pb"))
    for name, image in files.items():
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        (tmp_path / name).write_bytes(buffer.getvalue())
        out = loaded.signatures["classify_bytes"](image_bytes=tf.constant([buffer.getvalue()]))
        expected = classifier.probabilities(classifier.load_pixels(tmp_path / name)[None])
        np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=2e-3, err_msg=name)


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
