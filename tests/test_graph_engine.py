"""`label` and `evaluate` of a poetslearn frozen graph on LiteRT (inference/graph_engine.py):
converted once per graph when a job has many images, checked against TensorFlow, cached by the
graph's content, and then loaded without TensorFlow; graphs it cannot cut keep TensorFlow."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from helpers import make_colour_folder, make_colour_mosaics, photo_folder, retrain_args
from poetslearn.cli.main import cli
from poetslearn.config import LabelConfig
from poetslearn.inference import graph_classifiers, graph_engine
from poetslearn.inference.label import load_classifier


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    """A plain graph, one that averages with mirror images and a multi-label one."""
    root = tmp_path_factory.mktemp("graphs")
    images = make_colour_folder(root / "colours")
    mosaics = make_colour_mosaics(root / "mosaics", count=60)
    made = {}
    for kind, data in (
        ("plain", ["--image_dir", str(images)]),
        ("mirror", ["--image_dir", str(images), "--test_time_mirror"]),
        ("multi_label", ["--data_csv", str(mosaics), "--multi_label"]),
    ):
        args = retrain_args(root / kind, *data)
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        made[kind] = root / kind / "out" / "graph.pb"
    return made


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache of its own, and 'many images' meaning 4 here."""
    monkeypatch.setenv("POETSLEARN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(graph_classifiers, "CONVERT_FROM", 4)
    return tmp_path / "cache" / "graph_engines"


def scores(graph, folder) -> dict:
    """{image file name: its top 3}, from `label --json`."""
    result = CliRunner().invoke(
        cli, ["label", "--graph", str(graph), "--json", "--top_k", "3", str(folder)]
    )
    assert result.exit_code == 0, result.output
    results = json.loads(result.stdout)["results"]
    return {r["image"].split("/")[-1]: r["predictions"] for r in results}


def close(a: dict, b: dict, tolerance: float = 1e-4) -> bool:
    """The same top labels for every image both have, scores within `tolerance`."""
    shared = a.keys() & b.keys()
    return bool(shared) and all(
        [p["label"] for p in a[name]] == [p["label"] for p in b[name]]
        and all(abs(p["score"] - q["score"]) <= tolerance for p, q in zip(a[name], b[name]))
        for name in shared
    )


def test_many_images_convert_the_graph_once_with_tensorflows_answers(graphs, cache, tmp_path):
    photo_folder(tmp_path / "few", n=3)
    photo_folder(tmp_path / "many", n=6)  # the same first 3 images, and 3 more
    by_tensorflow = scores(graphs["plain"], tmp_path / "few")
    assert not cache.exists()  # 3 images, below 4: TensorFlow, nothing converted
    by_litert = scores(graphs["plain"], tmp_path / "many")
    (converted,) = cache.glob("*.tflite")  # 6 images: converted, checked and cached
    assert converted.stat().st_size > 0 and close(by_litert, by_tensorflow)
    classifier = load_classifier(LabelConfig(graph=str(graphs["plain"])))
    assert isinstance(classifier, graph_classifiers.ConvertedGraphClassifier)
    assert close(scores(graphs["plain"], tmp_path / "few"), by_tensorflow)  # now from the cache


def test_a_converted_graph_labels_without_tensorflow(graphs, cache, tmp_path):
    photo_folder(tmp_path / "many", n=4)
    scores(graphs["plain"], tmp_path / "many")  # converts and caches
    run = (
        "import sys; from poetslearn.cli.main import main; sys.argv = ['poetslearn'] + "
        "sys.argv[1:]\ntry:\n    main()\nfinally:\n    print('TF' if 'tensorflow' in "
        "sys.modules else 'NO TF', file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", run, "label", "--graph", str(graphs["plain"]), "--json",
         str(tmp_path / "many")],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "POETSLEARN_CACHE_DIR": str(cache.parent)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().endswith("NO TF")
    assert len(json.loads(done.stdout)["results"]) == 4


def test_a_multi_label_graph_converts_with_its_thresholds(graphs, cache, tmp_path):
    folder = tmp_path / "mosaics"
    folder.mkdir()
    for path in sorted((graphs["multi_label"].parents[2] / "mosaics").glob("*.png"))[:6]:
        (folder / path.name).write_bytes(path.read_bytes())

    def answers():
        result = CliRunner().invoke(cli, ["label", "--graph", str(graphs["multi_label"]),
                                          "--json", "--top_k", "3", str(folder)])  # fmt: skip
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)["results"]

    graph_classifiers.CONVERT_FROM = 10**9  # TensorFlow first, as a reference
    by_tensorflow = answers()
    graph_classifiers.CONVERT_FROM = 4
    by_litert = answers()
    assert len(list(cache.glob("*.tflite"))) == 1
    for tf_row, lite_row in zip(by_tensorflow, by_litert, strict=True):
        assert [p["label"] for p in tf_row["predictions"]] == [
            p["label"] for p in lite_row["predictions"]
        ]  # the labels at or above their thresholds, the same
        assert close({"x": tf_row["scores"]}, {"x": lite_row["scores"]})


