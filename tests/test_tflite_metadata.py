"""Every `.tflite` carries standard TFLite Model Metadata: MediaPipe Tasks' ImageClassifier loads
it as exported and agrees with `label`; `label` and `evaluate` read labels and preprocessing
from the model itself, ours or another tool's."""

from __future__ import annotations

import json
import os
import platform
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from helpers import cifar_folder, noisy_colour, retrain_args
from poetslearn.artifacts.tflite_bundle import read_embedded
from poetslearn.artifacts.tflite_metadata import LABELS_FILE, classifier_metadata, model_metadata
from poetslearn.artifacts.tflite_metadata_schema import decode_model_metadata, encode_model_metadata
from poetslearn.cli.main import cli
from poetslearn.config import LabelConfig
from poetslearn.inference.tflite_classifier import TFLiteClassifier

# PyPI has mediapipe wheels for these (pyproject's test extra installs it only there).
MEDIAPIPE_PLATFORMS = {("Linux", "x86_64"), ("Linux", "aarch64"), ("Darwin", "arm64")}
MEDIAPIPE_PLATFORMS |= {("Windows", "AMD64")}
VARIANTS = {
    "float_pixels": [],
    "int8_pixels": ["--tflite_quantize", "int8"],
    "float_codelab": ["--input_format", "codelab"],
    "int8_codelab": ["--input_format", "codelab", "--tflite_quantize", "int8"],
    # Each image averaged with its mirror image inside the model: a batch of two behind the
    # one-image input that MediaPipe feeds.
    "float_mirror": ["--test_time_mirror"],
}


def _mediapipe():
    """MediaPipe Tasks, or a skip that says why; in CI on a platform with wheels, a failure."""
    try:
        import mediapipe
        from mediapipe.tasks.python import vision  # noqa: F401
    except ImportError as e:
        if os.environ.get("CI") and (platform.system(), platform.machine()) in MEDIAPIPE_PLATFORMS:
            pytest.fail(f"mediapipe is in the test extra for this platform but fails: {e}")
        pytest.skip(f"mediapipe is not installed ({e}); PyPI has no wheel for every platform")
    return mediapipe


@pytest.fixture(scope="module")
def exports(tmp_path_factory, shared):
    """The .tflite variants of one classifier (genuine mobilenet_0.25_128 on real CIFAR-10
    photos: random weights quantize to nothing), and images to classify."""
    root = tmp_path_factory.mktemp("tflite_metadata")
    photos = cifar_folder(shared, root / "cifar", per_class=30)
    weights = str(shared / "models" / "mobilenet_v1_0.25_128_frozen.tgz")
    models = {}
    for name, extra in VARIANTS.items():
        model = root / f"{name}.tflite"
        args = retrain_args(root, "--image_dir", str(photos), "--tflite_output", str(model))
        args += ["--architecture", "mobilenet_0.25_128", "--weights", weights, *extra]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        assert f"TFLite model written to {model}" in result.output
        models[name] = model
    held_out = sorted(
        cifar_folder(shared, root / "held_out", per_class=3, offset=200).rglob("*.png")
    )
    images = {"input_size": [], "photo_size": list(held_out)}
    for path in held_out:  # already at the input size: no resize on either side
        pixels = Image.open(path).convert("RGB").resize((128, 128), Image.BICUBIC)
        images["input_size"].append(_save(root / f"at_input_size_{path.name}", np.asarray(pixels)))
    from skimage import data

    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        images["photo_size"].append(_save(root / f"{name}.png", getattr(data, name)()))
    return root, models, images, sorted(p.name for p in photos.iterdir())


def _save(path, pixels):
    Image.fromarray(pixels).save(path)
    return path


def _label_scores(model, image) -> dict[str, float]:
    classifier = TFLiteClassifier(LabelConfig(graph=model))
    return {p.label: p.score for p in classifier.classify(image, top_k=10)}


