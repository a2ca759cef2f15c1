"""What MediaPipe Tasks' own resize costs: accuracy of one exported `.tflite` on photo-sized
images, classified by `poetslearn evaluate` (antialiased resize, as in training) and by MediaPipe
Tasks' ImageClassifier (its bilinear warp, no antialiasing), fed the photo as it is, halved by
the app while the half is at least the input size (Android's decoder with inSampleSize), or scaled
to the network's input size by the app first (Pillow's antialiased resize).

The photos: CIFAR-10 test rows 0..N-1 (the bit-exact rows) enlarged to a photo's size (bicubic),
with sensor-like noise (Gaussian, sigma 4 levels) and saved as JPEG quality 90, one folder per
class. The model: `poetslearn retrain` on CIFAR-10 with --tflite_output (bottlenecks cached in
--bottleneck_dir, so a second run only measures).

    python scripts/mediapipe_resize.py --architecture mobilenet_0.25_128 --rows 1000

Prints accuracy with its 95% interval for each way, and how often MediaPipe's top label is
`label`'s, as a table and a JSON line.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import click
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def make_photos(data_dir: Path, root: Path, rows: int, size: tuple[int, int]) -> list[tuple]:
    """[(path, class index)] of test rows 0..rows-1 as noisy photo-sized JPEGs."""
    from poetslearn.data.cifar10 import load_cifar10

    data = load_cifar10(data_dir, download=False, show_progress=False)
    test = data.splits["test"]
    rng = np.random.default_rng(0)
    out = []
    for row in range(rows):
        label = int(test.labels[row])
        folder = root / data.class_names[label]
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{row:05d}.jpg"
        if not path.exists():
            big = Image.fromarray(test.images.pixels[row]).resize(size, Image.BICUBIC)
            noisy = np.asarray(big, np.float32) + rng.normal(0, 4, (size[1], size[0], 3))
            Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(path, quality=90)
        out.append((path, label))
    return out


def poetslearn(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "poetslearn", *args], capture_output=True, text=True, cwd=ROOT
    )
    if result.returncode:
        raise SystemExit(result.stderr[-3000:])
    return result.stdout


def scaled_to(size: int):
    """The app scales the photo to the input size (Pillow's antialiased bilinear)."""
    return lambda image: image.resize((size, size), Image.BILINEAR)


def halved_towards(size: int):
    """The app halves the photo (2x2 averages) while the half is still at least the input size,
    as Android's decoder does with the usual inSampleSize rule; MediaPipe scales the rest."""

    def halve(image):
        while min(image.size) // 2 >= size:
            image = image.reduce(2)
        return image

    return halve


def mediapipe_top_labels(model: Path, photos, prepare=None) -> list[str]:
    import mediapipe
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core.base_options import BaseOptions

    options = vision.ImageClassifierOptions(
        base_options=BaseOptions(model_asset_path=str(model)), max_results=1
    )
    labels = []
    with vision.ImageClassifier.create_from_options(options) as classifier:
        for path, _ in photos:
            image = Image.open(path).convert("RGB")
            if prepare is not None:
                image = prepare(image)
            frame = mediapipe.Image(image_format=mediapipe.ImageFormat.SRGB, data=np.asarray(image))
            labels.append(classifier.classify(frame).classifications[0].categories[0].category_name)
    return labels


def label_top_labels(model: Path, photos) -> list[str]:
    lines = poetslearn("label", "--graph", str(model), "--json", *(str(p) for p, _ in photos))
    return [entry["predictions"][0]["label"] for entry in json.loads(lines)["results"]]


def interval(correct: int, n: int) -> float:
    """Half-width of the 95% normal interval of a proportion, in points."""
    p = correct / n
    return 196 * math.sqrt(p * (1 - p) / n)


def paired_gap(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Accuracy of `a` minus that of `b` on the same images, in points, with the half-width of
    its 95% interval from the paired differences (far narrower than the two intervals apart)."""
    diff = a.astype(np.float64) - b.astype(np.float64)
    return 100 * diff.mean(), 196 * diff.std(ddof=1) / math.sqrt(len(diff)) if len(
        diff
    ) > 1 else 0.0


@click.command()
@click.option("--architecture", default="mobilenet_0.25_128")
@click.option("--rows", default=1000, help="CIFAR-10 test rows 0..N-1 (the bit-exact ones).")
@click.option("--photo_size", default="500x375", help="WIDTHxHEIGHT of the photos.")
@click.option("--data_dir", type=click.Path(path_type=Path), default=ROOT / "../shared/data")
@click.option("--model_dir", type=click.Path(path_type=Path), default=ROOT / "../shared/models")
@click.option("--work", type=click.Path(path_type=Path), default=ROOT / "tf_files/mediapipe")
@click.option("--weights", default="imagenet", help="Passed to retrain (none: random, for tests).")
@click.option("--steps", type=int, default=None, help="retrain's training steps (its default).")
def main(architecture, rows, photo_size, data_dir, model_dir, work, weights, steps):
    size = tuple(int(v) for v in photo_size.split("x"))
    model = work / f"{architecture}.tflite"
    if not model.exists():
        poetslearn(
            "retrain", "--architecture", architecture, "--data_dir", str(data_dir),
            "--model_dir", str(model_dir), "--bottleneck_dir", str(work / "bottlenecks"),
            "--output_graph", str(work / f"{architecture}.pb"),
            "--output_labels", str(work / f"{architecture}.txt"),
            "--tflite_output", str(model), "--quiet", "--weights", weights,
            *(["--how_many_training_steps", str(steps)] if steps else []),
        )  # fmt: skip
    photos = make_photos(data_dir, work / f"photos_{photo_size}", rows, size)
    input_size = json.loads(Path(f"{model}.json").read_text())["input_size"][0]
    truth = [p.parent.name for p, _ in photos]
    ways = {
        "poetslearn label": label_top_labels(model, photos),
        "MediaPipe, photo as it is": mediapipe_top_labels(model, photos),
        "MediaPipe, app halves first": mediapipe_top_labels(
            model, photos, halved_towards(input_size)
        ),
        "MediaPipe, app scales first": mediapipe_top_labels(model, photos, scaled_to(input_size)),
    }
    report = {"architecture": architecture, "rows": rows, "photo_size": photo_size}
    print(f"{architecture}, CIFAR-10 test rows 0-{rows - 1} as {photo_size} JPEGs:")
    right = {way: np.array([p == t for p, t in zip(got, truth)]) for way, got in ways.items()}
    for way, predicted in ways.items():
        correct = int(right[way].sum())
        same = sum(p == q for p, q in zip(predicted, ways["poetslearn label"]))
        gap, gap_interval = paired_gap(right[way], right["poetslearn label"])
        report[way] = {
            "accuracy": correct / rows,
            "same_top_label_as_label": same / rows,
            "points_vs_label": gap,
            "points_vs_label_95": gap_interval,
        }
        print(
            f"  {way:30s} {100 * correct / rows:5.1f}% +-{interval(correct, rows):.1f}"
            f"   vs label {gap:+5.1f} +-{gap_interval:.1f} (paired)"
            f"   top label as label's: {100 * same / rows:5.1f}%"
        )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
