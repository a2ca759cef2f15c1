"""Data sets described by a CSV file: one row per image, with its path, its labels and, if the
team fixed it, its split.

The header row names the columns: `path` (relative to the CSV file's folder, or absolute),
`labels` (one or more labels separated by ";") and, optionally, `split` (train, validation or
test; an empty cell leaves the image to the stable rule folders use, applied to the path as
written, so a CSV listing a folder as `class/file.jpg` cuts it as the folder is cut). Other
columns are ignored, so a team's notes can stay in the file. The files are checked as a folder's
are: missing or unreadable ones are skipped with a warning, or refused together with `strict`.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from poetslearn.context import warn_on_stderr
from poetslearn.data.image_scan import report_unreadable, scan_files
from poetslearn.data.sources import SPLITS, Dataset, FileImages, Split
from poetslearn.data.split_rule import give_every_split_one, split_of
from poetslearn.errors import DataError

REQUIRED_COLUMNS = ("path", "labels")
LABEL_SEPARATOR = ";"
EXAMPLE = "path,labels,split\nbeach/001.jpg,beach;dog,train"


@dataclass(frozen=True)
class CsvRow:
    line: int  # where the row ends in the file, for messages
    path: str  # as written
    labels: tuple[str, ...]
    split: str | None  # None: the stable rule decides

    @property
    def rule_key(self) -> str:
        """The path as written with "/" between folders (a CSV made on Windows reads anywhere):
        what the stable split rule hashes and the file that is read."""
        return self.path.replace("\\", "/").removeprefix("./")


def read_rows(csv_path: Path) -> list[CsvRow]:
    """Every row of the CSV file, checked: the columns exist, each row has no more cells than
    the header, names a file and gives a known split word, labels have no line breaks, no file
    is listed twice."""
    reader = csv.DictReader(io.StringIO(_read_text(csv_path)))
    try:
        header = reader.fieldnames or []
        columns = {name.strip().lower(): name for name in header}
        missing = [name for name in REQUIRED_COLUMNS if name not in columns]
        if missing:
            raise DataError(
                f"{csv_path} has no {' or '.join(repr(m) for m in missing)} column; its header "
                f"row is {', '.join(header) or '(empty)'}. Expected a header row naming path, "
                f"labels and optionally split, for example:\n{EXAMPLE}"
            )
        rows = [_row(csv_path, reader.line_num, record, columns) for record in reader]
    except csv.Error as e:  # a NUL byte, an unclosed quote at the end, a cell over the limit
        raise DataError(f"{csv_path}, line {reader.line_num}: not valid CSV ({e}).") from e
    if not rows:
        raise DataError(f"{csv_path} lists no images: it has a header row and nothing else.")
    _refuse_repeats(csv_path, rows)
    return rows


def _row(csv_path: Path, line: int, record: dict, columns: dict[str, str]) -> CsvRow:
    extra = record.get(None)  # DictReader's place for cells past the header's columns
    if extra is not None and any(cell.strip() for cell in extra):  # empty ones: a sheet's edge
        cells = len(columns) + len(extra)
        raise DataError(
            f"{csv_path}, line {line}: {cells} cells, but the header names {len(columns)} "
            f"columns. A cell probably holds an unquoted comma (a file name such as "
            f'"photo, 2019.jpg"): put that cell in double quotes, or save the sheet again '
            f"as CSV, which quotes such cells."
        )
    # A column the header lacks (split) reads as empty: `record[None]` is the cells past it.
    named = {name: columns.get(name) for name in (*columns, "split")}
    cell = {name: (record.get(key) or "").strip() if key else "" for name, key in named.items()}
    return _parse_row(csv_path, line, cell)


def _read_text(csv_path: Path) -> str:
    try:
        return Path(csv_path).read_text(encoding="utf-8-sig")  # Excel writes a byte-order mark
    except UnicodeDecodeError as e:
        raise DataError(f"{csv_path} is not UTF-8 text ({e}); save it as CSV UTF-8.") from e
    except OSError as e:
        raise DataError(f"{csv_path} cannot be read ({e.strerror or e}).") from e


def _parse_row(csv_path: Path, line: int, cell: dict[str, str]) -> CsvRow:
    where = f"{csv_path}, line {line}"
    if not cell["path"]:
        raise DataError(f"{where}: the path is empty; give the image's file in the path column.")
    labels = tuple(
        dict.fromkeys(p.strip() for p in cell["labels"].split(LABEL_SEPARATOR) if p.strip())
    )
    if any("\n" in label or "\r" in label for label in labels):
        raise DataError(f"{where}: a label holds a line break; labels are one line each.")
    split = cell["split"].lower() or None
    if split is not None and split not in SPLITS:
        raise DataError(
            f"{where}: unknown split {cell['split']!r}; expected train, validation or test, or "
            f"an empty cell to let the stable rule choose."
        )
    return CsvRow(line, cell["path"], labels, split)


def _refuse_repeats(csv_path: Path, rows: list[CsvRow]) -> None:
    first_line: dict[str, int] = {}
    for row in rows:
        key = row.rule_key
        if key in first_line:
            raise DataError(
                f"{csv_path} lists {row.path} twice (lines {first_line[key]} and {row.line}); "
                f"give each image one row, with all its labels separated by "
                f"{LABEL_SEPARATOR!r}."
            )
        first_line[key] = row.line


def load_csv_dataset(
    csv_path: Path,
    validation_percentage: float = 10.0,
    testing_percentage: float = 10.0,
    *,
    show_progress: bool = True,
    warn=warn_on_stderr,
    strict: bool = False,
    whole: bool = False,
    multi_label: bool = False,
) -> Dataset:
    """The images a CSV file lists, cut into splits. Single-label (the default), each row gives
    one label and every label gets an image in every split, as a folder's classes do;
    `multi_label`, a row gives any number and labels are a [N, labels] 0/1 matrix. `whole`: every
    image in "train", unsplit (for `evaluate --split all`)."""
    csv_path = Path(csv_path).absolute()  # workers elsewhere read the same paths
    rows = read_rows(csv_path)
    if not multi_label:
        _require_one_label_each(csv_path, rows)
    names = sorted({label for row in rows for label in row.labels})
    if len(names) < (1 if multi_label else 2):
        raise DataError(
            f"{csv_path} gives {len(names)} label(s); a classifier needs at least 2 "
            f"(or one with --multi_label)."
        )
    paths = [csv_path.parent / row.rule_key for row in rows]  # an absolute path stays itself
    scanned = scan_files(paths, strict, show_progress, csv_path.parent)
    bad = [(path, reason) for path, reason in zip(paths, scanned) if isinstance(reason, str)]
    report_unreadable(str(csv_path), bad, strict, warn)
    kept = [
        (row, path, key) for row, path, key in zip(rows, paths, scanned) if isinstance(key, bytes)
    ]
    chosen = _assign_splits(kept, validation_percentage, testing_percentage, whole, multi_label)
    index = {name: i for i, name in enumerate(names)}
    total = sum(len(chosen[s]) for s in SPLITS)
    splits = {s: _split_of_rows(chosen[s], index, multi_label, total) for s in SPLITS}
    dataset = Dataset(csv_path.stem, names, splits, str(csv_path), multi_label=multi_label)
    _check_coverage(csv_path, dataset, whole, warn)
    return dataset


def _require_one_label_each(csv_path: Path, rows: list[CsvRow]) -> None:
    for row in rows:
        if len(row.labels) != 1:
            given = LABEL_SEPARATOR.join(row.labels) or "none"
            raise DataError(
                f"{csv_path}, line {row.line}: {row.path} has {len(row.labels)} labels "
                f"({given}); a single-label classifier needs exactly one per image: give the "
                f"row one label."
            )


Entry = tuple[CsvRow, Path, bytes]


def _assign_splits(
    kept: list[Entry], validation: float, testing: float, whole: bool, multi_label: bool
) -> dict[str, list[Entry]]:
    """The rows of each split, in file order: the split column where given, else the stable
    rule; single-label, a label's ruled rows also fill its empty splits, as a folder's class."""
    if whole:
        return {"train": list(kept), "validation": [], "test": []}
    ruled = {row.line: row.split or split_of(row.rule_key, validation, testing) for row, *_ in kept}
    if not multi_label:
        by_label: dict[str, list[CsvRow]] = {}
        for row, *_ in kept:
            by_label.setdefault(row.labels[0], []).append(row)
        for mine in by_label.values():
            by_split = {s: [] for s in SPLITS}
            for row in mine:
                if row.split is None:
                    by_split[ruled[row.line]].append((row.rule_key, row.line))
            fixed = {s: sum(row.split == s for row in mine) for s in SPLITS}
            give_every_split_one(by_split, fixed)
            ruled.update({line: s for s, items in by_split.items() for _, line in items})
    return {s: [entry for entry in kept if ruled[entry[0].line] == s] for s in SPLITS}


def _split_of_rows(
    entries: list[Entry], index: dict[str, int], multi_label: bool, dataset_size: int
) -> Split:
    images = FileImages(
        [e[1] for e in entries],
        [e[0].path for e in entries],
        [e[2] for e in entries],
        dataset_size=dataset_size,
    )
    if not multi_label:
        return Split(images, np.array([index[e[0].labels[0]] for e in entries], dtype=np.int64))
    targets = np.zeros((len(entries), len(index)), dtype=np.uint8)
    for i, (row, *_) in enumerate(entries):
        targets[i, [index[label] for label in row.labels]] = 1
    return Split(images, targets)


def _check_coverage(csv_path: Path, dataset: Dataset, whole: bool, warn) -> None:
    """Every label needs a training image; single-label, an image in every split too (as a
    folder's classes); multi-label, a label with no validation image keeps the threshold 0.5."""
    if whole:
        return
    needed = ("train",) if dataset.multi_label else SPLITS
    for split_name in needed:
        for label in dataset.labels_missing_from(split_name):
            raise DataError(
                f"Label {label!r} has no readable {split_name} image in {csv_path}. Every label "
                f"needs images for training"
                + ("" if dataset.multi_label else ", validation and testing (at least 3)")
                + f": add rows for it, give one of its rows split={split_name}, or remove it."
            )
    if dataset.multi_label:
        for label in dataset.labels_missing_from("validation"):
            warn(
                f"Label {label!r} has no validation image in {csv_path}: its threshold cannot be "
                f"chosen on validation and stays 0.5."
            )
