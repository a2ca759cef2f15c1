"""Data sets described by a CSV file: parsing, splits, every error, and the real CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from helpers import COLOURS, make_colour_folder, retrain_args
from poetslearn.cli.main import cli
from poetslearn.data.csv_table import load_csv_dataset
from poetslearn.data.image_folder import load_image_folder
from poetslearn.errors import DataError

quiet = {"show_progress": False, "warn": lambda *_: None}


def write_csv(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def folder_rows(folder: Path) -> list[str]:
    """One row per image of a colour folder: path relative to the folder, its colour."""
    return [
        f"{p.relative_to(folder).as_posix()},{p.parent.name}"
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    ]


def split_contents(dataset) -> dict[str, list[tuple[str, str]]]:
    return {
        name: sorted(
            (Path(n).as_posix(), dataset.class_names[c])
            for n, c in zip(split.images.names, split.labels)
        )
        for name, split in dataset.splits.items()
    }


def test_a_single_label_csv_is_cut_exactly_as_its_folder(colour_dir):
    table = write_csv(colour_dir / "all.csv", ["path,labels", *folder_rows(colour_dir)])
    from_csv = load_csv_dataset(table, **quiet)
    from_folder = load_image_folder(colour_dir, **quiet)
    assert from_csv.class_names == from_folder.class_names == sorted(COLOURS)
    assert split_contents(from_csv) == split_contents(from_folder)
    for name in from_csv.splits:  # same files, same content keys: the same bottleneck cache
        assert sorted(from_csv.splits[name].images.keys()) == sorted(
            from_folder.splits[name].images.keys()
        )
    assert not from_csv.multi_label and from_csv.name == "all"


def test_the_split_column_wins_and_empty_cells_follow_the_rule(tmp_path):
    # Classes large enough that the rule fills every split itself, so fixing two rows moves
    # no other row (tiny classes borrow a ruled row for an empty split, as folders do).
    colour_dir = make_colour_folder(tmp_path / "colours", per_class=40)
    rows = folder_rows(colour_dir)
    fixed = {rows[0].split(",")[0]: "test", rows[1].split(",")[0]: "train"}
    lines = ["Path , LABELS,Split,notes"]  # names in any case and spacing; other columns ignored
    for row in rows:
        path = row.split(",")[0]
        lines.append(f"{row},{fixed.get(path, '').upper()},a note")
    data = load_csv_dataset(write_csv(colour_dir / "mixed.csv", lines), **quiet)
    contents = split_contents(data)
    for path, split in fixed.items():
        assert any(name.endswith(path) for name, _ in contents[split])
    plain = load_csv_dataset(write_csv(colour_dir / "plain.csv", ["path,labels", *rows]), **quiet)
    unfixed = {
        s: [item for item in items if not any(item[0].endswith(p) for p in fixed)]
        for s, items in split_contents(plain).items()
    }
    for split, items in unfixed.items():
        assert set(items) <= set(contents[split])


def test_absolute_paths_and_a_byte_order_mark(colour_dir, tmp_path):
    rows = [f"{p},{p.parent.name}" for p in sorted(colour_dir.rglob("*.png"))]
    table = tmp_path / "elsewhere" / "absolute.csv"
    table.parent.mkdir()
    table.write_text("\ufeffpath,labels\n" + "\n".join(rows) + "\n", encoding="utf-8")
    data = load_csv_dataset(table, **quiet)
    assert sum(len(s) for s in data.splits.values()) == len(rows)


def test_paths_written_on_windows_read_anywhere(colour_dir):
    rows = folder_rows(colour_dir)
    windows = [r.replace("/", "\\") for r in rows]
    from_windows = load_csv_dataset(
        write_csv(colour_dir / "w.csv", ["path,labels", *windows]), **quiet
    )
    from_posix = load_csv_dataset(write_csv(colour_dir / "p.csv", ["path,labels", *rows]), **quiet)
    for name in from_posix.splits:  # same files, same splits
        assert from_windows.splits[name].images.keys() == from_posix.splits[name].images.keys()


@pytest.mark.parametrize(
    "lines, message",
    [
        (["file,labels", "a.png,red"], "has no 'path' column"),
        (["path,label", "a.png,red"], "has no 'labels' column"),
        (["path,labels"], "lists no images"),
        (["path,labels,split", "red/img_0.png,red,val"], "unknown split 'val'"),
        (["path,labels", ",red"], "the path is empty"),
        (
            ["path,labels", "red/img_0.png,red", "./red/img_0.png,red"],
            "lists ./red/img_0.png twice",
        ),
        (["path,labels", "red/img_0.png,red;green"], "has 2 labels (red;green)"),
        (["path,labels", "red/img_0.png,"], "has 0 labels"),
        (["path,labels", "red/img_0.png,red", "red/img_1.png,red"], "gives 1 label(s)"),
    ],
)
def test_malformed_tables_are_refused_with_the_fix(colour_dir, lines, message):
    with pytest.raises(DataError, match=re.escape(message)):
        load_csv_dataset(write_csv(colour_dir / "bad.csv", lines), **quiet)


def test_text_that_is_not_utf8_is_refused(colour_dir):
    table = colour_dir / "latin1.csv"
    table.write_bytes("path,labels\nred/img_0.png,rouge \xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        load_csv_dataset(table, **quiet)


def test_a_missing_file_is_skipped_with_a_warning_or_refused_with_strict(colour_dir):
    lines = ["path,labels", *folder_rows(colour_dir), "red/not_there.png,red"]
    table = write_csv(colour_dir / "missing.csv", lines)
    warnings: list[str] = []
    data = load_csv_dataset(table, show_progress=False, warn=warnings.append)
    assert sum(len(s) for s in data.splits.values()) == len(lines) - 2
    assert any("not_there.png" in w and "cannot be read" in w for w in warnings)
    with pytest.raises(DataError, match=r"--strict: 1 file\(s\) in .*missing\.csv"):
        load_csv_dataset(table, show_progress=False, warn=warnings.append, strict=True)


def test_a_label_without_a_training_image_is_named(colour_dir):
    rows = [f"{r}," for r in folder_rows(colour_dir) if not r.startswith("blue/")]
    rows += [f"blue/img_{i}.png,blue,test" for i in (0, 4, 8)]
    table = write_csv(colour_dir / "no_train.csv", ["path,labels,split", *rows])
    with pytest.raises(DataError, match="Label 'blue' has no readable train image"):
        load_csv_dataset(table, **quiet)


def test_a_label_whose_every_split_is_given_as_train_is_named(colour_dir):
    # Every row of blue says "train": nothing may move to the empty splits (once a traceback).
    rows = [f"{r}," for r in folder_rows(colour_dir) if not r.startswith("blue/")]
    rows += [f"blue/img_{i}.png,blue,train" for i in (0, 4, 8)]
    table = write_csv(colour_dir / "all_train.csv", ["path,labels,split", *rows])
    with pytest.raises(DataError, match="Label 'blue' has no readable validation image"):
        load_csv_dataset(table, **quiet)


def test_tiny_labels_get_an_image_in_every_split_as_folders_do(colour_dir):
    rows = ["red/img_0.png,red", "red/img_1.jpg,red", "red/img_2.bmp,red", "green/img_0.png,green"]
    rows += ["green/img_1.jpg,green", "green/img_2.bmp,green"]
    data = load_csv_dataset(write_csv(colour_dir / "tiny.csv", ["path,labels", *rows]), **quiet)
    assert all(len(split) == 2 for split in data.splits.values())
    with pytest.raises(DataError, match="Label 'green' has no readable"):
        load_csv_dataset(write_csv(colour_dir / "two.csv", ["path,labels", *rows[:-1]]), **quiet)


def test_multi_label_rows_become_a_matrix_of_targets(colour_dir):
    rows = [f"{r};{'green' if i % 2 else 'red'}" for i, r in enumerate(folder_rows(colour_dir))]
    warnings: list[str] = []
    table = write_csv(colour_dir / "multi.csv", ["path,labels", *rows])
    data = load_csv_dataset(table, show_progress=False, warn=warnings.append, multi_label=True)
    assert data.multi_label and data.class_names == sorted(COLOURS)
    everything = np.concatenate([s.labels for s in data.splits.values()])
    assert everything.shape == (len(rows), len(COLOURS)) and everything.dtype == np.uint8
    assert set(everything.sum(axis=1).tolist()) <= {1, 2}  # "red;red" counts once
    train = data.splits["train"]
    first = train.images.names[0]
    colour = Path(first).parent.name
    assert train.labels[0, data.class_names.index(colour)] == 1


def test_multi_label_warns_of_a_label_missing_from_validation(colour_dir):
    def split(row: str) -> str:
        held_out = "img_9" in row and not row.startswith("blue/")
        return "validation" if held_out else "train"

    lines = ["path,labels,split", *[f"{r},{split(r)}" for r in folder_rows(colour_dir)]]
    warnings: list[str] = []
    table = write_csv(colour_dir / "val.csv", lines)
    load_csv_dataset(table, show_progress=False, warn=warnings.append, multi_label=True)
    assert [w for w in warnings if "has no validation image" in w] == [
        f"Label 'blue' has no validation image in {table}: its threshold cannot be chosen on "
        f"validation and stays 0.5."
    ]


def run(args: list[str]):
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def test_retrain_and_evaluate_a_csv_through_the_cli(tmp_path, colour_dir):
    table = write_csv(colour_dir / "all.csv", ["path,labels", *folder_rows(colour_dir)])
    result = run(retrain_args(tmp_path, "--data_csv", str(table), "--json", "--quiet"))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["test_accuracy"] == 1.0
    meta = json.loads((tmp_path / "out" / "graph.pb.json").read_text())
    assert meta["dataset"]["source"] == str(table) and meta["labels"] == sorted(COLOURS)
    graph = str(tmp_path / "out" / "graph.pb")
    evaluated = run(["evaluate", "--graph", graph, "--data_csv", str(table), "--json", "--quiet"])
    assert evaluated.exit_code == 0, evaluated.output
    doc = json.loads(evaluated.stdout)
    assert doc["accuracy"] == 1.0 and doc["dataset"] == "all"
    assert doc["n"] == report["test_size"]  # the test split retrain cut, cut again


def test_two_data_sources_are_misuse(tmp_path, colour_dir):
    table = write_csv(colour_dir / "all.csv", ["path,labels", *folder_rows(colour_dir)])
    both = run(retrain_args(tmp_path, "--data_csv", str(table), "--image_dir", str(colour_dir)))
    assert both.exit_code == 2 and "got --image_dir and --data_csv" in both.output
    cifar = run(["evaluate", "--dataset", "cifar10", "--data_csv", str(table)])
    assert cifar.exit_code == 2 and "Give one of --dataset cifar10" in cifar.output


@pytest.mark.parametrize(
    "extra",
    [
        ["--bottleneck_blocks", "2"],
        ["--fine_tune_blocks", "1", "--fine_tune_epochs", "2", "--random_brightness", "10"],
    ],
)
def test_a_csv_and_its_folder_share_one_bottleneck_cache(tmp_path, colour_dir, extra):
    table = write_csv(colour_dir / "all.csv", ["path,labels", *folder_rows(colour_dir)])
    from_csv = run(retrain_args(tmp_path, "--data_csv", str(table), "--json", "--quiet", *extra))
    assert from_csv.exit_code == 0, from_csv.output
    assert json.loads(from_csv.stdout)["test_accuracy"] == 1.0
    again = run(retrain_args(tmp_path, "--image_dir", str(colour_dir), "--json", "--quiet", *extra))
    assert again.exit_code == 0, again.output
    counts = json.loads(again.stdout)["bottlenecks"]
    assert counts["computed"] == 0 and counts["cached"] == counts["total"] > 0
