"""More than one label per image: the objective, the figures, and the real CLI on colour mosaics
(retrain --multi_label, every export, `label` printing both labels, `evaluate`)."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from helpers import COLOURS, graph_probabilities, make_colour_mosaics, noisy_colour, retrain_args
from poetslearn.cli.main import cli
from poetslearn.data.images import load_image
from poetslearn.train.multi_label_metrics import (
    average_precision,
    best_thresholds,
    f1_scores,
)
from poetslearn.train.objectives import MAX_POSITIVE_WEIGHT, MultiLabel


def run(args: list[str]):
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def brute_average_precision(scores, targets) -> float:
    """The definition: the mean over positives of the precision among the images scored at least
    as high as that positive."""
    return float(np.mean([targets[scores >= s].mean() for s, t in zip(scores, targets) if t == 1]))


def test_average_precision_is_the_mean_precision_at_each_positive():
    rng = np.random.default_rng(1)
    for _ in range(100):
        n = int(rng.integers(2, 40))
        scores = np.round(rng.random(n), 1)  # ties too
        targets = (rng.random(n) < 0.4).astype(np.uint8)
        if targets.sum():
            assert average_precision(scores, targets) == pytest.approx(
                brute_average_precision(scores, targets)
            )
    assert np.isnan(average_precision(np.array([0.3, 0.2]), np.array([0, 0])))


def test_a_threshold_falls_in_the_middle_of_a_broad_f1_peak():
    rng = np.random.default_rng(2)
    positives = rng.uniform(0.62, 0.9, 50)
    negatives = rng.uniform(0.05, 0.38, 150)
    scores = np.concatenate([positives, negatives])[:, None]
    targets = np.r_[np.ones(50), np.zeros(150)].astype(np.uint8)[:, None]
    (threshold,) = best_thresholds(scores, targets)
    # Every threshold in (0.38, 0.62] is perfect; the averaged curve peaks in its middle, not at
    # an edge where a slightly different image would fall on the wrong side.
    assert 0.45 <= threshold <= 0.55
    assert f1_scores(scores, targets, np.array([threshold]))["f1"][0] == 1.0
    assert round(threshold * 100) == pytest.approx(threshold * 100)  # on the 0.01 grid


def test_the_threshold_follows_a_label_whose_scores_run_low():
    rng = np.random.default_rng(3)
    scores = np.concatenate([rng.uniform(0.2, 0.35, 40), rng.uniform(0.0, 0.12, 160)])[:, None]
    targets = np.r_[np.ones(40), np.zeros(160)].astype(np.uint8)[:, None]
    (threshold,) = best_thresholds(scores, targets)
    assert 0.12 < threshold <= 0.2  # 0.5 would miss every positive
    no_positives = best_thresholds(scores, np.zeros_like(targets))
    assert no_positives.tolist() == [0.5]


def test_micro_and_macro_f1_by_hand():
    probs = np.array([[0.9, 0.2], [0.8, 0.7], [0.1, 0.6]])
    targets = np.array([[1, 0], [0, 1], [0, 0]])
    figures = f1_scores(probs, targets, np.array([0.5, 0.5]))
    # label 0: tp 1, fp 1, fn 0 -> F1 2/3; label 1: tp 1, fp 1, fn 0 -> 2/3
    assert figures["f1"].tolist() == pytest.approx([2 / 3, 2 / 3])
    assert figures["micro_f1"] == pytest.approx(4 / 6) and figures["macro_f1"] == pytest.approx(
        2 / 3
    )


def test_the_gradient_is_that_of_the_weighted_loss():
    rng = np.random.default_rng(3)
    targets = (rng.random((6, 4)) < 0.3).astype(np.uint8)
    objective = MultiLabel.for_targets(targets)
    logits = rng.normal(size=(6, 4))
    analytic = objective.logit_gradient(objective.probabilities(logits), targets)
    numeric = np.zeros_like(logits)
    for i, j in itertools.product(range(6), range(4)):
        step = np.zeros_like(logits)
        step[i, j] = 1e-5
        up = objective.loss(objective.probabilities(logits + step), targets)
        down = objective.loss(objective.probabilities(logits - step), targets)
        numeric[i, j] = (up - down) / 2e-5
    np.testing.assert_allclose(analytic, numeric, atol=1e-4)


def test_rare_labels_weigh_more_within_bounds():
    targets = np.zeros((1000, 3), np.uint8)
    targets[:500, 0] = 1  # half the images: weight 1
    targets[:10, 1] = 1  # rare: sqrt(990 / 10)
    targets[:1, 2] = 1  # very rare: capped
    weights = MultiLabel.for_targets(targets).positive_weights
    assert weights.tolist() == pytest.approx([1.0, np.sqrt(99.0), MAX_POSITIVE_WEIGHT])


@pytest.fixture
def mosaic_run(tmp_path):
    table = make_colour_mosaics(tmp_path / "mosaics", count=150)
    out = tmp_path / "out"
    args = retrain_args(tmp_path, "--data_csv", str(table), "--multi_label", "--json", "--quiet")
    args += ["--tflite_output", str(out / "model.tflite"), "--onnx_output", str(out / "m.onnx")]
    args += ["--saved_model_dir", str(tmp_path / "saved")]
    result = run(args)
    assert result.exit_code == 0, result.output
    return tmp_path, table, json.loads(result.stdout)


def two_colour_image(tmp_path, first: str, second: str):
    left = noisy_colour(COLOURS[first], size=(40, 24), seed=901)
    right = noisy_colour(COLOURS[second], size=(40, 24), seed=902)
    path = tmp_path / f"new_{first}_{second}.png"
    Image.fromarray(np.concatenate([left, right], axis=1)).save(path)
    return path


def test_retrain_learns_colour_mosaics_and_records_thresholds(mosaic_run):
    tmp_path, _, report = mosaic_run
    assert report["validation_map"] == 1.0 and report["test_map"] == 1.0
    assert report["test_micro_f1"] == 1.0 and report["test_exact_match"] == 1.0
    meta = json.loads((tmp_path / "out" / "graph.pb.json").read_text())
    assert meta["multi_label"] is True and meta["dataset"]["multi_label"] is True
    assert sorted(meta["thresholds"]) == sorted(COLOURS)
    assert all(0 < t < 1 for t in meta["thresholds"].values())
    tflite_meta = json.loads((tmp_path / "out" / "model.tflite.json").read_text())
    assert tflite_meta["thresholds"] == meta["thresholds"]


def test_label_prints_both_labels_of_a_new_two_colour_image(mosaic_run):
    tmp_path = mosaic_run[0]
    image = two_colour_image(tmp_path, "red", "blue")
    for model in ("out/graph.pb", "out/model.tflite"):
        out = run(["label", "--graph", str(tmp_path / model), str(image)])
        assert out.exit_code == 0, out.output
        printed = [line.split(" (score=")[0] for line in out.stdout.splitlines()]
        assert sorted(printed) == ["blue", "red"], (model, out.output)
    doc = json.loads(
        run(["label", "--graph", str(tmp_path / "out/graph.pb"), "--json", str(image)]).stdout
    )
    result = doc["results"][0]
    assert sorted(p["label"] for p in result["predictions"]) == ["blue", "red"]
    assert len(result["scores"]) == 3 and result["scores"][2]["label"] == "green"


def test_evaluate_reports_per_label_figures_for_each_export(mosaic_run):
    tmp_path, table, report = mosaic_run
    for model in ("out/graph.pb", "out/model.tflite"):
        args = ["evaluate", "--graph", str(tmp_path / model), "--data_csv", str(table)]
        out = run([*args, "--json", "--quiet", "--plot", str(tmp_path / "plot.png")])
        assert out.exit_code == 0, out.output
        doc = json.loads(out.stdout)
        assert doc["multi_label"] and doc["map"] == 1.0 and doc["micro_f1"] == 1.0
        assert doc["n"] == report["test_size"]
        assert [row["label"] for row in doc["per_class"]] == sorted(COLOURS)
        assert all(row["f1"] == 1.0 for row in doc["per_class"] if row["support"])
        assert (tmp_path / "plot.png").stat().st_size > 0
    text = run([*args, "--quiet"]).output
    assert "mAP = 1.000" in text and "threshold  precision  recall" in text


def test_every_export_gives_the_same_probability_per_label(mosaic_run):
    import onnxruntime
    import tensorflow as tf

    tmp_path = mosaic_run[0]
    paths = [two_colour_image(tmp_path, a, b) for a, b in (("red", "green"), ("green", "blue"))]
    pixels = np.stack([load_image(p, 32) for p in paths])
    graph = graph_probabilities(tmp_path / "out" / "graph.pb", pixels)
    assert graph.shape == (2, 3) and not np.allclose(graph.sum(axis=1), 1.0)  # sigmoids
    session = onnxruntime.InferenceSession(str(tmp_path / "out" / "m.onnx"))
    onnx = session.run(["probabilities"], {session.get_inputs()[0].name: pixels})[0]
    np.testing.assert_allclose(onnx, graph, atol=1e-5)
    saved = tf.saved_model.load(str(tmp_path / "saved")).signatures["serving_default"]
    out = saved(images=tf.constant(pixels))
    np.testing.assert_allclose(out["probabilities"].numpy(), graph, rtol=1e-5, atol=1e-6)
    labels = (tmp_path / "out" / "labels.txt").read_text().split()
    decided = [sorted(np.array(labels)[row].tolist()) for row in out["decisions"].numpy()]
    assert decided == [["green", "red"], ["blue", "green"]]
    tflite = json.loads(
        run(
            ["label", "--graph", str(tmp_path / "out/model.tflite"), "--json", *map(str, paths)]
        ).stdout
    )["results"]
    for row, entry in zip(graph, tflite):
        for score in entry["scores"]:
            assert abs(row[labels.index(score["label"])] - score["score"]) < 1e-4


def test_multi_label_without_a_csv_is_refused_before_any_work(tmp_path):
    result = run(retrain_args(tmp_path, "--multi_label"))
    assert result.exit_code == 1 and "--multi_label needs --data_csv" in result.output
    assert not (tmp_path / "bottlenecks").exists()


def test_fine_tuning_learns_mosaics_with_a_sigmoid_per_label(tmp_path):
    table = make_colour_mosaics(tmp_path / "mosaics", count=150)
    args = retrain_args(tmp_path, "--data_csv", str(table), "--multi_label", "--json")
    args += ["--fine_tune_blocks", "1", "--fine_tune_epochs", "3", "--flip_left_right"]
    result = run(args)
    assert result.exit_code == 0, result.output
    assert "Epoch 3/3: Train exact match at 0.5 = " in result.stderr
    assert "Validation mAP = " in result.stderr
    report = json.loads(result.stdout)
    assert report["test_map"] == 1.0 and report["test_micro_f1"] == 1.0
    meta = json.loads((tmp_path / "out" / "graph.pb.json").read_text())
    assert meta["multi_label"] and meta["fine_tuning"]["blocks"] == 1
    image = two_colour_image(tmp_path, "green", "blue")
    out = run(["label", "--graph", str(tmp_path / "out" / "graph.pb"), str(image)])
    assert sorted(line.split(" (")[0] for line in out.stdout.splitlines()) == ["blue", "green"]


def test_a_test_split_without_positives_gives_null_figures_not_invalid_json(tmp_path):
    table = make_colour_mosaics(tmp_path / "mosaics", count=40)
    rows = table.read_text().splitlines()[1:]
    lines = ["path,labels,split"]
    for i, row in enumerate(rows):
        path, labels = row.split(",")
        split = ("train", "validation", "test")[i % 3]
        lines.append(f"{path},{'' if split == 'test' else labels},{split}")  # test: no labels
    table.write_text("\n".join(lines) + "\n")
    result = run(retrain_args(tmp_path, "--data_csv", str(table), "--multi_label", "--json"))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # NaN would not parse as strict JSON below
    json.loads(result.stdout, parse_constant=lambda name: pytest.fail(f"{name} in the JSON"))
    assert report["test_map"] is None  # no positive: no precision-recall curve
    assert report["test_exact_match"] is not None
