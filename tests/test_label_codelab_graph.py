"""`label` on a graph made by the codelab's retrain.py (no metadata file)."""

from __future__ import annotations

import json

from click.testing import CliRunner
from PIL import Image

from poetslearn.cli.main import cli

GRAPH = "models/mobilenet_v1_1.0_224_poets_retrained/retrained_graph.pb"


def test_label_codelab_graph_with_codelab_flags(tmp_path, shared):
    from skimage import data

    image = tmp_path / "chelsea.png"
    Image.fromarray(data.chelsea()).save(image)
    labels = tmp_path / "labels.txt"
    labels.write_text("class a\nclass b\n")
    result = CliRunner().invoke(
        cli,
        [
            "label",
            "--graph",
            str(shared / GRAPH),
            "--labels",
            str(labels),
            "--input_layer",
            "input",
            "--output_layer",
            "final_result",
            "--input_mean",
            "128",
            "--input_std",
            "128",
            "--json",
            str(image),
        ],
    )
    assert result.exit_code == 0, result.output
    predictions = json.loads(result.stdout)["results"][0]["predictions"]
    assert {p["label"] for p in predictions} == {"class a", "class b"}
    assert abs(sum(p["score"] for p in predictions) - 1.0) < 1e-4


def test_label_count_mismatch_is_an_error(tmp_path, shared):
    labels = tmp_path / "labels.txt"
    labels.write_text("one\ntwo\nthree\n")
    image = tmp_path / "x.png"
    Image.new("RGB", (50, 50)).save(image)
    result = CliRunner().invoke(
        cli, ["label", "--graph", str(shared / GRAPH), "--labels", str(labels), str(image)]
    )
    assert result.exit_code == 1
    assert "has 3 labels but the graph's output final_result:0 has 2 classes" in result.output


def test_missing_graph_and_non_graph(tmp_path):
    image = tmp_path / "x.png"
    Image.new("RGB", (50, 50)).save(image)
    missing = CliRunner().invoke(cli, ["label", "--graph", str(tmp_path / "nope.pb"), str(image)])
    assert missing.exit_code == 1 and "Cannot read the graph" in missing.output
    fake = tmp_path / "fake.pb"
    fake.write_bytes(b"\x00\x01garbage" * 10)
    labels = tmp_path / "l.txt"
    labels.write_text("a\n")
    bad = CliRunner().invoke(
        cli, ["label", "--graph", str(fake), "--labels", str(labels), str(image)]
    )
    assert bad.exit_code == 1
    assert bad.output == f"Error: {fake} is not a TensorFlow GraphDef (.pb) file.\n"
    empty = tmp_path / "empty.pb"
    empty.write_bytes(b"")
    result = CliRunner().invoke(
        cli, ["label", "--graph", str(empty), "--labels", str(labels), str(image)]
    )
    assert result.exit_code == 1
    assert result.output == f"Error: {empty} holds no graph nodes; it is not a frozen graph.\n"


def test_label_without_images_is_a_usage_error():
    result = CliRunner().invoke(cli, ["label"])
    assert result.exit_code == 2 and "Give at least one image" in result.output
