"""The measurement scripts run end to end (tiny network, tiny CIFAR-10, short timings): each is
run as a person runs it, in a process of its own, and what it prints is checked for its shape
and for the figures that do not depend on the machine (counts, agreements, bounds of a
fraction). No test asserts a measured speed or load: those are the scripts' output."""

from __future__ import annotations

import contextlib
import io
import json
import os
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import make_tiny_cifar
from poetslearn.data import resize

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.scripts
TINY = ["--architecture", "test_tiny", "--weights", "none"]


def run_script(cwd: Path, name: str, *args, exit_code: int = 0) -> str:
    """`python scripts/NAME ARGS...` from `cwd`, as a person runs it, but in this process: its
    standard output (its standard error shown when its exit code is not `exit_code`).

    In this process because a fresh interpreter spends about 7 s of a core importing
    TensorFlow, once for every script run here; what a script starts itself (the retrain or
    label processes it times, Ray) still starts fresh. What a script may change of this
    process (argv, the import path, the working folder, the environment, the resize it chose)
    is put back, and each script starts with the resize a new process starts with."""
    path = ROOT / "scripts" / name
    out, err = io.StringIO(), io.StringIO()
    saved_environ = dict(os.environ)
    code = 0
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "argv", [str(path), *map(str, args)])
        patch.syspath_prepend(str(path.parent))  # as `python scripts/NAME` puts it first
        patch.chdir(cwd)
        patch.setattr(resize, "_chosen", "pillow")
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                runpy.run_path(str(path), run_name="__main__")
        except SystemExit as stop:  # click always ends with one; a message means 1
            code = stop.code or 0
            if not isinstance(code, int):
                err.write(str(stop.code))
                code = 1
        except BaseException:
            print(out.getvalue()[-2000:], err.getvalue()[-4000:], sep="\n", file=sys.stderr)
            raise
        finally:
            os.environ.clear()
            os.environ.update(saved_environ)
    assert code == exit_code, out.getvalue()[-2000:] + err.getvalue()[-4000:]
    return out.getvalue()


def last_json(out: str):
    """The script's JSON line (the last one that is JSON: Ray may print after it)."""
    return json.loads(
        next(line for line in reversed(out.splitlines()) if line.startswith(("{", "[")))
    )


def test_benchmark_prints_a_table_and_json_with_every_engine(tmp_path, tiny_cifar):
    out = run_script(
        tmp_path,
        "benchmark.py",
        *TINY,
        "--data_dir",
        tiny_cifar,
        "--model_dir",
        tmp_path,
        "--images",
        "16",
        "--batch",
        "8",
        "--seconds",
        "0.2",
        "--rounds",
        "2",
        "--bottleneck_dir",
        tmp_path / "bottlenecks",
    )
    report = last_json(out)
    # test_tiny: 16 filters of 3x3x3 over a 15x15 output (32x32, stride 2, no padding).
    assert report["macs_per_image"] == 15 * 15 * 16 * 3 * 3 * 3
    assert report["engine"] == "tflite"
    assert set(report["img_per_s"]) == {
        "poetslearn auto (tflite)",
        "poetslearn tflite",
        "poetslearn onnxruntime",
        "poetslearn tf",
        "poetslearn tflite_int8",
        "keras predict",
    }
    assert all(rate > 0 for rate in report["img_per_s"].values())
    assert report["matmul_peak_gflops"] > 0
    assert report["host"]["cpu"] and report["host"]["cores"] >= 1
    assert report["warm_run_s"] > 0 and report["first_run_peak_mb"] > 0
    assert "host: " in out and "% FMA" in out


def test_label_speed_times_the_three_ways_of_labelling(tmp_path, tiny_cifar):
    out = run_script(
        tmp_path,
        "label_speed.py",
        *TINY,
        "--data_dir",
        tiny_cifar,
        "--model_dir",
        tmp_path,
        "--rounds",
        "1",
        "--warm_rounds",
        "0",
    )
    report = last_json(out)
    assert set(report["median_s"]) == {
        "poetslearn label, .tflite",
        "poetslearn label, .pb",
        "poetslearn label, .pb converted for LiteRT",
        "codelab label_image.py steps, .pb",
    }
    assert all(seconds > 0 for seconds in report["median_s"].values())
    assert "| poetslearn label, .tflite |" in out


