"""Folders of class sub-folders: the codelab's layout, its label rule and its stable splits.

Files are recognised as images by content, not extension; each is keyed by a hash of its bytes.
Unreadable files are skipped with a warning (or, with `strict`, refused before any work), and
every class must give each split at least one image.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from poetslearn.data.file_keys import FileKeyMemo, file_stamp
from poetslearn.data.images import decode_image
from poetslearn.data.sources import SPLITS, Dataset, FileImages, Split, content_key
from poetslearn.errors import DataError, ImageError
from poetslearn.progress import progress

MAX_NUM_IMAGES_PER_CLASS = 2**27 - 1  # the codelab's constant, kept so splits match its own


def normalise_label(folder_name: str) -> str:
    """The codelab's label rule: lower case, runs of other characters become one space.

    Letters and digits of any script are kept, so non-ASCII class names survive.
    """
    return re.sub(r"[\W_]+", " ", folder_name.lower()).strip()


def split_of(relative_path: str, validation_percentage: float, testing_percentage: float) -> str:
    """Which split an image belongs to, from a stable hash of its path below the image folder.

    As in the codelab, anything from `_nohash_` on is ignored, so `a_nohash_1.jpg` and
    `a_nohash_2.jpg` stay together. Adding or removing other images never moves this one.
    """
    hash_name = re.sub(r"_nohash_.*$", "", relative_path)
    value = int(hashlib.sha1(hash_name.encode("utf-8")).hexdigest(), 16)
    percentage = (value % (MAX_NUM_IMAGES_PER_CLASS + 1)) * (100.0 / MAX_NUM_IMAGES_PER_CLASS)
    if percentage < validation_percentage:
        return "validation"
    if percentage < validation_percentage + testing_percentage:
        return "test"
    return "train"


def _list_files(class_dir: Path) -> list[Path]:
    """Every non-hidden file below `class_dir`, sorted; symlinked folders are not followed."""
    found = []
    for root, dirs, files in os.walk(class_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(Path(root) / f for f in sorted(files) if not f.startswith("."))
    return found


def _scan_file(path: Path, decode: bool = False) -> bytes | str:
    """The content key of an image file, or the reason it is not a usable image.

    Normally only the header is read (cheap; by content, not extension); with `decode`, the
    whole image is decoded, which also finds truncated and corrupt files.
    """
    from PIL import Image

    try:
        data = path.read_bytes()
    except OSError as e:
        return f"cannot be read ({e.strerror or e})"
    if not data:
        return "is empty (0 bytes)"
    try:
        if decode:
            decode_image(data, str(path))
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                Image.open(io.BytesIO(data))
    except ImageError as e:
        return f"cannot be decoded ({e})"
    except Exception as e:  # noqa: BLE001 - PIL's plugins raise many types on malformed files
        return f"is not an image ({type(e).__name__})"
    return content_key(data)


def load_image_folder(
    image_dir: Path,
    validation_percentage: float = 10.0,
    testing_percentage: float = 10.0,
    show_progress: bool = True,
    warn=print,
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
    scanned = _scan_files([path for _, path in files], strict, show_progress, image_dir)
    _report_unreadable(
        image_dir,
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
    splits = {
        s: Split(
            FileImages([e[2] for e in entries], [e[1] for e in entries], [e[3] for e in entries]),
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


def _scan_files(
    paths: list[Path], strict: bool, show_progress: bool, image_dir: Path
) -> list[bytes | str]:
    """`_scan_file` of every path, in threads (it is mostly waiting for the disk). A file whose
    size and times match the memo keeps its remembered key unread (not with `strict`, which
    decodes every file); the others are read."""
    memo = FileKeyMemo()
    known = memo.load(image_dir) if not strict else {}
    names = [str(path) for path in paths]
    stamps = [file_stamp(path) for path in paths]
    results: list[bytes | str | None] = [None] * len(paths)
    for i, name in enumerate(names):
        remembered = known.get(name)
        if remembered is not None and remembered[0] == stamps[i]:
            results[i] = remembered[1]
    unread = [i for i, result in enumerate(results) if result is None]
    with (
        ThreadPoolExecutor(8) as pool,
        progress(len(unread), "Scanning images", "file", show_progress and bool(unread)) as bar,
    ):

        def scan(i: int) -> bytes | str:
            result = _scan_file(paths[i], decode=strict)
            bar.update(1)
            return result

        for i, result in zip(unread, pool.map(scan, unread)):
            results[i] = result
    if unread:
        memo.save(
            image_dir,
            {
                name: (stamp, result)
                for name, stamp, result in zip(names, stamps, results)
                if isinstance(result, bytes) and stamp is not None
            },
        )
    return results


def _report_unreadable(image_dir: Path, bad: list[tuple[Path, str]], strict: bool, warn) -> None:
    """Warns about each unreadable file, or with `strict` refuses them all in one error."""
    lines = [f"{path}: it {reason}" for path, reason in bad]
    if lines and strict:
        listing = "\n  ".join(lines[:20]) + (
            f"\n  ... and {len(lines) - 20} more" if len(lines) > 20 else ""
        )
        raise DataError(
            f"--strict: {len(lines)} file(s) in {image_dir} are not readable images:"
            f"\n  {listing}\nRemove or fix them, or run without --strict to skip "
            f"them."
        )
    for line in lines:
        warn(f"Skipping {line}.")
    if lines:
        warn(f"Skipped {len(lines)} file(s) that are not readable images.")


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
    _give_every_split_one(by_split)
    return by_split


def _give_every_split_one(by_split: dict[str, list]) -> None:
    """Moves images so that no split of a class is empty (tiny classes only).

    The image moved is the donor split's first by path, a deterministic choice; classes large
    enough for the hash to fill every split are never touched.
    """
    for needy in SPLITS:
        if by_split[needy]:
            continue
        donor = max(SPLITS, key=lambda s: len(by_split[s]))
        by_split[donor].sort()
        by_split[needy].append(by_split[donor].pop(0))
