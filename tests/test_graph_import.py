"""Imported codelab MobileNet v1 graphs reproduce the original graphs, on real photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from poetslearn.backbone.architectures import get_architecture
from poetslearn.backbone.graph_import import read_graph_bytes
from poetslearn.backbone.weights import build_backbone
from poetslearn.cli.main import cli
from poetslearn.errors import WeightsError
from poetslearn.train.objectives import softmax

FLOAT_TGZ = [f"mobilenet_v1_0.25_{s}_frozen.tgz" for s in (128, 160, 192, 224)]
QUANTIZED = [
    f"mobilenet_v1_{a}_{s}/quantized_graph.pb"
    for a in ("0.50", "0.75")
    for s in (128, 160, 192, 224)
]
RETRAINED = "mobilenet_v1_1.0_224_poets_retrained/retrained_graph.pb"


def arch_of(relative: str) -> str:
    if relative == RETRAINED:
        return "mobilenet_1.0_224"
    _, _, alpha, size = relative.split("/")[0].replace("_frozen.tgz", "").split("_")
    return f"mobilenet_{alpha}_{size}"


def photos() -> list[np.ndarray]:
    """Centre-cropped squares of scikit-image's real photos (cat, espresso, astronaut)."""
    from skimage import data

    out = []
    for img in (data.chelsea(), data.coffee(), data.astronaut()):
        h, w = img.shape[:2]
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        out.append(img[top : top + side, left : left + side])
    return out