@pytest.mark.ray
def test_ray_benchmark_compares_local_ray_and_two_nodes(tmp_path, tiny_cifar, monkeypatch):
    monkeypatch.setenv("RAY_worker_niceness", "0")  # as test_ray's cluster: see its fixture
    out = run_script(
        tmp_path,
        "ray_benchmark.py",
        *TINY,
        "--data_dir",
        tiny_cifar,
        "--model_dir",
        tmp_path,
        "--images",
        "60",
        "--batch",
        "8",
        # ray_ceiling is ray_local's path with another network: one Ray start less.
        "--ways",
        "local,ray_local,two_nodes",
    )
    report = last_json(out)
    ways = {r["mode"]: r for r in report["results"]}
    assert set(ways) == {"local", "ray_local", "two_nodes"}
    assert len(ways["two_nodes"]["by_node"]) == 2
    assert sum(ways["two_nodes"]["by_node"].values()) == 60
    assert ways["ray_local"]["max_relative_difference"] <= 1e-5
    assert ways["two_nodes"]["max_relative_difference"] <= 1e-5
    assert all(r["extraction_s"] > 0 and r["steady_images_per_s"] > 0 for r in ways.values())


def test_fine_tune_speed_reports_a_share_of_the_peak(tmp_path):
    out = run_script(
        tmp_path,
        "fine_tune_speed.py",
        *TINY,
        "--model_dir",
        tmp_path,
        "--blocks",
        "1",
        "--batch",
        "8",
        "--seconds",
        "0.2",
    )
    report = last_json(out)
    (row,) = report["rows"]
    assert row["blocks"] == 1 and row["images_per_s"] > 0 and row["gflops"] > 0
    assert 0 < row["share_of_matmul_peak"]
    assert "of the matmul peak" in out


def test_bottleneck_blocks_compares_block_counts_on_one_extraction(tmp_path, tiny_cifar):
    out = run_script(
        tmp_path,
        "bottleneck_blocks.py",
        *TINY,
        "--data_dir",
        tiny_cifar,
        "--model_dir",
        tmp_path,
        "--bottleneck_dir",
        tmp_path / "bottlenecks",
        "--blocks",
        "1,all",
    )
    rows = {line.split()[0]: line.split() for line in out.splitlines()[-2:]}
    # test_tiny: its conv's 16 channels alone, then the image's 3 beside them.
    assert rows["1"][1] == "16" and rows["all"][1] == "19"
    assert all(row[2].endswith("%") and row[4].endswith("%") for row in rows.values())
    # One extraction, kept where `retrain --bottleneck_blocks all` finds it.
    assert len(list((tmp_path / "bottlenecks").glob("test_tiny_*"))) == 1


def test_mediapipe_resize_compares_label_with_mediapipe(tmp_path, tiny_cifar):
    pytest.importorskip("mediapipe", reason="the script measures MediaPipe Tasks")
    out = run_script(
        tmp_path,
        "mediapipe_resize.py",
        *TINY,
        "--steps",
        "50",
        "--rows",
        "6",
        "--photo_size",
        "80x60",
        "--data_dir",
        tiny_cifar,
        "--model_dir",
        tmp_path,
        "--work",
        tmp_path / "work",
    )
    report = last_json(out)
    ways = [k for k in report if k.startswith(("poetslearn", "MediaPipe"))]
    assert len(ways) == 4 and report["poetslearn label"]["same_top_label_as_label"] == 1.0
    assert all(0 <= report[way]["accuracy"] <= 1 for way in ways)
    assert len(list((tmp_path / "work" / "photos_80x60").rglob("*.jpg"))) == 6


def test_benchmark_photos_profile_times_each_resize_and_compares_their_bottlenecks(tmp_path):
    folder = tmp_path / "photos" / "a"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(3):
        pixels = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i}.jpg", quality=90)
    out = run_script(
        tmp_path, "benchmark_photos.py", "profile", tmp_path / "photos", *TINY, "--count", "3"
    )
    report = last_json(out)
    assert set(report["resize_ms"]) == {"compiled", "pillow"}
    assert 0 <= report["max_pixel_difference"] < 1e-3  # the same rule, float32 against double
    assert report["max_bottleneck_difference"] < 1e-3 * max(report["bottleneck_scale"], 1)
    assert "compiled resize: loaded in" in out and "pillow resize: decode" in out


