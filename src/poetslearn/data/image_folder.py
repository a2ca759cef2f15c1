"""Folders of class sub-folders: the codelab's layout, its label rule and its stable splits.

Files are recognised as images by content, not extension; each is keyed by a hash of its bytes.
Unreadable files are skipped with a warning (or, with `strict`, refused before any work), and
every class must give each split at least one image.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from poetslearn.context import warn_on_stderr
from poetslearn.data.image_scan import report_unreadable, scan_files
from poetslearn.data.sources import SPLITS, Dataset, FileImages, Split
from poetslearn.data.split_rule import give_every_split_one, split_of
from poetslearn.errors import DataError


def normalise_label(folder_name: str) -> str:
    """The codelab's label rule: lower case, runs of other characters become one space.

    Letters and digits of any script are kept, so non-ASCII class names survive.
    """
    return re.sub(r"[\W_]+", " ", folder_name.lower()).strip()


def _list_files(class_dir: Path) -> list[Path]:
    """Every non-hidden file below `class_dir`, sorted; symlinked folders are not followed."""
    found = []
    for root, dirs, files in os.walk(class_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(Path(root) / f for f in sorted(files) if not f.startswith("."))
    return found


def load_image_folder(
    image_dir: Path,
    validation_percentage: float = 10.0,
    testing_percentage: float = 10.0,
    *,
    show_progress: bool = True,
    warn=warn_on_stderr,
    strict: bool = False,
    whole: bool = False,
) -> Dataset:
    """One class per sub-folder of `image_dir`; every class gets train, validation and test images
    (with `whole`, for `evaluate --split all`: every image in "train", unsplit, so a class of one
    held-out photo is fine).

    Files that are not readable images are skipped with a warning each; with `strict`, every
    image is decoded up front and any bad file is an error instead. Raises DataError, before any
    expensive work, when fewer than two classes exist or a class has too few images to give each
    split one.
    """
    image_dir = Path(image_dir).absolute()  # workers elsewhere read the same paths
    class_dirs = _class_folders(image_dir)
    files = [(ci, p) for ci, d in enumerate(class_dirs) for p in _list_files(d)]
    scanned = scan_files([path for _, path in files], strict, show_progress, image_dir)
    report_unreadable(
        str(image_dir),
        [(path, r) for (_, path), r in zip(files, scanned) if isinstance(r, str)],
        strict,
        warn,
    )
    per_class: list[list[tuple[str, Path, bytes]]] = [[] for _ in class_dirs]
    for (ci, path), result in zip(files, scanned):
        if not isinstance(result, str):
            per_class[ci].append((path.relative_to(image_dir).as_posix(), path, result))
    chosen: dict[str, list[tuple[int, str, Path, bytes]]] = {s: [] for s in SPLITS}
    for ci, items in enumerate(per_class):
        by_split = (
            {"train": items, "validation": [], "test": []}
            if whole
            else _split_class(class_dirs[ci], items, validation_percentage, testing_percentage)
        )
        for s in SPLITS:
            chosen[s].extend((ci, rel, path, key) for rel, path, key in by_split[s])
    total = sum(len(entries) for entries in chosen.values())
    splits = {
        s: Split(
            FileImages(
                [e[2] for e in entries],
                [e[1] for e in entries],
                [e[3] for e in entries],
                dataset_size=total,
            ),
            np.array([e[0] for e in entries], dtype=np.int64),
        )
        for s, entries in chosen.items()
    }
    names = [normalise_label(d.name) for d in class_dirs]
    return Dataset(image_dir.name or str(image_dir), names, splits, str(image_dir))


def _class_folders(image_dir: Path) -> list[Path]:
    """The class sub-folders, sorted; each must give a distinct, non-empty label."""
    if not image_dir.is_dir():
        raise DataError(f"--image_dir {image_dir} is not a folder.")
    class_dirs = sorted(d for d in image_dir.iterdir() if d.is_dir() and not d.name.startswith("."))
    labels_seen: dict[str, Path] = {}
    for d in class_dirs:
        label = normalise_label(d.name)
        if not label:
            raise DataError(
                f"Folder {d} gives an empty label; rename it to contain a letter or digit."
            )
        if label in labels_seen:
            raise DataError(
                f"Folders {labels_seen[label]} and {d} both give the label {label!r}; "
                f"rename one of them."
            )
        labels_seen[label] = d
    if len(class_dirs) < 2:
        raise DataError(
            f"{image_dir} has {len(class_dirs)} class folder(s); a classifier needs at "
            f"least 2 (one sub-folder of images per class)."
        )
    return class_dirs


def _split_class(
    class_dir: Path,
    items: list[tuple[str, Path, bytes]],
    validation_percentage: float,
    testing_percentage: float,
) -> dict[str, list[tuple[str, Path, bytes]]]:
    """One class's (relative path, path, key) items by split; each split gets at least one."""
    if len(items) < 3:
        raise DataError(
            f"Class {normalise_label(class_dir.name)!r} ({class_dir}) has {len(items)} image(s); "
            f"at least 3 are needed so that training, validation and testing each get one. Add "
            f"images to it or remove it."
        )
    by_split: dict[str, list] = {s: [] for s in SPLITS}
    for rel, path, key in items:
        by_split[split_of(rel, validation_percentage, testing_percentage)].append((rel, path, key))
    give_every_split_one(by_split)
    return by_split