def _mediapipe_scores(mediapipe, model, image) -> dict[str, float]:
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core.base_options import BaseOptions

    options = vision.ImageClassifierOptions(
        base_options=BaseOptions(model_asset_path=str(model)), max_results=10
    )
    pixels = np.asarray(Image.open(image).convert("RGB"))
    with vision.ImageClassifier.create_from_options(options) as classifier:
        result = classifier.classify(
            mediapipe.Image(image_format=mediapipe.ImageFormat.SRGB, data=pixels)
        )
    return {c.category_name: c.score for c in result.classifications[0].categories}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_mediapipe_loads_the_export_and_agrees_with_label(exports, variant):
    mediapipe = _mediapipe()
    _, models, images, labels = exports
    model = models[variant]
    for image in images["input_size"]:  # the same pixels reach the network on both sides
        ours, theirs = _label_scores(model, image), _mediapipe_scores(mediapipe, model, image)
        assert set(theirs) == set(labels), theirs  # the labels came from inside the model
        assert max(theirs, key=theirs.get) == max(ours, key=ours.get), (image.name, ours, theirs)
        if variant.startswith("float"):
            for label, score in ours.items():
                assert abs(theirs[label] - score) < 1e-3, (image.name, ours, theirs)
    clear = 0
    for image in images["photo_size"]:
        # MediaPipe resizes with its own bilinear warp (no antialiasing): scores moved by up to
        # 0.22 here (scripts/mediapipe_resize.py measures what that costs), so a near tie may
        # flip; a clear winner may not.
        ours, theirs = _label_scores(model, image), _mediapipe_scores(mediapipe, model, image)
        first, second = sorted(ours.values(), reverse=True)[:2]
        if first - second > 0.3:
            clear += 1
            assert max(theirs, key=theirs.get) == max(ours, key=ours.get), (
                image.name,
                ours,
                theirs,
            )
    assert clear >= len(images["photo_size"]) // 2, "too few clear winners to compare"


@pytest.mark.parametrize("variant", ["float_pixels", "int8_codelab"])
def test_label_and_evaluate_need_no_json_beside_the_model(exports, tmp_path, variant):
    root, models, images, _ = exports
    alone = tmp_path / "alone.tflite"
    alone.write_bytes(models[variant].read_bytes())
    photos = [str(p) for p in images["photo_size"]]
    runner = CliRunner()
    evaluate = ["evaluate", "--quiet", "--image_dir", str(root / "cifar")]
    for command in (["label", "--json", *photos], evaluate):
        with_json = runner.invoke(cli, [command[0], "--graph", str(models[variant]), *command[1:]])
        without = runner.invoke(cli, [command[0], "--graph", str(alone), *command[1:]])
        assert with_json.exit_code == 0, with_json.output
        assert without.exit_code == 0, without.output
        assert without.output.replace(str(alone), "M") == with_json.output.replace(
            str(models[variant]), "M"
        )


def test_the_embedded_metadata_is_the_standard_format(exports):
    """Read back with the schema code MediaPipe itself ships, not with ours."""
    pytest.importorskip("mediapipe", reason="the reference schema code ships in mediapipe")
    from mediapipe.tasks.metadata import metadata_schema_py_generated as reference

    _, models, _, class_names = exports
    contents = models["float_codelab"].read_bytes()
    embedded, files = read_embedded(contents)
    raw = encode_model_metadata(embedded)
    assert reference.ModelMetadata.ModelMetadataBufferHasIdentifier(raw, 0)
    meta = reference.ModelMetadataT.InitFromObj(reference.ModelMetadata.GetRootAs(raw, 0))
    image = meta.subgraphMetadata[0].inputTensorMetadata[0]
    unit = image.processUnits[0]
    assert unit.optionsType == reference.ProcessUnitOptions.NormalizationOptions
    assert list(unit.options.mean) == [128.0] and list(unit.options.std) == [128.0]
    assert image.content.contentPropertiesType == reference.ContentProperties.ImageProperties
    assert image.content.contentProperties.colorSpace == reference.ColorSpaceType.RGB
    labels = meta.subgraphMetadata[0].outputTensorMetadata[0].associatedFiles[0]
    assert labels.name.decode() == LABELS_FILE
    assert labels.type == reference.AssociatedFileType.TENSOR_AXIS_LABELS
    assert files[LABELS_FILE].decode().split() == class_names
    facts = json.loads(files["poetslearn.json"])
    beside = json.loads(models["float_codelab"].with_name("float_codelab.tflite.json").read_text())
    assert facts == beside and facts["input_format"] == "codelab"
    assert meta.minParserVersion == b"1.0.0"


def test_schema_round_trip_both_ways():
    pytest.importorskip("mediapipe", reason="the reference schema code ships in mediapipe")
    import flatbuffers
    from mediapipe.tasks.metadata import metadata_schema_py_generated as reference

    meta = {
        "architecture": "test_tiny",
        "input_size": [32, 32],
        "input_format": "pixels",
        "labels": ["a", "b"],
        "dataset": {"name": "letters"},
    }
    ours = model_metadata(meta)
    raw = encode_model_metadata(ours)
    decoded = decode_model_metadata(raw)
    assert decoded["subgraph_metadata"][0]["input_tensor_metadata"][0]["process_units"] == [
        {"options": ("NormalizationOptions", {"mean": [0.0], "std": [1.0]})}
    ]
    # The reference code reads ours and writes it again; we read that as we read ours.
    tree = reference.ModelMetadataT.InitFromObj(reference.ModelMetadata.GetRootAs(raw, 0))
    builder = flatbuffers.Builder(0)
    builder.Finish(tree.Pack(builder), b"M001")
    assert decode_model_metadata(bytes(builder.Output())) == decoded