def test_benchmark_photos_compares_the_three_pipelines(tmp_path):
    out = run_script(
        tmp_path,
        "benchmark_photos.py",
        *TINY,
        "--model_dir",
        tmp_path,
        "--small",
        "24",
        "--small_size",
        "80x60",
        "--large",
        "12",
        "--large_size",
        "400x300",
        "--label_count",
        "20",
        "--label_models",
        "tflite",
        "--rounds",
        "1",
        "--matmul_seconds",
        "0.1",
        "--work",
        tmp_path / "work",
        "--in_process",  # each method in a process of its own is the same code, 8 starts slower
    )
    report = last_json(out)
    assert report["host"]["matmul_peak_gflops"] > 0 and report["host"]["cores"] >= 1
    assert "host: " in out and "TensorFlow 4096x4096 matmul" in out
    assert set(report["sizes"]) == {"80x60", "400x300"}
    for row in report["sizes"].values():
        for method in ("poetslearn", "poetslearn_pillow", "keras", "codelab"):
            assert {"img_per_s", "cores_busy", "peak_mb"} <= set(row[method])
        assert row["vs_keras"] > 0 and row["vs_codelab"] > 0 and row["vs_pillow_resize"] > 0
        # 24 and 12 photos: below resize.COMPILED_FROM, Pillow's resize in both.
        assert row["poetslearn"]["resize"] == row["poetslearn_pillow"]["resize"] == "pillow"
    assert set(report["label_evaluate"]) == {
        "label .tflite",
        "evaluate .tflite",
        "first label .tflite",
    }
    assert len(list((tmp_path / "work" / "photos_24_80x60").rglob("*.jpg"))) == 24


def test_fine_tune_levers_measures_each_variant_and_its_mirrored_scores(tmp_path, tiny_cifar):
    out = run_script(
        tmp_path,
        "fine_tune_levers.py",
        "measure",
        *TINY,
        "--blocks",
        "1",
        "--variants",
        "baseline,mixup+smoothing",
        "--data_dir",
        tiny_cifar,
        "--model_dir",
        tmp_path,
        "--work",
        tmp_path / "work",
    )
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [r["variant"] for r in rows] == ["baseline", "mixup+smoothing"], out
    assert rows[1]["fields"]["mixup"] == 0.2 and rows[1]["fields"]["label_smoothing"] == 0.1
    for row in rows:
        assert len(row["epochs"]) == row["fields"]["fine_tune_epochs"] == 6
        assert 0 <= row["validation_mirrored"] <= 1 and 0 <= row["test_plain"] <= 1


def test_cifar_mosaics_makes_a_multi_label_table_and_measures_it(tmp_path, tiny_cifar):
    made = run_script(
        tmp_path, "cifar_mosaics.py", "make", "--data_dir", tiny_cifar, "--out", tmp_path / "m",
        "--train", 200, "--validation", 40, "--test", 40,
    )  # fmt: skip
    assert "Wrote 280 mosaics" in made
    rows = (tmp_path / "m" / "mosaics.csv").read_text().splitlines()
    assert rows[0] == "path,labels,split" and len(rows) == 281
    assert rows[1].startswith("train/00000.png,") and rows[-1].endswith(",test")
    from PIL import Image

    assert Image.open(tmp_path / "m" / "test" / "00000.png").size == (64, 64)
    out = run_script(
        tmp_path, "cifar_mosaics.py", "measure", "--table", tmp_path / "m" / "mosaics.csv",
        "--architecture", "test_tiny", "--variants", "new_layer,blocks_all",
        "--work", tmp_path / "work", "--weights_args", "--weights none",
    )  # fmt: skip
    results = last_json(out)["results"]
    assert list(results) == ["new_layer", "blocks_all"], out
    for figures in results.values():
        assert 0 <= figures["test_map"] <= 1 and 0 <= figures["test_micro_f1"] <= 1
    assert results["new_layer"]["computed"] == 280  # the second variant pools other blocks


