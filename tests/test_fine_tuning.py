"""`retrain --fine_tune_blocks K`: the top blocks trained on cached activations, exported, and
the activation cache reused, checked, sized and resumed from."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from helpers import REPO_ROOT, bottleneck_of, graph_probabilities, retrain_args
from poetslearn.cli.main import cli


def fine_tune_args(tmp_path: Path, colour_dir: Path, *extra: str) -> list[str]:
    return retrain_args(
        tmp_path,
        "--image_dir",
        str(colour_dir),
        "--fine_tune_blocks",
        "1",
        "--fine_tune_epochs",
        "3",
        "--fine_tune_batch_size",
        "8",
        "--fine_tune_learning_rate",
        "0.003",
        "--json",
        *extra,
    )


def test_fine_tuning_trains_the_backbone_exports_it_and_label_agrees(tmp_path, colour_dir):
    from poetslearn.backbone.architectures import get_architecture
    from poetslearn.backbone.weights import build_backbone
    from poetslearn.data.images import load_image
    from poetslearn.extract.extractor import FeatureExtractor

    result = CliRunner().invoke(cli, fine_tune_args(tmp_path, colour_dir))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert "Activations at image (32x32x3): computed 30, 0 were cached." in result.stderr
    assert "Epoch 3/3: Train accuracy = " in result.stderr
    # The closing line and --json book the new layer, the activations and the fine-tuning apart.
    parts = report["timings_s"]
    assert parts["new_layer"] + parts["activations"] + parts["fine_tuning"] <= parts["train_head"]
    assert re.search(
        r"new layer [\d.]+ s, activations [\d.]+ s, fine-tuning [\d.]+ s, export", result.stderr
    ), result.stderr
    meta = json.loads((tmp_path / "out" / "graph.pb.json").read_text())
    assert meta["fine_tuning"]["blocks"] == 1 and meta["fine_tuning"]["cut"] == "image"
    assert meta["fine_tuning"]["epochs"] == 3
    assert report["fine_tuning"] == meta["fine_tuning"]  # --json says what the export records
    # The kept epoch is the one with the best validation accuracy (epoch 0: the new layer alone).
    by_epoch = {
        int(m[0]): float(m[1])
        for m in re.findall(r"Epoch (\d)/3[^\n]*?Validation accuracy = ([\d.]+)%", result.stderr)
    }
    assert sorted(by_epoch) == [0, 1, 2, 3], result.stderr
    assert by_epoch[meta["best_step"]] == max(by_epoch.values())
    assert f"Kept the weights of epoch {meta['best_step']} " in result.stderr
    # The exported graph's features are no longer the pretrained network's: its conv changed.
    images = sorted((tmp_path / "colours").glob("*/*.png"))
    pixels = np.stack([load_image(p, 32) for p in images])
    arch = get_architecture("test_tiny")
    fresh = FeatureExtractor(arch, build_backbone(arch, "none")[0], "tf")(pixels)
    exported = bottleneck_of(tmp_path / "out" / "graph.pb", pixels)
    assert np.abs(exported - fresh).max() > 1e-3
    # `evaluate` on the export reproduces the test accuracy retrain reported.
    evaluated = CliRunner().invoke(
        cli,
        [
            "evaluate",
            "--graph",
            str(tmp_path / "out" / "graph.pb"),
            "--image_dir",
            str(colour_dir),
            "--json",
            "--quiet",
        ],
    )
    assert json.loads(evaluated.stdout)["accuracy"] == report["test_accuracy"] == 1.0
    for path in images[:4]:
        label = CliRunner().invoke(
            cli, ["label", "--graph", str(tmp_path / "out" / "graph.pb"), "--top_k", "1", str(path)]
        )
        assert label.output.startswith(path.parent.name + " (score=")


def test_activation_cache_is_reused_and_a_damaged_segment_recomputed(tmp_path, colour_dir):
    assert CliRunner().invoke(cli, fine_tune_args(tmp_path, colour_dir)).exit_code == 0
    again = CliRunner().invoke(cli, fine_tune_args(tmp_path, colour_dir))
    assert "computed 0, 30 were cached." in again.stderr
    rows = next((tmp_path / "bottlenecks" / "activations").glob("*/*.rows"))
    rows.write_bytes(rows.read_bytes()[:-5])  # truncated
    third = CliRunner().invoke(cli, fine_tune_args(tmp_path, colour_dir))
    assert third.exit_code == 0, third.output
    assert f"Activation cache segment {rows} is damaged" in third.stderr
    assert "computed 30, 0 were cached." in third.stderr
    assert json.loads(third.stdout)["test_accuracy"] == json.loads(again.stdout)["test_accuracy"]


def test_not_enough_disk_for_the_activations_stops_before_computing_them(
    tmp_path, colour_dir, monkeypatch
):
    from collections import namedtuple

    from poetslearn.extract import activation_cache

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(activation_cache.shutil, "disk_usage", lambda p: usage(10, 9, 1000))
    result = CliRunner().invoke(cli, fine_tune_args(tmp_path, colour_dir))
    assert result.exit_code == 1
    assert "Error: The activation cache needs 0.00 GB in " in result.output
    assert "but its disk has 0.00 GB free. Free some space" in result.output
    assert not list((tmp_path / "bottlenecks" / "activations").glob("*/*.rows"))
    assert not (tmp_path / "out" / "graph.pb").exists()


def test_same_seed_same_fine_tuned_network(tmp_path, colour_dir):
    runs = []
    for name in ("a", "b"):
        result = CliRunner().invoke(cli, fine_tune_args(tmp_path / name, colour_dir, "--seed", "5"))
        assert result.exit_code == 0, result.output
        runs.append(tmp_path / name / "out" / "graph.pb")
    pixels = np.random.default_rng(0).uniform(0, 255, (4, 40, 48, 3)).astype(np.float32)
    np.testing.assert_array_equal(bottleneck_of(runs[0], pixels), bottleneck_of(runs[1], pixels))


def test_impossible_block_count_is_a_usage_error(tmp_path, colour_dir):
    result = CliRunner().invoke(
        cli, retrain_args(tmp_path, "--image_dir", str(colour_dir), "--fine_tune_blocks", "2")
    )
    assert result.exit_code == 2
    assert "--fine_tune_blocks 2 is not possible for test_tiny; it can train the top 1 to 1." in (
        result.output
    )


@pytest.mark.processes
def test_a_run_killed_during_fine_tuning_resumes_and_ends_as_an_uninterrupted_one(
    tmp_path, colour_dir
):
    whole = CliRunner().invoke(cli, fine_tune_args(tmp_path / "whole", colour_dir))
    assert whole.exit_code == 0, whole.output
    held = tmp_path / "held"
    args = fine_tune_args(tmp_path / "killed", colour_dir)
    process = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "tests" / "held_fine_tuning.py"), str(held), *args],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 600  # a hang guard, not a timing assumption
        while not held.exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        process.kill()
    assert not (tmp_path / "killed" / "out" / "graph.pb").exists()
    resumed = CliRunner().invoke(cli, args)
    assert resumed.exit_code == 0, resumed.output
    assert "Resuming fine-tuning after epoch 1 of 3" in resumed.stderr
    assert "computed 0, 30 were cached." in resumed.stderr
    assert "Epoch 1/3" not in resumed.stderr and "Epoch 3/3" in resumed.stderr
    pixels = np.random.default_rng(1).uniform(0, 255, (5, 40, 48, 3)).astype(np.float32)
    np.testing.assert_array_equal(
        graph_probabilities(tmp_path / "killed" / "out" / "graph.pb", pixels),
        graph_probabilities(tmp_path / "whole" / "out" / "graph.pb", pixels),
    )
    assert not list((tmp_path / "killed" / "bottlenecks" / "checkpoints").glob("*.npz"))


def test_fine_tuning_all_trains_the_whole_network_on_the_images(tmp_path):
    from helpers import make_colour_folder
    from poetslearn.backbone.architectures import get_architecture
    from poetslearn.backbone.weights import build_backbone
    from poetslearn.data.images import load_image
    from poetslearn.extract.extractor import FeatureExtractor

    images_dir = make_colour_folder(tmp_path / "colours", per_class=100)  # 300 images
    args = retrain_args(
        tmp_path,
        "--image_dir",
        str(images_dir),
        "--fine_tune_blocks",
        "all",
        "--fine_tune_epochs",
        "2",
        "--fine_tune_batch_size",
        "16",
        "--fine_tune_learning_rate",
        "0.003",
        "--json",
    )
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert "Fine-tuning the whole network on the images themselves" in result.stderr
    assert "Epoch 2/2: Train accuracy = " in result.stderr
    assert not (tmp_path / "bottlenecks" / "activations").exists()  # nothing cached but vectors
    meta = json.loads((tmp_path / "out" / "graph.pb.json").read_text())
    assert meta["fine_tuning"]["blocks"] == "all" and meta["fine_tuning"]["cut"] == "image"
    # The export carries the trained convolution, and reproduces the reported accuracy.
    paths = sorted(images_dir.glob("*/*.png"))[:20]
    pixels = np.stack([load_image(p, 32) for p in paths])
    arch = get_architecture("test_tiny")
    fresh = FeatureExtractor(arch, build_backbone(arch, "none")[0], "tf")(pixels)
    assert np.abs(bottleneck_of(tmp_path / "out" / "graph.pb", pixels) - fresh).max() > 1e-3
    evaluated = CliRunner().invoke(
        cli,
        [
            "evaluate",
            "--graph",
            str(tmp_path / "out" / "graph.pb"),
            "--image_dir",
            str(images_dir),
            "--json",
            "--quiet",
        ],
    )
    assert json.loads(evaluated.stdout)["accuracy"] == report["test_accuracy"]


def test_fine_tune_blocks_takes_a_number_or_all():
    result = CliRunner().invoke(cli, ["retrain", "--fine_tune_blocks", "most"])
    assert result.exit_code == 2
    assert "'most' is neither a number of blocks nor 'all'" in result.output
