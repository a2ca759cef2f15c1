"""The SavedModel runs where TensorFlow Serving runs it: through the TF1 loader (a session that
restores variables by name, as Serving's C++ loader does) and `saved_model_cli run`, giving what
`poetslearn label` gives, for a plain, a `--fine_tune_blocks` and a `--bottleneck_blocks` export."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from helpers import COLOURS, noisy_colour, retrain_args
from poetslearn.cli.main import cli
from poetslearn.data.images import load_image

KINDS = {
    "plain": [],
    "fine_tuned": [
        "--fine_tune_blocks",
        "1",
        "--fine_tune_epochs",
        "2",
        "--fine_tune_batch_size",
        "8",
    ],
    "block_features": ["--bottleneck_blocks", "2"],
}


def new_images(folder: Path) -> list[Path]:
    paths = []
    for i, (name, colour) in enumerate(COLOURS.items()):
        path = folder / f"new_{name}.png"
        Image.fromarray(noisy_colour(colour, size=(50, 60), seed=700 + i)).save(path)
        paths.append(path)
    return paths


def label_probabilities(graph: Path, images: list[Path], labels: list[str]) -> np.ndarray:
    """Every label's probability per image, from `poetslearn label --json`."""
    result = CliRunner().invoke(
        cli,
        ["label", "--graph", str(graph), "--json", "--top_k", str(len(labels)), *map(str, images)],
    )
    assert result.exit_code == 0, result.output
    rows = []
    for entry in json.loads(result.stdout)["results"]:
        scores = {p["label"]: p["score"] for p in entry["predictions"]}
        rows.append([scores[name] for name in labels])
    return np.array(rows)


def run_tf1_session(saved_model: Path, signature: str, value: np.ndarray) -> dict:
    """The SavedModel as TensorFlow Serving loads it: a TF1 session, variables restored by name."""
    import tensorflow as tf

    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], str(saved_model))
        sig = meta_graph.signature_def[signature]
        feeds = {next(iter(sig.inputs.values())).name: value}
        names = sorted(sig.outputs)
        values = session.run([sig.outputs[n].name for n in names], feeds)
        return dict(zip(names, values))


@pytest.fixture(scope="module", params=sorted(KINDS))
def exported(request, tmp_path_factory):
    from helpers import make_colour_folder

    tmp_path = tmp_path_factory.mktemp(request.param)
    images = make_colour_folder(tmp_path / "colours")
    result = CliRunner().invoke(
        cli,
        retrain_args(
            tmp_path,
            "--image_dir",
            str(images),
            "--saved_model_dir",
            str(tmp_path / "saved"),
            *KINDS[request.param],
        ),
    )
    assert result.exit_code == 0, result.output
    return tmp_path, new_images(tmp_path)


def test_the_tf1_loader_runs_both_signatures_as_label_does(exported):
    tmp_path, images = exported
    labels = (tmp_path / "out" / "labels.txt").read_text().split()
    expected = label_probabilities(tmp_path / "out" / "graph.pb", images, labels)
    pixels = np.stack([load_image(p, 32) for p in images])
    by_pixels = run_tf1_session(tmp_path / "saved", "serving_default", pixels)
    np.testing.assert_allclose(by_pixels["probabilities"], expected, atol=1e-5)
    assert [s.decode() for s in by_pixels["labels"]] == list(COLOURS)
    encoded = np.array([p.read_bytes() for p in images], dtype=object)
    by_bytes = run_tf1_session(tmp_path / "saved", "classify_bytes", encoded)
    np.testing.assert_allclose(by_bytes["probabilities"], expected, atol=1e-5)
    import tensorflow as tf

    stored = [
        name
        for name, _ in tf.train.list_variables(str(tmp_path / "saved" / "variables" / "variables"))
    ]
    assert stored == ["_CHECKPOINTABLE_OBJECT_GRAPH"], stored  # nothing to restore by name


def test_saved_model_cli_runs_the_export(exported):
    tmp_path, images = exported
    cli_path = Path(sys.executable).with_name("saved_model_cli")
    if not cli_path.exists():
        cli_path = shutil.which("saved_model_cli")
    assert cli_path, "saved_model_cli ships with TensorFlow and must be found"
    labels = (tmp_path / "out" / "labels.txt").read_text().split()
    np.save(tmp_path / "batch.npy", np.stack([load_image(p, 32) for p in images]))
    subprocess.run(
        [
            str(cli_path),
            "run",
            "--dir",
            str(tmp_path / "saved"),
            "--tag_set",
            "serve",
            "--signature_def",
            "serving_default",
            "--inputs",
            f"images={tmp_path / 'batch.npy'}",
            "--outdir",
            str(tmp_path / "served"),
            "--overwrite",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    served = np.load(tmp_path / "served" / "probabilities.npy")
    expected = label_probabilities(tmp_path / "out" / "graph.pb", images, labels)
    np.testing.assert_allclose(served, expected, atol=1e-5)