def test_multi_label_thresholds_compares_each_rule(tmp_path):
    from helpers import make_colour_mosaics

    table = make_colour_mosaics(tmp_path / "mosaics", count=90)
    out = run_script(
        tmp_path, "multi_label_thresholds.py", *TINY, "--data_csv", table,
        "--bottleneck_dir", tmp_path / "bn",
    )  # fmt: skip
    rows = last_json(out)["rows"]
    assert list(rows) == [
        "0.5",
        "one_for_all",
        "raw_peak_per_label",
        "micro_f1_ascent",
        "smoothed_per_label",
        "shrunk_per_label",
    ]
    assert all(0 <= row["test_micro_f1"] <= 1 for row in rows.values())


def tiny_graph(tmp_path: Path, **data) -> Path:
    """A test_tiny graph retrained on `data` (image_dir= a class-folder tree, or data_dir= a
    CIFAR-10)."""
    from poetslearn import RetrainConfig, retrain

    graph = tmp_path / "graph.pb"
    retrain(
        RetrainConfig(
            architecture="test_tiny",
            weights="none",
            **data,
            bottleneck_dir=tmp_path / "bottlenecks",
            output_graph=graph,
            output_labels=tmp_path / "labels.txt",
            summaries_dir="",
            how_many_training_steps=100,
            show_progress=False,
        ),
        log=lambda _: None,
    )
    return graph


def test_mirror_scoring_reports_plain_and_mirrored_accuracy(tmp_path, tiny_cifar):
    graph = tiny_graph(tmp_path, data_dir=tiny_cifar)
    out = run_script(tmp_path, "mirror_scoring.py", "--graph", graph, "--data_dir", tiny_cifar)
    scores = last_json(out)
    for split in ("validation", "test", "rows_0_999"):
        for scoring in ("plain", "mirrored", "mirrored_logits"):
            assert 0 <= scores[f"{split}_{scoring}"] <= 1, out
    assert "mirrored_logits" in out and "validation / rows 0-999 / test 10k" in out


def test_compare_heads_trains_every_variant_and_the_codelab_head(tmp_path, tiny_cifar):
    out = run_script(tmp_path, "compare_heads.py", *TINY, "--data_dir", tiny_cifar,
                     "--model_dir", tmp_path, "--bottleneck_dir", tmp_path / "bn")  # fmt: skip
    rows = [line for line in out.splitlines() if line.endswith(tuple("0123456789"))]
    names = {line[:28].strip() for line in rows}
    assert {"default", "wd 0", "2000 steps"} <= names, out
    assert any("codelab" in name for name in names), out
    for line in rows:
        assert all(0 <= float(cell.rstrip("%")) <= 100 for cell in line[28:].split()[:3]), line


def test_expert_probe_fits_the_probe_at_each_l2(tmp_path, tiny_cifar):
    out = run_script(tmp_path, "expert_probe.py", *TINY, "--data_dir", tiny_cifar,
                     "--model_dir", tmp_path, "--bottleneck_dir", tmp_path / "bn")  # fmt: skip
    for l2 in ("1e-05", "0.0001", "0.001", "0.01"):
        assert f"probe, L2 {l2}" in out, out


def test_draft_scale_evaluates_each_decode_factor(tmp_path, colour_dir):
    from PIL import Image

    photos = tmp_path / "photos"
    for path in sorted(colour_dir.glob("*/*")):
        target = photos / path.parent.name / f"{path.stem}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.open(path).convert("RGB").resize((320, 240)).save(target, quality=90)
    graph = tiny_graph(tmp_path, image_dir=colour_dir)
    out = run_script(tmp_path, "draft_scale.py", "--graph", graph, "--image_dir", photos,
                     "--factors", "0,2")  # fmt: skip
    report = last_json(out)
    assert report["input_size"] == 32 and set(report) >= {"0", "2"}
    assert report["0"]["decoded"] == [240, 320]  # 0: the full-size decode
    assert min(report["2"]["decoded"]) >= 2 * 32  # kept at least twice the input size
    assert all(0 <= report[f]["accuracy"] <= 1 for f in ("0", "2"))


def test_eval_batch_memory_runs_the_top_blocks(tmp_path):
    out = run_script(tmp_path, "eval_batch_memory.py", "--architecture", "test_tiny",
                     "--blocks", 1, "--batch", 8)  # fmt: skip
    assert "test_tiny K=1, 8 activations a pass: peak" in out


