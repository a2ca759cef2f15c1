"""Labelling many images: the paths a command names (files, folders searched recursively, list
files), and the classifier run a batch at a time, the next batches decoded by several threads
while this one runs, results in input order, a file that cannot be read reported alone."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from poetslearn.config import LabelConfig
from poetslearn.data.parallel import load_each, prefetched
from poetslearn.data.resize import prepare_resize
from poetslearn.errors import ImageError, PoetslearnError
from poetslearn.inference.classifier import Classifier
from poetslearn.inference.predictions import Prediction, top_predictions

# What `label FOLDER` takes from a folder (by name: a folder may hold anything else too).
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
LOAD_ERRORS = (ImageError, PoetslearnError, OSError)  # one file's problem, not the run's


@dataclass
class Labelled:
    path: Path
    predictions: list[Prediction] | None = None  # top k; multi-label: the labels it has
    error: str | None = None
    scores: list[Prediction] | None = None  # multi-label: the top k scores, decided or not


def images_in(folder: Path) -> list[Path]:
    """Image files under `folder`, recursively, hidden ones skipped, in a stable order."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def read_image_list(source: str) -> list[Path]:
    """One path per line (blank lines and `#` comments skipped); `-` reads standard input.
    Relative paths are relative to the list file's folder, as in a CSV of a data set."""
    if source == "-":
        lines, base = sys.stdin.read().splitlines(), Path(".")
    else:
        try:
            lines = Path(source).read_text(encoding="utf-8").splitlines()
        except OSError as e:
            raise PoetslearnError(
                f"Cannot read the image list {source} ({e.strerror or e})."
            ) from e
        base = Path(source).parent
    entries = (line.strip() for line in lines)
    return [base / entry for entry in entries if entry and not entry.startswith("#")]


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files as given, folders replaced by the images in them."""
    out: list[Path] = []
    for path in paths:
        out.extend(images_in(path) if Path(path).is_dir() else [Path(path)])
    return out


def label_all(
    classifier: Classifier, paths: list[Path], top_k: int, batch: int = LabelConfig.batch_size
) -> Iterator[Labelled]:
    """Every path's predictions (or why it failed), in input order; the images of the next
    batches decoded by several threads while the classifier runs this one. A multi-label
    model's predictions are the labels at or above their thresholds, its top k in `scores`."""
    chunks = [paths[i : i + batch] for i in range(0, len(paths), batch)]
    prepare_resize(len(paths))
    classifier.expect(len(paths))
    labels, multi_label = classifier.labels, classifier.thresholds is not None

    def load(chunk: list[Path]):
        return load_each(classifier.load_pixels, chunk, errors=LOAD_ERRORS)

    def answer(path: Path, probs) -> Labelled:
        top = top_predictions(probs, labels, top_k)
        if not multi_label:
            return Labelled(path, top)
        return Labelled(path, classifier.decided(probs), scores=top)

    for chunk, (pixels, errors) in zip(chunks, prefetched(chunks, load)):
        scores = iter(classifier.probabilities(pixels) if pixels else [])
        for i, path in enumerate(chunk):
            yield Labelled(path, error=errors[i]) if i in errors else answer(path, next(scores))
