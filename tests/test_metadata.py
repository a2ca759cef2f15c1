"""One metadata builder, one naming rule: a graph and a .tflite exported side by side keep their
own metadata, the .tflite knows its data set's split, and files from 0.1 keep working."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from helpers import make_colour_folder, retrain_args
from poetslearn.artifacts.metadata import metadata_path_for, read_metadata
from poetslearn.cli.main import cli
from poetslearn.errors import GraphError


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def side_by_side(tmp_path):
    """`--output_graph model.pb --tflite_output model.tflite`, the names a new user picks, on a
    folder cut 30% test / 20% validation."""
    images = make_colour_folder(tmp_path / "photos", per_class=20)
    args = retrain_args(
        tmp_path,
        "--image_dir",
        str(images),
        "--testing_percentage",
        "30",
        "--validation_percentage",
        "20",
        "--json",
    )
    args[args.index("--output_graph") + 1] = str(tmp_path / "model.pb")
    result = invoke(*args, "--tflite_output", str(tmp_path / "model.tflite"))
    assert result.exit_code == 0, result.output
    return tmp_path, images, json.loads(result.stdout)


def test_a_graph_and_a_tflite_of_one_name_keep_their_own_metadata(side_by_side):
    tmp_path, images, _ = side_by_side
    graph_meta = json.loads((tmp_path / "model.pb.json").read_text())
    tflite_meta = json.loads((tmp_path / "model.tflite.json").read_text())
    assert graph_meta["artifact"] == "frozen_graph" and graph_meta["input_tensor"] == "input:0"
    assert tflite_meta["artifact"] == "tflite" and tflite_meta["quantization"] == "float32"
    image = next((images / "red").iterdir())
    for model in ("model.pb", "model.tflite"):
        result = invoke("label", "--graph", str(tmp_path / model), "--json", str(image))
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["results"][0]["predictions"][0]["label"] == "red"


def test_evaluate_cuts_the_same_test_split_for_the_graph_and_the_tflite(side_by_side):
    tmp_path, images, reported = side_by_side
    facts = json.loads((tmp_path / "model.tflite.json").read_text())["dataset"]
    assert (facts["testing_percentage"], facts["validation_percentage"]) == (30, 20)
    sizes = []
    for model in ("model.pb", "model.tflite"):
        result = invoke(
            "evaluate",
            "--graph",
            str(tmp_path / model),
            "--image_dir",
            str(images),
            "--json",
            "--quiet",
        )
        assert result.exit_code == 0, result.output
        sizes.append(json.loads(result.stdout)["n"])
    assert sizes == [reported["test_size"]] * 2, sizes


def test_an_export_from_0_1_is_still_read_under_its_old_name(side_by_side):
    tmp_path, images, _ = side_by_side
    old = tmp_path / "old"
    old.mkdir()
    shutil.copy(tmp_path / "model.pb", old / "retrained_graph.pb")
    meta = json.loads((tmp_path / "model.pb.json").read_text())
    del meta["artifact"]  # 0.1 wrote no such field
    (old / "retrained_graph.json").write_text(json.dumps(meta))
    assert read_metadata(old / "retrained_graph.pb", "frozen_graph")["input_tensor"] == "input:0"
    image = next((images / "blue").iterdir())
    result = invoke("label", "--graph", str(old / "retrained_graph.pb"), str(image))
    assert result.exit_code == 0 and result.output.startswith("blue ("), result.output


def test_an_old_name_holding_the_other_models_metadata_is_a_clear_error(side_by_side):
    """0.1 wrote the .tflite's metadata over the graph's (both `model.json`)."""
    tmp_path, images, _ = side_by_side
    old = tmp_path / "old"
    old.mkdir()
    shutil.copy(tmp_path / "model.pb", old / "model.pb")
    meta = json.loads((tmp_path / "model.tflite.json").read_text())
    del meta["artifact"]
    (old / "model.json").write_text(json.dumps(meta))
    with pytest.raises(GraphError, match=r"model\.json describes a tflite model, not .*model\.pb"):
        read_metadata(old / "model.pb", "frozen_graph")
    result = invoke("label", "--graph", str(old / "model.pb"), str(next(images.rglob("*.png"))))
    assert result.exit_code == 1
    assert "Export again with this version (it writes model.pb.json" in result.output
    assert "Traceback" not in result.output and "KeyError" not in result.output


def test_two_outputs_of_one_name_are_refused_before_any_work(tmp_path, colour_dir):
    args = retrain_args(tmp_path, "--image_dir", str(colour_dir))
    same = str(tmp_path / "out" / "graph.pb")
    result = invoke(*args, "--tflite_output", same)
    assert result.exit_code == 1
    assert f"Two outputs would be written to {same}" in result.output
    assert not (tmp_path / "bottlenecks").exists()  # refused before any work


def test_the_metadata_name_is_the_artefacts_whole_name_plus_json(tmp_path):
    assert metadata_path_for(tmp_path / "m.pb") == tmp_path / "m.pb.json"
    assert metadata_path_for(tmp_path / "m.tflite") != metadata_path_for(tmp_path / "m.pb")
