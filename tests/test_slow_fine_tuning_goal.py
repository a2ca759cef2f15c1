"""Issue 23's goal at mobilenet_0.25_128, with its genuine ImageNet weights on the whole of
CIFAR-10: `--fine_tune_blocks 4` and every other setting at its default reaches 85.0% on
validation and 86.0% on the bit-exact test rows 0-999, and the exported graph and .tflite score
what `retrain` reported. About four minutes on two cores."""

from __future__ import annotations

import json

from click.testing import CliRunner

from poetslearn.cli.main import cli
from poetslearn.config import LabelConfig
from poetslearn.data.cifar10 import load_cifar10
from poetslearn.data.sources import Split
from poetslearn.inference.evaluate import evaluate_split
from poetslearn.inference.label import load_classifier
from poetslearn.train.schedule import fine_tune_epochs

# retrain scores the test images through the activation cache (one byte per ReLU6 value at the
# cut), the exports run the float network: a few borderline images may go the other way.
# Measured at this setting: 2 images of 10,000 apart on an EPYC host; on a Sapphire Rapids host
# 5 of 10,000 and 5 of rows 0-999 (the exports 0.7972 and 0.879, retrain 0.7967 and 0.874),
# where the .pb, the .tflite and the .onnx gave the same figures to the image.
FLIPS_OF_10K, FLIPS_OF_1K = 0.002, 0.008


def test_fine_tuning_four_blocks_with_defaults_reaches_the_goal(shared, tmp_path, monkeypatch):
    monkeypatch.setenv("POETSLEARN_CACHE_DIR", str(tmp_path / "cache"))
    graph, tflite = tmp_path / "g.pb", tmp_path / "g.tflite"
    result = CliRunner().invoke(
        cli,
        [
            "retrain",
            "--architecture",
            "mobilenet_0.25_128",
            "--model_dir",
            str(shared / "models"),
            "--data_dir",
            str(shared / "data"),
            "--bottleneck_dir",
            str(tmp_path / "b"),
            "--summaries_dir",
            "",
            "--output_graph",
            str(graph),
            "--output_labels",
            str(tmp_path / "l.txt"),
            "--tflite_output",
            str(tflite),
            "--fine_tune_blocks",
            "4",
            "--quiet",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    meta = json.loads((tmp_path / "g.pb.json").read_text())
    tuning = meta["fine_tuning"]
    assert tuning["epochs"] == fine_tune_epochs(45_000)  # the rule, not a flag
    assert report["validation_accuracy"] >= 0.850, report
    assert report["test_accuracy_rows_0_999"] >= 0.860, report
    assert report["validation_accuracy"] >= tuning["new_layer_validation_accuracy"] + 0.03
    evaluated = CliRunner().invoke(
        cli, ["evaluate", "--graph", str(graph), "--data_dir", str(shared / "data"), "--json"]
    )
    assert evaluated.exit_code == 0, evaluated.output
    figures = json.loads(evaluated.stdout)
    rows = figures["test_accuracy_rows_0_999"]
    assert abs(figures["accuracy"] - report["test_accuracy"]) <= FLIPS_OF_10K, (figures, report)
    assert abs(rows - report["test_accuracy_rows_0_999"]) <= FLIPS_OF_1K, (figures, report)
    # The .tflite gives the graph's answers (rows 0-999 through the library: a tenth of the time).
    test = load_cifar10(shared / "data", download=False, show_progress=False).splits["test"]
    first = Split(test.images.subset(list(range(1000))), test.labels[:1000])
    classifier = load_classifier(LabelConfig(graph=tflite))
    on_tflite = evaluate_split(classifier, first, figures["labels"], show_progress=False)
    assert abs(on_tflite.accuracy - rows) <= 0.001, (on_tflite.accuracy, rows)
