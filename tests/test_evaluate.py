"""`poetslearn evaluate`: the exported graph's accuracy, per-class figures and a plot."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner
from PIL import Image

from helpers import make_tiny_cifar, retrain_args
from poetslearn.cli.main import cli


def test_evaluate_reproduces_retrains_test_accuracy_and_draws_a_plot(tmp_path, colour_dir):
    trained = CliRunner().invoke(
        cli, retrain_args(tmp_path, "--image_dir", str(colour_dir), "--json")
    )
    assert trained.exit_code == 0, trained.output
    reported = json.loads(trained.stdout)
    plot = tmp_path / "confusion.png"
    result = CliRunner().invoke(
        cli,
        [
            "evaluate",
            "--graph",
            str(tmp_path / "out" / "graph.pb"),
            "--image_dir",
            str(colour_dir),
            "--plot",
            str(plot),
            "--json",
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["n"] == reported["test_size"]  # the same test split, from the metadata
    assert report["accuracy"] == reported["test_accuracy"] == 1.0
    assert [row["recall"] for row in report["per_class"]] == [1.0, 1.0, 1.0]
    assert sum(map(sum, report["confusion"])) == report["n"]
    with Image.open(plot) as img:
        assert img.format == "PNG" and img.size[0] > 800
    everything = CliRunner().invoke(
        cli,
        [
            "evaluate",
            "--graph",
            str(tmp_path / "out" / "graph.pb"),
            "--image_dir",
            str(colour_dir),
            "--split",
            "all",
            "--quiet",
        ],
    )
    assert "test split" not in everything.output and "(N=30)" in everything.output
    assert "Confusion matrix (rows: true, columns: predicted):" in everything.output


def test_evaluate_on_cifar10_with_mistakes_in_the_plot(tmp_path, monkeypatch):
    from poetslearn.data.sources import ArrayImages

    data = make_tiny_cifar(tmp_path / "cifar")
    assert (
        CliRunner()
        .invoke(
            cli, retrain_args(tmp_path, "--data_dir", str(data), "--how_many_training_steps", "3")
        )
        .exit_code
        == 0
    )
    drawn = []  # the images the plot shows, by name
    read_original = ArrayImages.read_original
    monkeypatch.setattr(
        ArrayImages,
        "read_original",
        lambda self, i, **kw: (drawn.append(self.names[i]), read_original(self, i, **kw))[1],
    )
    plot = tmp_path / "p.png"
    result = CliRunner().invoke(
        cli,
        [
            "evaluate",
            "--graph",
            str(tmp_path / "out" / "graph.pb"),
            "--data_dir",
            str(data),
            "--plot",
            str(plot),
            "--json",
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert "CIFAR-10, test split: accuracy = " in result.stderr and report["n"] == 30
    # The figure retrain reports for CIFAR-10's bit-exact rows, here all 30 tiny test images.
    assert f"Test accuracy on test images 0-999 = {report['accuracy']:.1%} (N=30)" in (
        result.stderr
    )
    # Three steps on noise leave mistakes; the plot shows the most confident of them (at most
    # 12), each a distinct image.
    mistakes = report["n"] - int(np.trace(np.array(report["confusion"])))
    assert mistakes > 0 and len(drawn) == min(12, mistakes) == len(set(drawn)), drawn
    assert "airplane" in result.stderr and plot.is_file()


def test_evaluate_with_unknown_classes_is_an_error(tmp_path, colour_dir):
    from helpers import make_colour_folder

    trained = CliRunner().invoke(cli, retrain_args(tmp_path, "--image_dir", str(colour_dir)))
    assert trained.exit_code == 0, trained.output
    other = make_colour_folder(
        tmp_path / "other", per_class=4, colours={"red": (250, 0, 0), "purple": (120, 0, 120)}
    )
    result = CliRunner().invoke(
        cli,
        [
            "evaluate",
            "--graph",
            str(tmp_path / "out" / "graph.pb"),
            "--image_dir",
            str(other),
            "--quiet",
        ],
    )
    assert result.exit_code == 1 and "class(es) purple that the classifier does not know" in (
        result.output
    )


def test_plot_shows_the_most_confident_mistakes_themselves(tmp_path):
    from poetslearn.data.sources import ArrayImages, Split
    from poetslearn.inference.evaluate import Evaluation
    from poetslearn.inference.plot import plot_evaluation

    # Four images; the two mistakes are solid magenta (confidence 0.9) and solid yellow (0.6),
    # colours nothing else in the plot uses; the correct ones are gray.
    colours = [(128, 128, 128), (255, 0, 255), (128, 128, 128), (255, 255, 0)]
    pixels = np.stack([np.full((32, 32, 3), c, np.uint8) for c in colours])
    names = ["ok-1", "magenta", "ok-2", "yellow"]
    split = Split(ArrayImages(pixels, names), np.array([0, 0, 1, 1]))
    evaluation = Evaluation(
        ["cat", "dog"],
        np.array([0, 0, 1, 1]),
        np.array([0, 1, 1, 0]),
        np.array([0.8, 0.9, 0.7, 0.6]),
        names,
    )
    assert evaluation.most_confident_mistakes(5).tolist() == [1, 3]
    assert evaluation.most_confident_mistakes(1).tolist() == [1]
    assert evaluation.misclassified() == [("magenta", "cat", "dog"), ("yellow", "dog", "cat")]

    def colour_area(path, colour) -> int:
        with Image.open(path) as img:
            rgb = np.asarray(img.convert("RGB")).astype(int)
        return int((np.abs(rgb - colour).max(axis=2) <= 8).sum())

    both = plot_evaluation(evaluation, split, tmp_path / "both.png", "test")
    one = plot_evaluation(evaluation, split, tmp_path / "one.png", "test", mistakes=1)
    assert colour_area(both, (255, 0, 255)) > 1000 and colour_area(both, (255, 255, 0)) > 1000
    assert colour_area(one, (255, 0, 255)) > 1000 and colour_area(one, (255, 255, 0)) == 0
    # Every cell of [[1, 1], [1, 1]] is the largest count: the darkest blue, under white text.
    assert colour_area(both, (8, 48, 107)) > 10000
    correct = Evaluation(
        ["cat", "dog"],
        np.array([0, 1]),
        np.array([0, 1]),
        np.array([0.8, 0.7]),
        ["magenta", "yellow"],
    )
    none = plot_evaluation(
        correct, split.subset(np.array([False, True, False, True])), tmp_path / "none.png", "test"
    )
    assert colour_area(none, (255, 0, 255)) == 0  # no mistakes: no pictures of images


def test_evaluate_split_all_on_a_few_held_out_photos(tmp_path, colour_dir):
    """`--split all` cuts no split, so one held-out photo per class is enough."""
    from helpers import COLOURS, make_colour_folder

    trained = CliRunner().invoke(cli, retrain_args(tmp_path, "--image_dir", str(colour_dir)))
    assert trained.exit_code == 0, trained.output
    held_out = make_colour_folder(tmp_path / "held_out", per_class=1)
    command = ["evaluate", "--graph", str(tmp_path / "out" / "graph.pb"), "--quiet", "--json"]
    result = CliRunner().invoke(cli, [*command, "--image_dir", str(held_out), "--split", "all"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["n"] == len(COLOURS) and report["accuracy"] == 1.0
    # The test split still needs three photos a class, and says so.
    result = CliRunner().invoke(cli, [*command, "--image_dir", str(held_out)])
    assert result.exit_code == 1 and "at least 3 are needed" in result.output
