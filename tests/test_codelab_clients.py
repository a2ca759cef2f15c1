"""Drop-in for the codelab's clients: label_image.py's exact arithmetic on codelab graphs,
`--input_format codelab` exports, and a `label` that stays quiet and needs no TensorFlow."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from helpers import COLOURS, noisy_colour, retrain_args
from poetslearn.cli.main import cli

CODELAB_GRAPH = "models/mobilenet_v1_1.0_224_poets_retrained/retrained_graph.pb"


def label_image_py(
    graph: Path, image: Path, size: int, mean: float = 128.0, std: float = 128.0
) -> np.ndarray:
    """The codelab's scripts/label_image.py, step for step, in TF1 graph mode: decoder chosen by
    the file name, float cast, expand_dims, tf.image.resize_bilinear (TF1), (x - mean) / std,
    then the graph's `input` -> `final_result`. Written here, independent of poetslearn."""
    import tensorflow as tf

    v1 = tf.compat.v1
    with tf.Graph().as_default(), v1.Session() as session:
        data = v1.read_file(str(image))
        name = str(image)
        if name.endswith(".png"):
            decoded = v1.image.decode_png(data, channels=3)
        elif name.endswith(".gif"):
            decoded = v1.squeeze(v1.image.decode_gif(data))
        elif name.endswith(".bmp"):
            decoded = v1.image.decode_bmp(data)
        else:
            decoded = v1.image.decode_jpeg(data, channels=3)
        resized = v1.image.resize_bilinear(
            v1.expand_dims(v1.cast(decoded, tf.float32), 0), [size, size]
        )
        normalized = session.run(v1.divide(v1.subtract(resized, [mean]), [std]))
    graph_def = v1.GraphDef.FromString(Path(graph).read_bytes())
    with tf.Graph().as_default() as g:
        v1.import_graph_def(graph_def, name="")
        with v1.Session(graph=g) as session:
            return session.run("final_result:0", {"input:0": normalized})[0]


def label_json(graph: Path, images: list[Path], *extra: str) -> list[list[float]]:
    """Scores per image from `poetslearn label --json`, in the graph's label order."""
    result = CliRunner().invoke(
        cli, ["label", "--graph", str(graph), "--json", "--top_k", "100", *extra, *map(str, images)]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["results"]


def scores_by_label(result: dict, labels: list[str]) -> np.ndarray:
    found = {p["label"]: p["score"] for p in result["predictions"]}
    return np.array([found[label] for label in labels])


@pytest.fixture
def photos(tmp_path) -> list[Path]:
    """Real photos, larger and smaller than the input, in every format label_image.py reads."""
    from skimage import data

    cat, coffee = data.chelsea(), data.coffee()  # 300x451 and 400x600
    out = tmp_path / "photos"
    out.mkdir()
    files = [
        (cat, "cat.jpg", "JPEG"),
        (coffee, "coffee.jpg", "JPEG"),
        (cat, "cat.png", "PNG"),
        (cat[::4, ::4], "small_cat.bmp", "BMP"),
        (coffee[100:260, 200:380], "crop.gif", "GIF"),
        (cat[60:150, 100:220], "small.jpg", "JPEG"),
    ]
    for pixels, name, fmt in files:
        Image.fromarray(np.ascontiguousarray(pixels)).save(out / name, format=fmt)
    return [out / name for _, name, _ in files]


def test_label_on_a_codelab_graph_reproduces_label_image_py(shared, tmp_path, photos):
    graph = shared / CODELAB_GRAPH
    labels = tmp_path / "labels.txt"
    labels.write_text("first\nsecond\n")
    results = label_json(
        graph, photos, "--labels", str(labels), "--input_mean", "128", "--input_std", "128"
    )
    for image, result in zip(photos, results):
        expected = label_image_py(graph, image, 224)
        got = scores_by_label(result, ["first", "second"])
        np.testing.assert_allclose(got, expected, atol=1e-4, err_msg=str(image))


@pytest.fixture
def codelab_format(tmp_path, colour_dir):
    """test_tiny trained twice on the same colours: pixels format and --input_format codelab."""
    for fmt in ("pixels", "codelab"):
        args = retrain_args(
            tmp_path,
            "--image_dir",
            str(colour_dir),
            "--input_format",
            fmt,
            "--output_graph",
            str(tmp_path / fmt / "graph.pb"),
            "--tflite_output",
            str(tmp_path / fmt / "model.tflite"),
        )
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
    images = []
    for i, (name, colour) in enumerate(COLOURS.items()):
        for size, ext in (((70, 90), "jpg"), ((20, 24), "png")):  # larger and smaller than 32
            path = tmp_path / f"{name}_{size[0]}.{ext}"
            Image.fromarray(noisy_colour(colour, size=size, seed=700 + i)).save(path)
            images.append((name, path))
    return tmp_path, images


def test_codelab_format_graph_is_fed_like_label_image_py(codelab_format):
    tmp_path, images = codelab_format
    graph = tmp_path / "codelab" / "graph.pb"
    meta = json.loads((tmp_path / "codelab" / "graph.pb.json").read_text())
    assert (meta["input_format"], meta["input_mean"], meta["input_std"]) == ("codelab", 128, 128)
    results = label_json(graph, [p for _, p in images])
    for (name, path), result in zip(images, results):
        expected = label_image_py(graph, path, 32)  # the codelab's flags: mean 128, std 128
        np.testing.assert_allclose(scores_by_label(result, meta["labels"]), expected, atol=1e-4)
        assert result["predictions"][0]["label"] == name
        assert meta["labels"][int(np.argmax(expected))] == name


def test_codelab_format_is_the_same_classifier_as_the_pixels_format(codelab_format):
    """One model, two doors: pixels resized to 32x32, fed as 0..255 to the pixels graph and as
    (x - 128) / 128 to the codelab graph (and to its .tflite), give the same scores."""
    from helpers import graph_probabilities
    from poetslearn.artifacts.tflite_file import interpreter_class
    from poetslearn.data.images import load_image

    tmp_path, images = codelab_format
    pixels = np.stack([load_image(p, 32) for _, p in images])
    by_pixels = graph_probabilities(tmp_path / "pixels" / "graph.pb", pixels)
    scaled = (pixels - 128.0) / 128.0
    by_codelab = np.concatenate(
        [
            graph_probabilities(tmp_path / "codelab" / "graph.pb", image[np.newaxis])
            for image in scaled
        ]
    )
    np.testing.assert_allclose(by_codelab, by_pixels, atol=1e-5)
    interpreter = interpreter_class()(model_path=str(tmp_path / "codelab" / "model.tflite"))
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    assert list(inp["shape"]) == [1, 32, 32, 3]
    for image, expected in zip(scaled, by_codelab):
        interpreter.set_tensor(inp["index"], image[np.newaxis].astype(np.float32))
        interpreter.invoke()
        got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0]
        np.testing.assert_allclose(got, expected, atol=1e-4)
    # `evaluate` reads the format from the metadata too.
    for fmt in ("pixels", "codelab"):
        result = CliRunner().invoke(
            cli,
            [
                "evaluate",
                "--graph",
                str(tmp_path / fmt / "graph.pb"),
                "--image_dir",
                str(tmp_path / "colours"),
                "--quiet",
            ],
        )
        assert result.exit_code == 0 and "accuracy = 100.0%" in result.output, result.output