def test_training_length_compares_the_rule_with_the_fixed_length(tmp_path, tiny_cifar):
    out = run_script(tmp_path, "training_length.py", *TINY, "--per_class", 4,
                     "--data_dir", tiny_cifar, "--model_dir", tmp_path,
                     "--work", tmp_path / "work")  # fmt: skip
    rows = last_json(out)
    assert [row["length"] for row in rows] == ["rule", "8000"]
    assert rows[1]["steps"] == 8000 and rows[0]["steps"] != 8000
    # train_s is read from the closing line (test_tiny trains in under 0.05 s: "0.0 s").
    assert all(row["train_s"] >= 0 and 0 <= row["test_10k"] <= 1 for row in rows)


def test_fine_tune_goal_reports_every_figure_and_check_fails_without_a_goal(tmp_path, tiny_cifar):
    args = ["fine_tune_goal.py", *TINY, "--data_dir", tiny_cifar, "--model_dir", tmp_path,
            "--blocks", 1, "--extra", "--fine_tune_epochs 1"]  # fmt: skip
    report = last_json(run_script(tmp_path, *args))
    assert report["epochs"] == 1 and report["architecture"] == "test_tiny"
    for figure in ("validation_accuracy", "test_accuracy", "graph_test", "tflite_rows_0_999"):
        assert 0 <= report[figure] <= 1, report
    assert isinstance(report["missed"], list)
    # --check: test_tiny has no goal, so the check cannot pass.
    run_script(tmp_path, *args, "--check", exit_code=1)


def test_check_benchmark_scores_check_and_retrains_on_the_cleaned_csv(tmp_path):
    tiny_cifar = make_tiny_cifar(tmp_path / "cifar", per_batch=40)  # 18 per class to train
    out = run_script(
        tmp_path,
        "check_benchmark.py",
        *TINY,
        "--data_dir",
        tiny_cifar,
        "--model_dir",
        tmp_path,
        "--per_class",
        "18",
        "--no-peers",
        "--work_dir",
        tmp_path / "bench",
    )
    report = last_json(out)
    scores = report["tools"]["poetslearn check"]
    assert report["truth"]["leaked"] == 3 and report["truth"]["bad"] == 1  # 180 images: 1%
    # Byte-identical copies and unreadable files are found whatever the network.
    assert scores["leaked_recall"] == 1.0 and scores["across_classes_recall"] == 1.0
    assert scores["unreadable_recall"] == 1.0
    assert 0.0 <= scores["label_precision"] <= 1.0
    assert set(scores["near_recall"]) == {
        "jpeg60",
        "crop85",
        "mirror",
        "brighter",
        "grey",
        "desaturated",
        "half_size",
    }
    assert set(report["retrain"]) == {
        "spoiled CSV",
        "leaks left out",
        "leaks, near-copies, label errors >= 0.9 left out",
    }
    assert 0.9 <= report["hnsw_recall_at_10"] <= 1.0
    assert "host: " in out and report["host"]["cores"] >= 1


def test_budget_benchmark_runs_the_budget_cold(tmp_path, tiny_cifar):
    out = run_script(
        tmp_path,
        "budget_benchmark.py",
        "--no_default",  # the default run is the same call without --time_budget
        "--budgets",
        "3m",
        "--data_dir",
        tiny_cifar,
        "--extra",
        "--architecture test_tiny --weights none --how_many_training_steps 100",
        "--matmul_seconds",
        "0.05",
    )
    assert out.splitlines()[0].startswith("host: ")
    report = last_json(out)
    (budget,) = report["results"].values()
    assert budget["plan"]["chosen"]["architecture"] == "test_tiny"
    assert budget["plan"]["budget_seconds"] == 180
    assert 0 < budget["wall_seconds"] and 0 <= budget["validation"] <= 1
    assert "| 3m | architecture=test_tiny" in out
    assert "3m, stages estimated / run: build_model " in out


def test_the_host_line_says_when_the_fma_peak_was_read_below_tensorflow_s_matmul():
    host = runpy.run_path(str(ROOT / "scripts" / "host.py"), run_name="not_main")["host_line"]
    facts = {"cpu": "CPU", "cores": 2, "machine": "x86_64", "tensorflow_full_speed": True}
    quiet = host({**facts, "fma_peak_gflops": 235.0, "matmul_peak_gflops": 217.0})
    assert quiet.endswith("(92% of it: TensorFlow at full speed here)")
    busy = host({**facts, "fma_peak_gflops": 117.0, "matmul_peak_gflops": 203.0})
    assert "(174% of it, more than a ceiling allows: the FMA loop ran on a busy host" in busy


