"""No traceback from any file a user hands us: the CSV reader and every metadata reader (the
`.pb.json` beside a graph, the metadata inside a `.tflite`, an ONNX model's metadata_props) give
a result or a `PoetslearnError` for any bytes, and a result they give is one the classifiers can
use without another exception."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from helpers import retrain_args
from poetslearn.artifacts.metadata import read_metadata, recorded_scaling
from poetslearn.artifacts.onnx_file import FACTS_KEY, facts_from_props
from poetslearn.artifacts.tflite_file import read_tflite
from poetslearn.cli import cli
from poetslearn.data.csv_table import read_rows
from poetslearn.errors import DataError, PoetslearnError
from poetslearn.inference.classifier import Classifier

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
# JSON values of every kind, nested a little: what a damaged or hand-edited file may hold.
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
# A CSV's characters, the troublesome ones often: separators, quotes, line ends, NUL.
CSV_TEXT = st.text(alphabet=st.sampled_from('ab.png/;,"\n\r\t \x00é'), max_size=200)


def a_valid_metadata() -> dict:
    return {
        "format": "poetslearn-graph/1",
        "artifact": "frozen_graph",
        "architecture": "test_tiny",
        "input_size": [32, 32],
        "input_tensor": "input:0",
        "output_tensor": "final_result:0",
        "input_format": "pixels",
        "labels": ["red", "green", "blue"],
        "thresholds": {"red": 0.4},
        "dataset": {"validation_percentage": 10.0, "testing_percentage": 10.0},
        "test_time_mirror": False,
    }


def use_as_a_classifier_does(meta: dict) -> None:
    """What `label` and `evaluate` read of checked metadata, read as they read it."""
    classifier = Classifier()
    classifier.labels, classifier.metadata = list(meta["labels"]), meta
    classifier.size = tuple(meta["input_size"])
    assert classifier.thresholds is None or len(classifier.thresholds) == len(meta["labels"])
    mean, std = recorded_scaling(meta)
    assert std != 0
    dataset = meta.get("dataset", {})
    float(dataset.get("validation_percentage", 10.0)) + float(dataset.get("testing_percentage", 10))
    assert meta.get("input_format", "pixels") in ("pixels", "codelab")


# --- CSV -----------------------------------------------------------------------------------


def _read_csv_text(text: str):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.csv"
        path.write_text(text, encoding="utf-8", newline="")
        return read_rows(path)


@FUZZ
@given(st.binary(max_size=400))
def test_any_bytes_as_a_csv_give_rows_or_a_data_error(data):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.csv"
        path.write_bytes(data)
        try:
            rows = read_rows(path)
        except DataError:
            return
    assert all(row.path and row.labels is not None for row in rows)


@FUZZ
@given(CSV_TEXT, st.sampled_from(["path,labels\n", "path,labels,split\n", "labels,path,notes\n"]))
def test_any_text_under_a_good_header_gives_rows_or_a_data_error(body, header):
    try:
        rows = _read_csv_text(header + body)
    except DataError:
        return
    for row in rows:
        assert row.path == row.path.strip() and row.path
        assert row.split in (None, "train", "validation", "test")


def test_a_row_with_an_unquoted_comma_names_its_line_and_the_cause(tmp_path):
    csv_path = tmp_path / "photos.csv"
    csv_path.write_text("path,labels\na.png,red\nphoto, 2019.png,blue\nc.png,red\n")
    with pytest.raises(DataError) as caught:
        read_rows(csv_path)
    message = str(caught.value)
    assert "line 3" in message and "3 cells" in message and "2 columns" in message
    assert "unquoted comma" in message and "double quotes" in message


def test_the_same_row_quoted_reads(tmp_path):
    csv_path = tmp_path / "photos.csv"
    csv_path.write_text('path,labels\na.png,red\n"photo, 2019.png",blue\n')
    assert [row.path for row in read_rows(csv_path)] == ["a.png", "photo, 2019.png"]


def test_empty_cells_past_the_header_are_a_sheets_edge_not_an_error(tmp_path):
    csv_path = tmp_path / "photos.csv"
    csv_path.write_text("path,labels\na.png,red,,\nb.png,blue,\n")
    assert [row.labels for row in read_rows(csv_path)] == [("red",), ("blue",)]


@pytest.mark.parametrize("command", ["retrain", "evaluate"])
def test_retrain_and_evaluate_stop_on_the_unquoted_comma_with_the_message(tmp_path, command):
    for name in ("a.png", "b.png"):
        Image.new("RGB", (8, 8)).save(tmp_path / name)
    csv_path = tmp_path / "photos.csv"
    csv_path.write_text("path,labels\na.png,red\nb, 2019.png,blue\n")
    args = (
        retrain_args(tmp_path, "--data_csv", str(csv_path))
        if command == "retrain"
        else ["evaluate", "--data_csv", str(csv_path), "--graph", str(tmp_path / "none.pb")]
    )
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit)
    if command == "retrain":  # evaluate opens the graph first: there is none here
        assert "line 3" in result.output and "unquoted comma" in result.output


# --- the metadata beside a graph (.pb.json) -------------------------------------------------


def _read_sidecar(data: bytes, legacy: bool = False):
    with tempfile.TemporaryDirectory() as folder:
        graph = Path(folder) / "model.pb"
        name = "model.json" if legacy else "model.pb.json"
        (Path(folder) / name).write_bytes(data)
        return read_metadata(graph, "frozen_graph")


@FUZZ
@given(st.binary(max_size=300), st.booleans())
def test_any_bytes_beside_a_graph_give_metadata_or_a_poetslearn_error(data, legacy):
    try:
        meta = _read_sidecar(data, legacy)
    except PoetslearnError:
        return
    use_as_a_classifier_does(meta)


@FUZZ
@given(st.sampled_from(sorted(a_valid_metadata())), JSON, st.booleans())
def test_any_field_of_graph_metadata_replaced_or_dropped(field, value, drop):
    meta = a_valid_metadata()
    if drop:
        del meta[field]
    else:
        meta[field] = value
    try:
        checked = _read_sidecar(json.dumps(meta).encode())
    except PoetslearnError:
        return
    use_as_a_classifier_does(checked)


@FUZZ
@given(JSON)
def test_any_json_beside_a_graph(value):
    try:
        checked = _read_sidecar(json.dumps(value).encode())
    except PoetslearnError:
        return
    use_as_a_classifier_does(checked)


def test_the_valid_metadata_is_read_and_a_bad_field_is_named():
    assert _read_sidecar(json.dumps(a_valid_metadata()).encode())["labels"][0] == "red"
    with pytest.raises(PoetslearnError, match="'input_size' field"):
        _read_sidecar(json.dumps({**a_valid_metadata(), "input_size": "224"}).encode())
    with pytest.raises(PoetslearnError, match="no 'labels' field"):
        meta = a_valid_metadata()
        del meta["labels"]
        _read_sidecar(json.dumps(meta).encode())


# --- an ONNX model's metadata_props ----------------------------------------------------------


@FUZZ
@given(st.dictionaries(st.sampled_from([FACTS_KEY, "labels", "input"]), st.text(max_size=80)))
def test_any_onnx_metadata_props_give_facts_or_a_poetslearn_error(props):
    try:
        facts = facts_from_props(props, Path("model.onnx"))
    except PoetslearnError:
        return
    use_as_a_classifier_does(facts)


@FUZZ
@given(st.sampled_from(sorted(a_valid_metadata())), JSON)
def test_any_field_of_onnx_facts_replaced(field, value):
    meta = {**a_valid_metadata(), "artifact": "onnx", field: value}
    try:
        facts = facts_from_props({FACTS_KEY: json.dumps(meta)}, Path("model.onnx"))
    except PoetslearnError:
        return
    use_as_a_classifier_does(facts)


# --- the metadata inside a .tflite ------------------------------------------------------------


@pytest.fixture(scope="module")
def tflite_model(tmp_path_factory) -> bytes:
    """A genuine poetslearn .tflite (labels, normalization and poetslearn.json packed in it)."""
    tmp_path = tmp_path_factory.mktemp("tflite")
    for c, colour in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200)]):
        folder = tmp_path / "images" / f"c{c}"
        folder.mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (12, 12), (colour[0] + i, colour[1], colour[2])).save(
                folder / f"{i}.png"
            )
    model = tmp_path / "m.tflite"
    args = retrain_args(
        tmp_path, "--image_dir", str(tmp_path / "images"), "--tflite_output", str(model)
    )
    result = CliRunner().invoke(cli, [*args, "--how_many_training_steps", "20"])
    assert result.exit_code == 0, result.output
    return model.read_bytes()


def _read_tflite_bytes(data: bytes):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m.tflite"
        path.write_bytes(data)
        return read_tflite(path)


def test_the_genuine_tflite_reads(tflite_model):
    model = _read_tflite_bytes(tflite_model)
    assert model.facts is not None and model.labels == ["c0", "c1", "c2"]
    use_as_a_classifier_does(model.facts)


@pytest.mark.parametrize(
    "header, offset, value",
    [
        # A packed file's "extra field" grown past the end of the model (zipfile: EOFError).
        (b"PK\x03\x04", 29, 0xFF),
        # A packed file marked encrypted in the archive's directory (zipfile: RuntimeError).
        (b"PK\x01\x02", 8, 0x01),
    ],
    ids=["extra-field-past-the-end", "marked-encrypted"],
)
def test_a_tflite_with_a_damaged_packed_file_reads_or_gives_a_poetslearn_error(
    tflite_model, header, offset, value
):
    # Found by the fuzz test below: both raised a traceback of zipfile's before the fix.
    damaged = bytearray(tflite_model)
    damaged[damaged.rindex(header) + offset] = value  # in the last packed file's header
    try:
        model = _read_tflite_bytes(bytes(damaged))
    except PoetslearnError:
        return
    assert model.labels is None or all(isinstance(label, str) for label in model.labels)


@FUZZ
@given(st.data())
def test_a_tflite_with_bytes_changed_reads_or_gives_a_poetslearn_error(tflite_model, data):
    damaged = bytearray(tflite_model)
    for _ in range(data.draw(st.integers(1, 8))):
        # The flatbuffer's tables and the packed files sit at the ends; the weights between.
        where = data.draw(
            st.integers(0, min(len(damaged) - 1, 4096))
            | st.integers(max(0, len(damaged) - 4096), len(damaged) - 1)
        )
        damaged[where] = data.draw(st.integers(0, 255))
    try:
        model = _read_tflite_bytes(bytes(damaged))
    except PoetslearnError:
        return
    if model.facts is not None:
        use_as_a_classifier_does(model.facts)
    assert model.labels is None or all(isinstance(label, str) for label in model.labels)


@FUZZ
@given(st.binary(max_size=600))
def test_any_bytes_named_tflite_give_a_model_or_a_poetslearn_error(data):
    try:
        _read_tflite_bytes(data[:4] + b"TFL3" + data[4:])
    except PoetslearnError:
        pass