def test_a_tflite_with_metadata_from_another_tool_is_labelled(tmp_path):
    """A model written without poetslearn: MobileNet-style input in [-1, 1], metadata and labels
    packed by the reference schema code and zipfile, as TFLite's own metadata writers do."""
    pytest.importorskip("mediapipe", reason="the reference schema code ships in mediapipe")
    model, labels = _foreign_model(tmp_path)
    image = _save(tmp_path / "image.png", noisy_colour((200, 40, 40), size=(24, 24), seed=1))
    result = CliRunner().invoke(cli, ["label", "--graph", str(model), "--json", str(image)])
    assert result.exit_code == 0, result.output
    predictions = json.loads(result.output)["results"][0]["predictions"]
    scores = {p["label"]: p["score"] for p in predictions}
    assert set(scores) == set(labels)
    expected = _run_interpreter(model, (np.asarray(Image.open(image), np.float32) - 127.5) / 127.5)
    for label, score in zip(labels, expected):
        assert abs(scores[label] - score) < 1e-5
    embedded = classifier_metadata(*read_embedded(model.read_bytes()))
    assert embedded.labels == labels and embedded.facts is None


def _foreign_model(tmp_path):
    import flatbuffers
    import tensorflow as tf
    from mediapipe.tasks.metadata import metadata_schema_py_generated as ms
    from tensorflow.lite.python import schema_py_generated as schema

    tf.random.set_seed(0)
    keras_model = tf.keras.Sequential(
        [tf.keras.Input((24, 24, 3)), tf.keras.layers.Flatten(), tf.keras.layers.Dense(4)]
    )
    keras_model.add(tf.keras.layers.Softmax())
    flat = tf.lite.TFLiteConverter.from_keras_model(keras_model).convert()
    labels = ["cat", "dog", "fish", "bird"]

    normalization = ms.NormalizationOptionsT()
    normalization.mean, normalization.std = [127.5], [127.5]
    unit = ms.ProcessUnitT()
    unit.optionsType, unit.options = ms.ProcessUnitOptions.NormalizationOptions, normalization
    image, output = ms.TensorMetadataT(), ms.TensorMetadataT()
    image.name, image.processUnits = "image", [unit]
    labels_file = ms.AssociatedFileT()
    labels_file.name, labels_file.type = "classes.txt", ms.AssociatedFileType.TENSOR_AXIS_LABELS
    output.name, output.associatedFiles = "probability", [labels_file]
    subgraph = ms.SubGraphMetadataT()
    subgraph.inputTensorMetadata, subgraph.outputTensorMetadata = [image], [output]
    meta = ms.ModelMetadataT()
    meta.name, meta.subgraphMetadata = "foreign", [subgraph]
    builder = flatbuffers.Builder(0)
    builder.Finish(meta.Pack(builder), b"M001")

    tree = schema.ModelT.InitFromPackedBuf(bytearray(flat), 0)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(bytes(builder.Output()), np.uint8)
    tree.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = "TFLITE_METADATA", len(tree.buffers) - 1
    tree.metadata = [*(tree.metadata or []), entry]
    out = flatbuffers.Builder(0)
    out.Finish(tree.Pack(out), b"TFL3")
    path = tmp_path / "foreign.tflite"
    path.write_bytes(bytes(out.Output()))
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("classes.txt", "\n".join(labels))
    return path, labels


def _run_interpreter(model, image: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(model))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image[np.newaxis])
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0]


def test_a_tflite_without_labels_anywhere_says_pass_labels(tmp_path):
    import tensorflow as tf

    bare = tmp_path / "bare.tflite"
    model = tf.keras.Sequential([tf.keras.Input((32, 32, 3)), tf.keras.layers.Flatten()])
    model.add(tf.keras.layers.Dense(3))
    bare.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    image = _save(tmp_path / "image.png", noisy_colour((0, 0, 200), size=(32, 32)))
    result = CliRunner().invoke(cli, ["label", "--graph", str(bare), str(image)])
    assert result.exit_code == 1
    assert "carries no labels" in result.output and "pass --labels" in result.output


def test_a_damaged_tflite_is_named_with_the_fix(tmp_path, exports):
    _, models, images, _ = exports
    whole = models["float_pixels"].read_bytes()
    image = str(images["input_size"][0])
    for name, contents in (
        ("truncated.tflite", whole[: len(whole) // 3]),
        ("scribbled.tflite", whole[:8] + bytes(range(256)) * 8 + whole[8 + 2048 :]),
    ):
        damaged = tmp_path / name
        damaged.write_bytes(contents)
        result = CliRunner().invoke(cli, ["label", "--graph", str(damaged), image])
        assert result.exit_code == 1, result.output
        assert f"{damaged} cannot be loaded as a TFLite model" in result.output, result.output
        assert "Traceback" not in result.output
