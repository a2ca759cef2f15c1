"""retrain -> label through the real CLI, on solid-colour folders and a tiny CIFAR-10."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from helpers import COLOURS, noisy_colour, retrain_args
from poetslearn.cli.main import cli


def run(args: list[str]):
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def test_retrain_then_label_each_colour(tmp_path, colour_dir):
    result = run(retrain_args(tmp_path, "--image_dir", str(colour_dir)))
    assert result.exit_code == 0, result.output
    assert re.search(r"Final test accuracy = 100\.0% \(N=\d+\)", result.output)
    assert "Step 300: Train accuracy = " in result.output
    labels_file = tmp_path / "out" / "labels.txt"
    assert labels_file.read_text().splitlines() == sorted(COLOURS)
    meta = json.loads((tmp_path / "out" / "graph.pb.json").read_text())
    assert meta["architecture"] == "test_tiny" and meta["labels"] == sorted(COLOURS)
    assert meta["input_tensor"] == "input:0" and meta["output_tensor"] == "final_result:0"
    assert meta["weights"]["kind"] == "random"

    # New images, of another size, that retrain never saw.
    images = []
    for i, (name, colour) in enumerate(COLOURS.items()):
        path = tmp_path / f"new_{name}.png"
        Image.fromarray(noisy_colour(colour, size=(64, 80), seed=999 + i)).save(path)
        images.append((name, path))
    for name, path in images:
        out = run(["label", "--graph", str(tmp_path / "out" / "graph.pb"), "--image", str(path)])
        assert out.exit_code == 0, out.output
        first = out.output.splitlines()[0]
        assert re.fullmatch(rf"{name} \(score=0\.\d{{5}}\)", first), out.output
        assert len(out.output.splitlines()) == 3  # top_k 5 capped at the 3 classes

    out = run(
        [
            "label",
            "--graph",
            str(tmp_path / "out" / "graph.pb"),
            "--json",
            "--top_k",
            "1",
            *[str(p) for _, p in images],
        ]
    )
    doc = json.loads(out.output)
    assert [r["predictions"][0]["label"] for r in doc["results"]] == [n for n, _ in images]
    assert all(len(r["predictions"]) == 1 for r in doc["results"])


def test_label_bad_image_fails_but_labels_the_others(tmp_path, colour_dir):
    assert run(retrain_args(tmp_path, "--image_dir", str(colour_dir))).exit_code == 0
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    good = colour_dir / "red" / "img_0.png"
    result = CliRunner().invoke(
        cli, ["label", "--graph", str(tmp_path / "out" / "graph.pb"), str(bad), str(good)]
    )
    assert result.exit_code == 1
    assert f"Error: {bad} is not a readable image" in result.stderr
    assert f"{good}:" in result.stdout and "red (score=" in result.stdout


def test_second_retrain_computes_nothing_and_changed_image_is_recomputed(tmp_path, colour_dir):
    first = run(retrain_args(tmp_path, "--image_dir", str(colour_dir)))
    assert "Computed 30 bottlenecks" in first.output
    second = run(retrain_args(tmp_path, "--image_dir", str(colour_dir)))
    assert "All 30 bottlenecks were cached; computed none." in second.output

    path = colour_dir / "green" / "img_2.bmp"
    pixels = np.array(Image.open(path))
    pixels[0, 0] = (0, 0, 0)
    Image.fromarray(pixels).save(path, format="BMP")
    third = run(retrain_args(tmp_path, "--image_dir", str(colour_dir)))
    assert "Computed 1 bottlenecks" in third.output and "29 were cached" in third.output


def test_different_weights_never_share_vectors(tmp_path, colour_dir):
    run(retrain_args(tmp_path, "--image_dir", str(colour_dir)))
    other_seed = run(retrain_args(tmp_path, "--image_dir", str(colour_dir), "--seed", "5"))
    # test_tiny's initialisers are seeded, so --seed leaves its weights (and the cache) alone...
    assert "computed none" in other_seed.output
    # ...while a weights file with other values must not reuse those vectors.
    import keras

    from poetslearn.backbone.architectures import get_architecture

    model = get_architecture("test_tiny").build_backbone()
    model.set_weights([w * 2 for w in model.get_weights()])
    weights_file = tmp_path / "doubled.weights.h5"
    model.save_weights(weights_file)
    doubled = run(
        retrain_args(tmp_path, "--image_dir", str(colour_dir), "--weights", str(weights_file))
    )
    assert doubled.exit_code == 0, doubled.output
    assert "Computed 30 bottlenecks" in doubled.output
    assert "weights file" in doubled.output and "sha256" in doubled.output
    del keras


def test_retrain_on_tiny_cifar10(tmp_path, tiny_cifar):
    result = run(
        retrain_args(tmp_path, "--data_dir", str(tiny_cifar), "--print_misclassified_test_images")
    )
    assert result.exit_code == 0, result.output
    assert "CIFAR-10: 10 classes; train 90, validation 10, test 30" in result.output
    accuracy = float(re.search(r"Final test accuracy = ([\d.]+)% \(N=30\)", result.output)[1])
    assert accuracy >= 90.0, result.output
    assert "=== MISCLASSIFIED TEST IMAGES ===" in result.output
    labels = (tmp_path / "out" / "labels.txt").read_text().splitlines()
    assert labels[0] == "airplane" and labels[-1] == "truck"


def test_deterministic_with_seed(tmp_path, colour_dir):
    outputs = []
    for run_id in range(2):
        args = retrain_args(tmp_path / str(run_id), "--image_dir", str(colour_dir), "--seed", "3")
        result = run(args)
        # Everything but timings, rates and memory must be identical.
        timeless = re.sub(
            r"[\d.]+ s\b|\([\d,]+ img/s\)|memory [\d,]+ MB|run-[\d-]+", "", result.output
        )
        outputs.append(timeless.replace(str(tmp_path / str(run_id)), ""))
        outputs.append(graph_constants(tmp_path / str(run_id) / "out" / "graph.pb"))
    assert outputs[0] == outputs[2]
    for name in ("final_weights", "final_biases"):
        np.testing.assert_array_equal(outputs[1][name], outputs[3][name])


def graph_constants(path: Path) -> dict[str, np.ndarray]:
    """The new layer's weights and biases, read back from a frozen graph's constants."""
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef.FromString(path.read_bytes())
    nodes = list(graph_def.node) + [n for f in graph_def.library.function for n in f.node_def]
    found = {}
    for node in nodes:
        short = node.name.rsplit("/", 1)[-1]
        if node.op == "Const" and short in ("final_weights", "final_biases"):
            found[short] = tf.make_ndarray(node.attr["value"].tensor)
    assert set(found) == {"final_weights", "final_biases"}, sorted(found)
    return found


def test_kebab_and_snake_spellings_are_the_same_option(tmp_path, colour_dir):
    args = retrain_args(tmp_path, "--image-dir", str(colour_dir), "--how-many-training-steps", "20")
    result = run(args)
    assert result.exit_code == 0, result.output
    assert "Step 20:" in result.output and "Step 300" not in result.output


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["--architecture", "resnet_50"], 2, "'resnet_50' is not one of"),
        (["--image_dir", "/no/such/folder"], 2, "does not exist"),
        (["--how_many_training_steps", "0"], 1, "--how_many_training_steps must be greater than 0"),
        (
            ["--validation_percentage", "60", "--testing_percentage", "40"],
            1,
            "sum to less than 100",
        ),
        (["--dataset", "cifar10", "--image_dir", "."], 2, "got --dataset and --image_dir"),
    ],
)
def test_bad_usage(tmp_path, args, code, message):
    result = CliRunner().invoke(cli, retrain_args(tmp_path, *args))
    assert result.exit_code == code, result.output
    assert message in result.output


def test_unknown_architecture_lists_valid_names(tmp_path):
    result = CliRunner().invoke(cli, ["retrain", "--architecture", "mobilenet_2.0_224"])
    assert result.exit_code == 2
    assert "mobilenet_0.50_224" in result.output and "inception_v3" in result.output


def test_single_class_folder_is_an_error(tmp_path):
    from helpers import make_colour_folder

    folder = make_colour_folder(tmp_path / "one", colours={"red": (255, 0, 0)})
    result = CliRunner().invoke(cli, retrain_args(tmp_path, "--image_dir", str(folder)))
    assert result.exit_code == 1
    assert "has 1 class folder(s); a classifier needs at least 2" in result.output


def test_class_too_small_to_split_is_an_error_before_any_work(tmp_path):
    from helpers import make_colour_folder

    folder = make_colour_folder(tmp_path / "data", per_class=6)
    for extra in sorted((folder / "blue").iterdir())[2:]:
        extra.unlink()
    result = CliRunner().invoke(cli, retrain_args(tmp_path, "--image_dir", str(folder)))
    assert result.exit_code == 1
    assert "Class 'blue'" in result.output and "has 2 image(s); at least 3 are needed" in (
        result.output
    )
    assert not (tmp_path / "bottlenecks").exists()


def test_missing_cifar_without_download_names_the_folder(tmp_path, monkeypatch):
    from poetslearn.data import cifar10
    from poetslearn.errors import DataError

    with pytest.raises(DataError, match="CIFAR-10 was not found in"):
        cifar10.load_cifar10(tmp_path, download=False)


def test_retrain_json_goes_to_stdout_and_text_to_stderr(tmp_path, colour_dir):
    result = CliRunner().invoke(
        cli, retrain_args(tmp_path, "--image_dir", str(colour_dir), "--json")
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["test_accuracy"] == 1.0 and report["dataset"]["classes"] == sorted(COLOURS)
    assert report["outputs"]["graph"] == str(tmp_path / "out" / "graph.pb")
    assert report["bottlenecks"]["computed"] == 30 and report["timings_s"]["total"] > 0
    assert "Final test accuracy = 100.0%" in result.stderr


def test_assert_accuracy_at_least(tmp_path, colour_dir):
    ok = CliRunner().invoke(
        cli,
        retrain_args(tmp_path, "--image_dir", str(colour_dir), "--assert_accuracy_at_least", "0.9"),
    )
    assert ok.exit_code == 0, ok.output
    # Random weights on CIFAR-like noise cannot reach 99%: the gate fails and nothing is written.
    from helpers import make_tiny_cifar

    data = make_tiny_cifar(tmp_path / "cifar")
    out = tmp_path / "gated"
    failed = CliRunner().invoke(
        cli,
        retrain_args(
            out,
            "--data_dir",
            str(data),
            "--assert_accuracy_at_least",
            "0.999",
            "--how_many_training_steps",
            "1",
        ),
    )
    assert failed.exit_code == 1 and "ACCURACY FAILED" in failed.output
    assert list((out / "out").iterdir()) == []  # the folder was checked for writing, no more
    bad = CliRunner().invoke(
        cli,
        retrain_args(tmp_path, "--image_dir", str(colour_dir), "--assert_accuracy_at_least", "80"),
    )
    assert bad.exit_code == 1 and "a fraction between 0 and 1" in bad.output


def test_tensorboard_summaries_one_folder_per_run(tmp_path, colour_dir):
    import tensorflow as tf

    for _ in range(2):
        assert run(retrain_args(tmp_path, "--image_dir", str(colour_dir))).exit_code == 0
    runs = sorted((tmp_path / "summaries").iterdir())
    assert len(runs) == 2  # the first run was kept
    tags = {}
    for split in ("train", "validation"):
        for events in (runs[0] / split).glob("events.out.tfevents.*"):
            for record in tf.data.TFRecordDataset(str(events)):
                event = tf.compat.v1.Event.FromString(record.numpy())
                for value in event.summary.value:
                    tags.setdefault(split, set()).add(value.tag)
    assert {"accuracy", "cross_entropy", "final_layer/weights"} <= tags["train"]
    assert {"accuracy", "cross_entropy"} <= tags["validation"]
    off = run(retrain_args(tmp_path / "off", "--image_dir", str(colour_dir), "--summaries_dir", ""))
    assert off.exit_code == 0 and "TensorBoard" not in off.output


def test_distorted_copies_are_cached_and_trained_on(tmp_path, colour_dir):
    args = retrain_args(
        tmp_path,
        "--image_dir",
        str(colour_dir),
        "--flip_left_right",
        "--random_crop",
        "10",
        "--random_scale",
        "20",
        "--random_brightness",
        "10",
        "--distorted_copies",
        "3",
    )
    first = run(args)
    assert first.exit_code == 0, first.output
    train = int(re.search(r"train (\d+),", first.output)[1])
    assert f"Training on {train} images and {3 * train} distorted copies" in first.output
    assert f"Computed {30 + 3 * train} bottlenecks" in first.output
    second = run(args)
    assert f"All {30 + 3 * train} bottlenecks were cached; computed none." in second.output
    other = run(args[:-2] + ["--distorted_copies", "4"])  # other settings: other copies
    assert "Computed " in other.output and "computed none" not in other.output


def test_distortions_change_pixels_reproducibly(colour_dir):
    from poetslearn.data.distortions import DistortedImages, Distortions
    from poetslearn.data.image_folder import load_image_folder

    data = load_image_folder(colour_dir, show_progress=False, warn=lambda *_: None)
    base = data.splits["train"].images
    settings = Distortions(True, 20, 20, 20, copies=2)
    a, _ = DistortedImages(base, settings).load_batch([0, 1, 2, 3], 32)
    b, _ = DistortedImages(base, settings).load_batch([0, 1, 2, 3], 32)
    plain, _ = base.load_batch([0, 1], 32)
    assert a.shape == (4, 32, 32, 3)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a[0], a[1]) and not np.allclose(a[0], plain[0])


def test_int8_engine_trains_on_its_own_cached_vectors(tmp_path, colour_dir):
    int8 = run(retrain_args(tmp_path, "--image_dir", str(colour_dir), "--engine", "tflite_int8"))
    assert int8.exit_code == 0, int8.output
    assert "Computed 30 bottlenecks" in int8.output and "Engine: tflite_int8" in int8.output
    assert "accuracies are on tflite_int8 bottlenecks" in int8.output
    accuracy = float(re.search(r"Final test accuracy = ([\d.]+)%", int8.output)[1])
    assert accuracy >= 90.0, int8.output
    metadata = json.loads((tmp_path / "out" / "graph.pb.json").read_text())
    assert metadata["bottleneck_engine"] == "tflite_int8"
    # Float vectors differ from int8 ones, so they are never taken from the int8 cache.
    exact = run(retrain_args(tmp_path, "--image_dir", str(colour_dir), "--engine", "tflite"))
    assert "Computed 30 bottlenecks" in exact.output and "0 were cached" in exact.output
    again = run(retrain_args(tmp_path, "--image_dir", str(colour_dir), "--engine", "tflite_int8"))
    assert "computed none" in again.output
    metadata = json.loads((tmp_path / "out" / "graph.pb.json").read_text())
    assert metadata["bottleneck_engine"] == "tflite_int8"  # from the cache, still int8 vectors


def test_whole_output_of_retrain_and_label_is_pinned(tmp_path, colour_dir):
    result = CliRunner().invoke(
        cli,
        retrain_args(tmp_path, "--image_dir", str(colour_dir), "--how_many_training_steps", "100"),
    )
    assert result.exit_code == 0, result.output
    t = str(tmp_path)
    number = r"[\d,]+(\.\d)?"
    expected = [
        rf"Dataset colours: 3 classes; train 23, validation 4, test 3 \(from {colour_dir}\)",
        r"Architecture test_tiny: 32x32 input, 16 features; weights: random initialisation "
        r"\(no pretrained weights: for quick tests only, accuracy will be poor\)",
        rf"Computed 30 bottlenecks in {number} s \({number} img/s\); 0 were cached\. "
        rf"Engine: tflite\. Cache: {t}/bottlenecks/test_tiny_[0-9a-f]{{16}}",
        r"Step 50: Train accuracy = 100\.0%, Cross entropy = 0\.\d{4}, Validation accuracy = "
        r"100\.0% \(N=4\)",
        r"Step 100: Train accuracy = 100\.0%, Cross entropy = 0\.\d{4}, Validation accuracy = "
        r"100\.0% \(N=4\)",
        rf"TensorBoard summaries written to {t}/summaries/run-\d{{8}}-\d{{6}}",
        r"Kept the weights of step \d+ \(best validation accuracy 100\.0%\)\.",
        r"Final test accuracy = 100\.0% \(N=3\)",
        rf"Graph written to {t}/out/graph\.pb",
        rf"Labels written to {t}/out/labels\.txt",
        rf"Metadata written to {t}/out/graph\.pb\.json",
        rf"Done in {number} s \(data {number} s, network {number} s, bottlenecks {number} s, "
        rf"new layer {number} s, export {number} s\); peak memory {number} MB\.",
    ]
    lines = result.stdout.splitlines()
    assert len(lines) == len(expected), result.stdout
    for line, pattern in zip(lines, expected):
        assert re.fullmatch(pattern, line), (line, pattern)
    assert result.stderr == (
        "Warning: --weights none uses random weights; the classifier will "
        "be far worse than with ImageNet weights. Use it for quick tests "
        "only.\n"
    )

    from poetslearn.config import LabelConfig
    from poetslearn.inference.label import load_classifier

    graph = str(tmp_path / "out" / "graph.pb")
    classifier = load_classifier(LabelConfig(graph=tmp_path / "out" / "graph.pb"))
    red, blue = colour_dir / "red" / "img_0.png", colour_dir / "blue" / "img_1.jpg"

    def block(path: Path, indent: str) -> str:
        return "".join(
            f"{indent}{p.label} (score={p.score:.5f})\n" for p in classifier.classify(path, 5)
        )

    one = CliRunner().invoke(cli, ["label", "--graph", graph, "--image", str(red)])
    assert one.exit_code == 0 and one.stderr == ""
    assert one.stdout == block(red, "")
    assert one.stdout.startswith("red (score=") and len(one.stdout.splitlines()) == 3
    two = CliRunner().invoke(cli, ["label", "--graph", graph, str(red), str(blue)])
    assert two.exit_code == 0 and two.stderr == ""
    assert two.stdout == f"{red}:\n{block(red, '  ')}{blue}:\n{block(blue, '  ')}"
    assert two.stdout.splitlines()[5].startswith("  blue (score=")
