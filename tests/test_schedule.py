"""The new layer's default training length: a rule of the training set's size."""

from __future__ import annotations

import json

from click.testing import CliRunner

from helpers import retrain_args
from poetslearn.cli.main import cli
from poetslearn.train.schedule import (
    eval_interval,
    fine_tune_epochs,
    fine_tune_learning_rate,
    new_layer_steps,
)


def test_cifar10_keeps_its_8000_steps_and_small_folders_get_few():
    assert new_layer_steps(45_000, 256) == 8000  # CIFAR-10's training split: as before
    assert new_layer_steps(2_900, 256) == 567  # flower_photos' training split: 50 passes
    assert new_layer_steps(32, 256) == 300  # a 40-image folder: the floor
    assert new_layer_steps(0, 256) == 300
    assert new_layer_steps(10_000_000, 256) == 8000  # never longer than before


def test_the_validation_split_is_checked_at_least_twenty_times():
    assert eval_interval(8000, 100) == 100
    assert eval_interval(300, 100) == 15
    assert eval_interval(10, 100) == 1
    assert eval_interval(567, 10) == 10  # a smaller interval asked for is kept


def test_retrain_without_a_step_count_follows_the_rule_and_flags_win(tmp_path, colour_dir):
    args = retrain_args(tmp_path, "--image_dir", str(colour_dir))
    at = args.index("--how_many_training_steps")
    default = [*args[:at], *args[at + 2 :]]
    result = CliRunner().invoke(cli, default)
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "out" / "graph.pb.json").read_text())
    assert meta["training"]["how_many_training_steps"] == 300
    result = CliRunner().invoke(cli, [*default, "--how_many_training_steps", "120"])
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "out" / "graph.pb.json").read_text())
    assert meta["training"]["how_many_training_steps"] == 120


def test_fine_tuning_sees_about_360000_images_in_2_to_30_passes():
    assert fine_tune_epochs(45_000) == 8  # CIFAR-10's training split
    assert fine_tune_epochs(2_900) == 30  # flower_photos: the ceiling
    assert fine_tune_epochs(28) == 30  # a 40-image folder: 30 steps of one batch
    assert fine_tune_epochs(0) == 30
    assert fine_tune_epochs(100_000) == 4
    assert fine_tune_epochs(1_200_000) == 2  # ImageNet-sized: the floor


def test_fine_tuning_rate_is_divided_by_the_width_multiplier():
    assert fine_tune_learning_rate(0.25) == 4e-4
    assert fine_tune_learning_rate(0.5) == 2e-4
    assert fine_tune_learning_rate(1.0) == 1e-4
    assert fine_tune_learning_rate(None) == 1e-4  # Inception V3, test_tiny: no multiplier


def test_fine_tuning_without_epochs_follows_the_rule_and_flags_win(tmp_path, colour_dir):
    args = [*retrain_args(tmp_path, "--image_dir", str(colour_dir)), "--fine_tune_blocks", "1"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "out" / "graph.pb.json").read_text())
    assert meta["fine_tuning"]["epochs"] == 30
    assert meta["fine_tuning"]["learning_rate"] == 1e-4
    assert "Fine-tuning for 30 epochs at a peak learning rate of 0.0001" in result.output
    result = CliRunner().invoke(cli, [*args, "--fine_tune_epochs", "2"])
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "out" / "graph.pb.json").read_text())
    assert meta["fine_tuning"]["epochs"] == 2