# The CLI run in a fresh process, to see what reaches sys.modules and stderr.
RUN_CLI = """
import sys
from poetslearn.cli.main import main
sys.argv = ["poetslearn"] + sys.argv[1:]
try:
    main()
finally:
    print("TENSORFLOW IMPORTED" if "tensorflow" in sys.modules else "NO TENSORFLOW",
          file=sys.stderr)
"""


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", RUN_CLI, *args], capture_output=True, text=True, timeout=300
    )


def test_label_with_a_tflite_model_never_imports_tensorflow(tmp_path, colour_dir):
    from poetslearn.config import LabelConfig
    from poetslearn.inference.label import load_classifier

    args = retrain_args(
        tmp_path, "--image_dir", str(colour_dir), "--tflite_output", str(tmp_path / "m.tflite")
    )
    assert CliRunner().invoke(cli, args).exit_code == 0
    photo = tmp_path / "photo.jpg"
    Image.fromarray(noisy_colour(COLOURS["green"], size=(300, 200), seed=3)).save(photo)
    done = run_cli("label", "--graph", str(tmp_path / "m.tflite"), "--json", str(photo))
    assert done.returncode == 0 and done.stderr == "NO TENSORFLOW\n", done.stderr
    scores = {p["label"]: p["score"] for p in json.loads(done.stdout)["results"][0]["predictions"]}
    # The same image through the frozen graph (TensorFlow's resize inside): the same scores.
    graph = load_classifier(LabelConfig(graph=tmp_path / "out" / "graph.pb"))
    for prediction in graph.classify(photo, 3):
        assert abs(scores[prediction.label] - prediction.score) <= 1e-4


POETSLEARN_LINE = re.compile(
    r"(Scanning images|Computing bottlenecks|Training|Evaluating): \d+% \([\d,]+/[\d,]+\), "
    r"[\d,.]+ \w+/s(, [\d,]+ s left)?"
    r"|Warning: --weights none uses random weights; .*"
    r"|TENSORFLOW IMPORTED|NO TENSORFLOW"
)


@pytest.mark.processes
def test_every_stderr_line_is_poetslearns_own(tmp_path, colour_dir):
    out = tmp_path / "out"
    args = retrain_args(
        tmp_path,
        "--image_dir",
        str(colour_dir),
        "--flip_left_right",
        "--engine",
        "tflite_int8",
        "--saved_model_dir",
        str(out / "saved"),
        "--tflite_output",
        str(out / "m.tflite"),
        "--tflite_quantize",
        "int8",
    )
    retrain = run_cli(*[a for a in args if a != "--quiet"])  # progress lines on
    runs = [
        retrain,
        run_cli("label", "--graph", str(out / "graph.pb"), str(colour_dir / "red" / "img_0.png")),
        run_cli("label", "--graph", str(out / "m.tflite"), str(colour_dir / "red" / "img_0.png")),
        run_cli("evaluate", "--graph", str(out / "graph.pb"), "--image_dir", str(colour_dir)),
        run_cli(
            "evaluate",
            "--graph",
            str(out / "m.tflite"),
            "--image_dir",
            str(colour_dir),
            "--plot",
            str(tmp_path / "p.png"),
        ),
    ]
    for run in runs:
        assert run.returncode == 0, run.stderr
        strangers = [
            line for line in run.stderr.splitlines() if not POETSLEARN_LINE.fullmatch(line)
        ]
        assert strangers == [], strangers
    assert "Computing bottlenecks: 100%" in retrain.stderr  # progress did come through
