"""The whole CIFAR-10 pipeline (60,000 images) on a real MobileNet; about a minute here."""

from __future__ import annotations

import json
import re

from click.testing import CliRunner

from poetslearn.cli.main import cli


def test_full_cifar10_with_mobilenet_random_weights(tmp_path, shared):
    args = [
        "retrain",
        "--data_dir",
        str(shared / "data"),
        "--architecture",
        "mobilenet_0.25_128",
        "--weights",
        "none",
        "--bottleneck_dir",
        str(tmp_path / "bottlenecks"),
        "--output_graph",
        str(tmp_path / "graph.pb"),
        "--output_labels",
        str(tmp_path / "labels.txt"),
        "--how_many_training_steps",
        "200",
        "--quiet",
    ]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "CIFAR-10: 10 classes; train 45,000, validation 5,000, test 10,000" in result.output
    assert re.search(r"Computed [\d,]+ bottlenecks", result.output)
    assert re.search(r"Final test accuracy = [\d.]+% \(N=10000\)", result.output)
    meta = json.loads((tmp_path / "graph.pb.json").read_text())
    assert meta["feature_dim"] == 256 and meta["dataset"]["sizes"]["test"] == 10000
    again = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert "bottlenecks were cached; computed none." in again.output
