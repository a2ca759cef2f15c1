"""`label` for scripts with many images: folders, a list file or standard input, labelled a batch
at a time, in input order, a bad file named and the rest still labelled."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from helpers import make_colour_folder, photo_folder, retrain_args
from poetslearn.cli.main import cli
from poetslearn.inference import batch


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("trained")
    images = make_colour_folder(tmp_path / "colours")
    result = CliRunner().invoke(
        cli,
        retrain_args(
            tmp_path, "--image_dir", str(images), "--tflite_output", str(tmp_path / "m.tflite")
        ),
    )
    assert result.exit_code == 0, result.output
    return tmp_path


@pytest.mark.parametrize("model", ["out/graph.pb", "m.tflite"])
def test_a_folder_is_labelled_in_order_a_batch_at_a_time(trained, tmp_path, model):
    expected = photo_folder(tmp_path / "photos")  # 40 images: more than one batch of 32
    result = CliRunner().invoke(
        cli,
        [
            "label",
            "--graph",
            str(trained / model),
            "--json",
            "--top_k",
            "1",
            str(tmp_path / "photos"),
        ],
    )
    assert result.exit_code == 0, result.output
    results = json.loads(result.stdout)["results"]
    assert [r["image"] for r in results] == [str(p) for p, _ in expected]
    assert [r["predictions"][0]["label"] for r in results] == [name for _, name in expected]


def test_a_list_from_stdin_keeps_its_order_and_names_a_bad_file(trained, tmp_path):
    expected = photo_folder(tmp_path / "photos", n=6)
    broken = tmp_path / "photos" / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    order = [expected[3][0], broken, expected[0][0], tmp_path / "missing.png", expected[5][0]]
    result = CliRunner().invoke(
        cli,
        [
            "label",
            "--graph",
            str(trained / "out" / "graph.pb"),
            "--image_list",
            "-",
            "--top_k",
            "1",
        ],
        input="".join(f"{p}\n" for p in order),
    )
    assert result.exit_code == 1  # two files failed; the three others are labelled
    blocks = result.stdout.split(":\n")
    assert [line for line in result.stdout.splitlines() if not line.startswith("  ")] == [
        f"{expected[3][0]}:",
        f"{expected[0][0]}:",
        f"{expected[5][0]}:",
    ]
    assert len(blocks) == 4
    assert f"{broken}" in result.stderr and "missing.png" in result.stderr


def test_a_list_file_is_read_relative_to_its_folder(trained, tmp_path):
    expected = photo_folder(tmp_path / "photos", n=4)
    listing = tmp_path / "photos" / "list.txt"
    listing.write_text(
        "# the two first\n"
        + "".join(f"{p.relative_to(listing.parent)}\n" for p, _ in expected[:2])
        + "\n"
    )
    assert batch.read_image_list(str(listing)) == [p for p, _ in expected[:2]]
    result = CliRunner().invoke(
        cli,
        [
            "label",
            "--graph",
            str(trained / "out" / "graph.pb"),
            "--image_list",
            str(listing),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["results"]) == 2


def test_a_folder_without_images_is_a_usage_error(tmp_path):
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(cli, ["label", str(tmp_path / "empty")])
    assert result.exit_code == 2 and "Give at least one image" in result.output


def test_a_missing_list_file_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(cli, ["label", "--image_list", str(tmp_path / "nope.txt")])
    assert result.exit_code == 1
    assert f"Cannot read the image list {tmp_path / 'nope.txt'}" in result.output


def test_a_tflite_told_of_many_images_scores_eight_at_a_time_as_it_did_one(trained, tmp_path):
    import numpy as np

    from poetslearn.config import LabelConfig
    from poetslearn.inference.tflite_classifier import TFLiteClassifier

    config = LabelConfig(graph=str(trained / "m.tflite"))
    one, eight = TFLiteClassifier(config), TFLiteClassifier(config)
    eight.expect(3)  # too few to be worth resizing the model
    assert eight.batch == 1
    eight.expect(100)
    assert eight.batch == 8
    pixels = np.random.default_rng(5).uniform(0, 255, (11, *one.size, 3)).astype(np.float32)
    np.testing.assert_allclose(eight.probabilities(pixels), one.probabilities(pixels), atol=1e-6)
    assert eight.probabilities(pixels[:0]).shape == (0, 3)
