"""`poetslearn evaluate`: the exported graph's accuracy, per-class figures and a plot."""

from __future__ import annotations

import json

from click.testing import CliRunner
from PIL import Image

from conftest import make_tiny_cifar
from poetslearn.cli import cli
from test_cli_end_to_end import retrain_args


def test_evaluate_reproduces_retrains_test_accuracy_and_draws_a_plot(tmp_path, colour_dir):
    trained = CliRunner().invoke(cli, retrain_args(tmp_path, "--image_dir", str(colour_dir),
                                                   "--json"))
    reported = json.loads(trained.stdout)
    plot = tmp_path / "confusion.png"
    result = CliRunner().invoke(cli, ["evaluate", "--graph", str(tmp_path / "out" / "graph.pb"),
                                      "--image_dir", str(colour_dir), "--plot", str(plot),
                                      "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["n"] == reported["test_size"]  # the same test split, from the metadata
    assert report["accuracy"] == reported["test_accuracy"] == 1.0
    assert [row["recall"] for row in report["per_class"]] == [1.0, 1.0, 1.0]
    assert sum(map(sum, report["confusion"])) == report["n"]
    with Image.open(plot) as img:
        assert img.format == "PNG" and img.size[0] > 800
    everything = CliRunner().invoke(cli, ["evaluate", "--graph", str(tmp_path / "out" / "graph.pb"),
                                          "--image_dir", str(colour_dir), "--split", "all",
                                          "--quiet"])
    assert "test split" not in everything.output and "(N=30)" in everything.output
    assert "Confusion matrix (rows: true, columns: predicted):" in everything.output


def test_evaluate_on_cifar10_with_mistakes_in_the_plot(tmp_path):
    data = make_tiny_cifar(tmp_path / "cifar")
    assert CliRunner().invoke(cli, retrain_args(tmp_path, "--data_dir", str(data),
                                                "--how_many_training_steps", "3")).exit_code == 0
    plot = tmp_path / "p.png"
    result = CliRunner().invoke(cli, ["evaluate", "--graph", str(tmp_path / "out" / "graph.pb"),
                                      "--data_dir", str(data), "--plot", str(plot), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "CIFAR-10, test split: accuracy = " in result.output and "(N=30)" in result.output
    assert "airplane" in result.output and plot.is_file()


def test_evaluate_with_unknown_classes_is_an_error(tmp_path, colour_dir):
    from conftest import make_colour_folder

    CliRunner().invoke(cli, retrain_args(tmp_path, "--image_dir", str(colour_dir)))
    other = make_colour_folder(tmp_path / "other", per_class=4,
                               colours={"red": (250, 0, 0), "purple": (120, 0, 120)})
    result = CliRunner().invoke(cli, ["evaluate", "--graph", str(tmp_path / "out" / "graph.pb"),
                                      "--image_dir", str(other), "--quiet"])
    assert result.exit_code == 1 and "class(es) purple that the classifier does not know" in (
        result.output)