def original_outputs(graph_bytes: bytes, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ImageNet softmax from the graph's own logits, penultimate features), image by image."""
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef.FromString(graph_bytes)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    probs, feats = [], []
    with tf.compat.v1.Session(graph=graph) as session:
        for x in inputs:  # the graphs take a batch of exactly one
            logits, f = session.run(
                ["MobilenetV1/Logits/SpatialSqueeze:0", "MobilenetV1/Logits/AvgPool_1a/AvgPool:0"],
                {"input:0": x[np.newaxis]},
            )
            probs.append(softmax(logits)[0])
            feats.append(f.reshape(-1))
    return np.stack(probs), np.stack(feats)


def check_graph(shared: Path, relative: str) -> None:
    import tensorflow as tf

    from poetslearn.backbone.codelab_graphs import _import_graph_cached
    from poetslearn.download import hash_file

    path = shared / "models" / relative
    arch = get_architecture(arch_of(relative))
    size = arch.input_size
    # The same resize for both: plain bilinear to the input size, then scaling to [-1, 1].
    inputs = np.stack(
        [
            tf.image.resize(p[np.newaxis].astype(np.float32), (size, size)).numpy()[0]
            for p in photos()
        ]
    )
    inputs = (inputs - 127.5) / 127.5
    expected_probs, expected_feats = original_outputs(read_graph_bytes(path), inputs)

    backbone, info = build_backbone(arch, str(path))
    assert info.sha256 and info.kind == "imagenet"
    feats = backbone(inputs, training=False).numpy()
    imported = _import_graph_cached(path, hash_file(path))
    probs = softmax(feats @ imported.logits_weights + imported.logits_biases)

    assert probs.shape == (3, 1001)  # index 0 is "background"
    np.testing.assert_allclose(probs, expected_probs, atol=1e-4, rtol=0)
    rel = np.abs(feats - expected_feats).max() / np.abs(expected_feats).max()
    assert rel < 1e-3, rel
    # Sanity of the originals themselves: a cat photo gives a cat class (labels 282-294 are cats
    # in the 1001-class list), the espresso photo has espresso (968) in its top 5.
    assert 282 <= expected_probs[0].argmax() <= 294
    assert 968 in np.argsort(-expected_probs[1])[:5]


@pytest.mark.parametrize("relative", [FLOAT_TGZ[0], QUANTIZED[3], RETRAINED])
def test_one_graph_of_each_kind(shared, relative, tmp_path, monkeypatch):
    monkeypatch.setenv("POETSLEARN_CACHE_DIR", str(tmp_path / "cache"))
    check_graph(shared, relative)


@pytest.mark.parametrize("relative", FLOAT_TGZ + QUANTIZED + [RETRAINED])
def test_all_13_graphs(shared, relative, tmp_path, monkeypatch):
    monkeypatch.setenv("POETSLEARN_CACHE_DIR", str(tmp_path / "cache"))
    check_graph(shared, relative)


def test_imagenet_weights_are_found_in_the_codelab_layout(shared, tmp_path, monkeypatch):
    monkeypatch.setenv("POETSLEARN_CACHE_DIR", str(tmp_path / "cache"))
    for name, expected in (
        ("mobilenet_0.25_160", "mobilenet_v1_0.25_160_frozen.tgz"),
        ("mobilenet_0.75_128", "quantized_graph.pb"),
    ):
        _, info = build_backbone(get_architecture(name), "imagenet", shared / "models")
        assert info.path.endswith(expected)
    # The converted weights were cached (the share is read-only, so in the user cache).
    assert len(list((tmp_path / "cache" / "imported").glob("*.npz"))) == 2


def test_alpha_and_size_mismatches_are_refused(shared, tmp_path, monkeypatch):
    monkeypatch.setenv("POETSLEARN_CACHE_DIR", str(tmp_path / "cache"))
    graph = str(shared / "models" / FLOAT_TGZ[0])  # 0.25 at 128
    with pytest.raises(WeightsError, match="alpha 0.25, but --architecture mobilenet_0.50_128"):
        build_backbone(get_architecture("mobilenet_0.50_128"), graph)
    with pytest.raises(WeightsError, match="--allow_size_mismatch"):
        build_backbone(get_architecture("mobilenet_0.25_224"), graph)
    warnings = []
    _, info = build_backbone(
        get_architecture("mobilenet_0.25_224"),
        graph,
        allow_size_mismatch=True,
        warn=warnings.append,
    )
    assert info.kind == "imagenet" and "trained at 128x128" in warnings[0]


def test_missing_weights_error_says_where_it_looked(tmp_path, monkeypatch):
    from helpers import make_tiny_cifar
    from poetslearn import download

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))

    def offline(url, *args, **kwargs):
        raise download.DownloadError("no network")

    monkeypatch.setattr("poetslearn.backbone.keras_weights.fetch_file", offline)
    monkeypatch.setattr("poetslearn.backbone.codelab_graphs.fetch_file", offline)
    make_tiny_cifar(tmp_path / "data")  # the data is there: only the weights are missing
    result = CliRunner().invoke(
        cli,
        [
            "retrain",
            "--architecture",
            "mobilenet_0.25_128",
            "--model_dir",
            str(tmp_path / "models"),
            "--data_dir",
            str(tmp_path / "data"),
            "--quiet",
            "--output_graph",
            str(tmp_path / "g.pb"),
            "--output_labels",
            str(tmp_path / "l.txt"),
        ],
    )
    assert result.exit_code == 1
    assert result.output.startswith(
        "Dataset CIFAR-10: 10 classes; train 90, validation 10, test 30 (from "
    )
    assert "Error: No ImageNet weights for mobilenet_0.25_128 were found" in result.output
    models, keras = tmp_path / "models", tmp_path / "keras" / "models"
    for place in (
        models / "mobilenet_v1_0.25_128" / "frozen_graph.pb",
        models / "mobilenet_v1_0.25_128_frozen.tgz",
        keras / "mobilenet_2_5_128_tf_no_top.h5",
        "https://storage.googleapis.com/download.tensorflow.org/models/"
        "mobilenet_v1_0.25_128_frozen.tgz (download failed: no network)",
    ):
        assert f"  {place}" in result.output
    assert "copy the codelab's tf_files/models/" in result.output
    assert not (tmp_path / "g.pb").exists()


def test_converted_weights_never_go_into_a_writable_model_folder(shared, tmp_path, monkeypatch):
    import shutil

    monkeypatch.setenv("POETSLEARN_CACHE_DIR", str(tmp_path / "cache"))
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(shared / "models" / FLOAT_TGZ[0], models)
    models.chmod(0o777)  # writable by anyone: still only what the user put there
    arch = get_architecture("mobilenet_0.25_128")
    first, _ = build_backbone(arch, "imagenet", models)
    assert [p.name for p in models.iterdir()] == [Path(FLOAT_TGZ[0]).name]
    cached = list((tmp_path / "cache" / "imported").glob("*.poetslearn-*.npz"))
    assert len(cached) == 1

    def no_second_import(*args):
        raise AssertionError("the graph was imported again instead of read from the cache")

    monkeypatch.setattr("poetslearn.backbone.graph_import.read_mobilenet_graph", no_second_import)
    second, _ = build_backbone(arch, "imagenet", models)
    for a, b in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_keras_file_in_the_cache_is_checked_against_its_published_hash(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    arch = get_architecture("inception_v3")
    damaged = tmp_path / "keras" / "models" / arch.keras_weights.filename
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(b"not the weights")
    with pytest.raises(
        WeightsError,
        match=f"{damaged} is not the published .*expected {arch.keras_weights.md5}.*delete it",
    ):
        build_backbone(arch, "imagenet", tmp_path / "models")
