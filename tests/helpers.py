"""What the tests share, in one module (tests import from here, never from each other): tiny
image folders and a tiny CIFAR-10 made on the fly, the `retrain` arguments of a tiny run, and
readers of an exported graph."""

from __future__ import annotations

import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]

# Solid colours, one per class; small noise so no two images are byte-identical.
COLOURS = {"red": (220, 30, 30), "green": (30, 200, 50), "blue": (40, 40, 230)}
CIFAR_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]


def shared_dir() -> Path:
    return Path(os.environ.get("POETSLEARN_SHARED_DIR", REPO_ROOT.parent / "shared"))


def noisy_colour(colour, size=(40, 48), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.integers(-12, 13, (*size, 3))
    return np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)


def make_colour_folder(root: Path, per_class: int = 10, colours=COLOURS) -> Path:
    """root/<colour>/img_<i>.<ext>, cycling through formats; one PNG is named .jpg on purpose."""
    formats = [("PNG", "png"), ("JPEG", "jpg"), ("BMP", "bmp"), ("PNG", "jpg")]
    for c, (name, colour) in enumerate(colours.items()):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            fmt, ext = formats[i % len(formats)]
            Image.fromarray(noisy_colour(colour, seed=100 * c + i)).save(
                folder / f"img_{i}.{ext}", format=fmt
            )
    return root


def make_tiny_cifar(folder: Path, per_batch: int = 20, test_size: int = 30) -> Path:
    """cifar-10-python.tar.gz in the official layout; class c is a solid colour (c * 25, ...)."""
    rng = np.random.default_rng(0)

    def batch(n: int, offset: int) -> dict:
        labels = [(offset + i) % 10 for i in range(n)]
        rows = []
        for label in labels:
            base = np.array([label * 25, 255 - label * 25, (label * 70) % 256])
            img = np.clip(base + rng.integers(-5, 6, (32, 32, 3)), 0, 255).astype(np.uint8)
            rows.append(img.transpose(2, 0, 1).reshape(-1))  # R plane, G plane, B plane
        return {
            b"data": np.stack(rows),
            b"labels": labels,
            b"filenames": [f"img_{offset + i}.png".encode() for i in range(n)],
            b"batch_label": b"tiny",
        }

    members = {f"data_batch_{k}": batch(per_batch, k * per_batch) for k in range(1, 6)}
    members["test_batch"] = batch(test_size, 7)
    members["batches.meta"] = {b"label_names": [n.encode() for n in CIFAR_CLASSES]}
    return write_cifar_archive(folder, members)


def write_cifar_archive(folder: Path, members: dict[str, dict]) -> Path:
    """folder/cifar-10-python.tar.gz holding each member pickled, in the official layout."""
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(folder / "cifar-10-python.tar.gz", "w:gz") as tar:
        for name, obj in members.items():
            data = pickle.dumps(obj)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return folder


def randomise_batch_norm(backbone, seed: int = 3) -> None:
    """Fresh layers hold mean 0, variance 1, gamma 1, beta 0, which would hide a folding error."""
    rng = np.random.default_rng(seed)
    for layer in backbone.layers:
        if type(layer).__name__ == "BatchNormalization":
            for variable in layer.weights:
                kind = variable.path.split("/")[-1]
                low, high = {"moving_variance": (0.5, 2.0), "gamma": (0.5, 1.5)}.get(
                    kind, (-0.5, 0.5)
                )
                variable.assign(rng.uniform(low, high, variable.shape).astype(np.float32))


def retrain_args(tmp_path: Path, *extra: str) -> list[str]:
    return [
        "retrain",
        "--architecture",
        "test_tiny",
        "--weights",
        "none",
        "--bottleneck_dir",
        str(tmp_path / "bottlenecks"),
        "--output_graph",
        str(tmp_path / "out" / "graph.pb"),
        "--output-labels",
        str(tmp_path / "out" / "labels.txt"),
        "--summaries_dir",
        str(tmp_path / "summaries"),
        "--how_many_training_steps",
        "300",
        "--eval_step_interval",
        "50",
        "--quiet",
        *extra,
    ]


def graph_probabilities(graph_path, pixels: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef.FromString(graph_path.read_bytes())
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    with tf.compat.v1.Session(graph=graph) as session:
        return session.run("final_result:0", {"input:0": pixels})


def bottleneck_of(graph: Path, pixels: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef.FromString(graph.read_bytes())
    with tf.Graph().as_default() as g:
        tf.compat.v1.import_graph_def(graph_def, name="")
        with tf.compat.v1.Session(graph=g) as session:
            return session.run("bottleneck:0", {"input:0": pixels})


def cifar_folder(shared, root, classes=(0, 6, 9), per_class=40, offset=0):
    """Real CIFAR-10 training images written as PNG class folders (airplane, frog, truck)."""
    from poetslearn.data.cifar10 import load_cifar10

    data = load_cifar10(shared / "data", download=False, show_progress=False)
    train = data.splits["train"]
    for c in classes:
        folder = root / data.class_names[c]
        folder.mkdir(parents=True, exist_ok=True)
        rows = np.flatnonzero(train.labels == c)[offset : offset + per_class]
        for i in rows:
            Image.fromarray(train.images.pixels[i]).save(folder / f"{i}.png")
    return root


def make_colour_mosaics(root: Path, count: int = 60, colours=COLOURS, seed: int = 0) -> Path:
    """root/mosaic_<i>.png, each two or one solid colours side by side, and root/mosaics.csv
    naming them (`path,labels`): a tiny multi-label data set whose labels a layer must get
    exactly right."""
    rng = np.random.default_rng(seed)
    names = list(colours)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(count):
        # Every other image holds two colours; the rest hold one, so sets of 1 and 2 both occur.
        chosen = sorted(rng.choice(len(names), 2 if i % 2 == 0 else 1, replace=False).tolist())
        halves = [
            noisy_colour(colours[names[c]], size=(40, 24), seed=seed * 1000 + i * 7 + c)
            for c in chosen
        ]
        pixels = np.concatenate(halves * (2 // len(halves)), axis=1)
        Image.fromarray(pixels).save(root / f"mosaic_{i}.png")
        rows.append(f"mosaic_{i}.png,{';'.join(names[c] for c in chosen)}")
    (root / "mosaics.csv").write_text("path,labels\n" + "\n".join(rows) + "\n")
    return root / "mosaics.csv"


def photo_folder(root, n=40):
    """n images cycling through the colours, in nested folders, plus things that are not images."""
    expected = []
    for i in range(n):
        name = list(COLOURS)[i % 3]
        path = root / f"sub{i % 2}" / f"img_{i:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(noisy_colour(COLOURS[name], seed=900 + i)).save(path)
        expected.append((path, name))
    (root / "notes.txt").write_text("not an image")
    (root / ".hidden").mkdir()
    Image.fromarray(noisy_colour(COLOURS["red"])).save(root / ".hidden" / "x.png")
    return sorted(expected)
