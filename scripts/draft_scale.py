"""How small a JPEG may be decoded (DCT scaling: 1/2, 1/4, 1/8) before the antialiased resize
to the network's input, without moving accuracy: one classifier evaluated on one photo folder
with the decode kept at least FACTOR times the input size (0: the full-size decode), and the
decode + resize time per photo (one core).

    python scripts/draft_scale.py --graph tf_files/mediapipe/mobilenet_0.25_128.tflite \\
        --image_dir tf_files/mediapipe/photos_1600x1200 --factors 0,1,2,3

(`scripts/mediapipe_resize.py` makes that model and folder: CIFAR-10 test rows as photos.)
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import click


def interval(p: float, n: int) -> float:
    return 196 * math.sqrt(p * (1 - p) / n)


@click.command()
@click.option("--graph", type=click.Path(path_type=Path), required=True)
@click.option("--image_dir", type=click.Path(path_type=Path), required=True)
@click.option("--factors", default="0,1,2", help="Draft factors; 0 decodes at full size.")
def main(graph, image_dir, factors):
    import poetslearn.data.images as images
    from poetslearn.config import LabelConfig
    from poetslearn.data.datasets import load_split_to_evaluate
    from poetslearn.inference.evaluate import evaluate_split
    from poetslearn.inference.label import load_classifier

    classifier = load_classifier(LabelConfig(graph=graph))
    data, split = load_split_to_evaluate(image_dir, Path("."), "all", {}, show_progress=False)
    size = classifier.size[0]
    paths = sorted(image_dir.rglob("*.jpg"))[:100]
    report = {"graph": str(graph), "image_dir": str(image_dir), "input_size": size}
    predicted = {}
    print(f"{graph.name} on {len(split)} photos of {image_dir.name}, input {size}x{size}:")
    default_factor = images.DRAFT_FACTOR
    try:
        for factor in (int(f) for f in factors.split(",")):
            images.DRAFT_FACTOR = factor  # 0: min_side 0, no draft
            result = evaluate_split(classifier, split, data.class_names, show_progress=False)
            start = time.perf_counter()
            for path in paths:
                images.load_image(path, size)
            ms = 1000 * (time.perf_counter() - start) / len(paths)
            predicted[factor] = result.predicted
            decoded = images.read_image_file(paths[0], min_side=factor * size).shape[:2]
            report[str(factor)] = {
                "accuracy": result.accuracy,
                "ms_per_photo": ms,
                "decoded": decoded,
            }
            print(
                f"  factor {factor}: decoded at {decoded[1]}x{decoded[0]}, accuracy "
                f"{100 * result.accuracy:.1f}% +-{interval(result.accuracy, len(split)):.1f}, "
                f"decode + resize {ms:.1f} ms a photo"
            )
    finally:  # the module's own setting back, for whoever imported it beside this
        images.DRAFT_FACTOR = default_factor
    base = predicted[min(predicted)]
    for factor, labels in predicted.items():
        changed = int((labels != base).sum())
        report[str(factor)]["top_labels_changed"] = changed
        print(f"  factor {factor}: {changed} top labels differ from factor {min(predicted)}'s")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