def test_budget_benchmark_names_the_epochs_run_planned_and_cut_from():
    script = runpy.run_path(str(ROOT / "scripts" / "budget_benchmark.py"), run_name="not_main")
    note = script["epochs_note"]
    cut = {"fine_tune_epochs": 5, "full_epochs": 8}
    assert note({"plan": {"chosen": cut}, "fine_tuning": {"epochs": 6}}) == (
        "; epochs 6 run, 5 planned of 8"
    )
    whole = {"fine_tune_epochs": 8}
    assert note({"plan": {"chosen": whole}, "fine_tuning": {"epochs": 8}}) == (
        "; epochs 8 run, 8 planned"
    )
    assert note({"plan": {"chosen": whole}, "fine_tuning": None}) == ""


def test_budget_priors_writes_a_point_per_plan_and_keeps_the_others(tmp_path, tiny_cifar):
    table = tmp_path / "table.json"
    earlier = {"architecture": "mobilenet_0.25_128", "bottleneck_blocks": 1}
    table.write_text(json.dumps([{**earlier, "fine_tune_blocks": 0, "validation": 0.5}]))
    run_script(
        tmp_path,
        "budget_priors.py",
        "--architectures",
        "test_tiny",
        "--weights",
        "none",
        "--blocks",
        "1,all",
        "--data_dir",
        tiny_cifar,
        "--bottleneck_dir",
        tmp_path / "bottlenecks",
        "--output",
        table,
    )
    points = json.loads(table.read_text())
    plans = {(p["architecture"], p["bottleneck_blocks"]): p for p in points}
    assert set(plans) == {("mobilenet_0.25_128", 1), ("test_tiny", 1), ("test_tiny", 2)}
    assert plans["mobilenet_0.25_128", 1]["validation"] == 0.5  # kept as it was
    assert all(0 <= p["validation"] <= 1 for p in points)
    assert plans["test_tiny", 1]["source"] == "scripts/budget_priors.py"


def test_compare_extraction_times_each_source_tree_on_each_data(tmp_path, tiny_cifar, colour_dir):
    src = ROOT / "src"
    out = run_script(
        tmp_path, "compare_extraction.py", *TINY, "--model_dir", tmp_path, "--data_dir",
        tiny_cifar, "--src", f"a={src}", "--src", f"b={src}", "--data", colour_dir, "--data",
        "cifar10:40", "--rounds", "1", "--matmul_seconds", "0.05",
    )  # fmt: skip
    assert out.startswith("host: ")
    report = last_json(out)
    assert set(report["data"]) == {str(colour_dir), "cifar10:40"}
    for versions in report["data"].values():
        assert set(versions) == {"a", "b"}
        for row in versions.values():
            assert row["img_per_s"] > 0 and 0 <= row["cores_busy"] and row["peak_mb"] > 0


def test_compare_label_rates_times_label_and_evaluate_of_each_source_tree(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from poetslearn.cli.main import cli

    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    from benchmark_photos import make_photos

    photos = make_photos(tmp_path, 24, (80, 60))
    args = ["retrain", "--image_dir", photos, *TINY, "--output_graph", tmp_path / "test_tiny.pb"]
    args += ["--bottleneck_dir", tmp_path / "bn", "--tflite_output", tmp_path / "test_tiny.tflite"]
    args += ["--output_labels", tmp_path / "labels.txt", "--how_many_training_steps", "20"]
    result = CliRunner().invoke(cli, [*map(str, args), "--summaries_dir", "", "--quiet"])
    assert result.exit_code == 0, result.output
    out = run_script(
        tmp_path, "compare_label_rates.py", "--work", tmp_path, "--src", f"now={ROOT / 'src'}",
        *TINY, "--model_dir", tmp_path, "--models", "tflite", "--count", "20", "--rounds", "1",
        "--matmul_seconds", "0.05",
    )  # fmt: skip
    report = last_json(out)
    assert report["extraction_img_per_s"] > 0
    assert set(report["versions"]["now"]) == {"label .tflite", "evaluate .tflite"}