def test_a_mirror_averaging_graph_keeps_tensorflow(graphs, cache, tmp_path):
    photo_folder(tmp_path / "many", n=4)
    scores(graphs["mirror"], tmp_path / "many")
    assert not cache.exists()
    assert isinstance(
        load_classifier(LabelConfig(graph=str(graphs["mirror"]))), graph_classifiers.GraphClassifier
    )


def test_a_damaged_converted_model_is_converted_again(graphs, cache, tmp_path):
    photo_folder(tmp_path / "many", n=4)
    expected = scores(graphs["plain"], tmp_path / "many")
    (converted,) = cache.glob("*.tflite")
    converted.write_bytes(b"TFL3 not a model")
    assert graph_engine.cached_engine(graphs["plain"]) is None
    assert close(scores(graphs["plain"], tmp_path / "many"), expected)
    assert converted.stat().st_size > 100  # written again


def test_a_graph_without_its_resize_op_is_not_convertible(graphs):
    data = (
        graphs["plain"].read_bytes().replace(graph_engine.RESIZE_OP.encode(), b"ScaleAndTranslatX")
    )
    with pytest.raises(graph_engine.NotConvertible, match="0 ScaleAndTranslate ops"):
        graph_engine.convert_pixel_graph(data, (32, 32), "final_result", 8)


def test_evaluate_converts_too(graphs, cache, tmp_path):
    result = CliRunner().invoke(
        cli,
        ["evaluate", "--graph", str(graphs["plain"]), "--image_dir",
         str(graphs["plain"].parents[2] / "colours"), "--split", "all", "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(list(cache.glob("*.tflite"))) == 1
    assert "for LiteRT, once; later runs of it load no TensorFlow." in result.output


def test_a_converted_graph_checks_a_labels_file_against_its_outputs(graphs, cache, tmp_path):
    photo_folder(tmp_path / "many", n=4)
    scores(graphs["plain"], tmp_path / "many")  # converts and caches
    labels = tmp_path / "other_labels.txt"
    labels.write_text("a\nb\nc\nd\n")  # four labels for a graph of three classes
    result = CliRunner().invoke(
        cli,
        ["label", "--graph", str(graphs["plain"]), "--labels", str(labels), str(tmp_path / "many")],
    )
    assert result.exit_code != 0
    assert "has 4 labels but" in result.output and "has 3 classes" in result.output


def test_a_graph_the_converter_refuses_keeps_tensorflow(graphs, cache, tmp_path, monkeypatch):
    from tensorflow.lite.python.convert import ConverterError  # what TFLiteConverter raises

    def refuse(*args):
        raise ConverterError("an op it cannot convert")

    monkeypatch.setattr(graph_engine, "convert_pixel_graph", refuse)
    photo_folder(tmp_path / "many", n=4)
    command = ["label", "--graph", str(graphs["plain"]), "--json", str(tmp_path / "many")]
    first = CliRunner().invoke(cli, command)
    assert first.exit_code == 0 and len(json.loads(first.stdout)["results"]) == 4  # TensorFlow
    assert not list(cache.glob("*.tflite"))
    (marker,) = cache.glob("*.refused")
    assert "ConverterError: an op it cannot convert" in marker.read_text()
    assert "stays on TensorFlow: the conversion failed (ConverterError: an op it" in first.stderr
    assert f"later runs do not try again (remove {marker} to retry)" in first.stderr
    again = CliRunner().invoke(cli, command)  # tried once: not again, and nothing said
    assert again.exit_code == 0 and again.stderr == "", again.stderr
    assert again.stdout == first.stdout
