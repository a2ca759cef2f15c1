"""What `check` gives people and scripts: the summary, the JSON document, the CSV of every
finding, and a cleaned CSV data set (the `--data_csv` format) that leaves out what leaks and
what the user chose to drop. Only files the user named are written, each atomically; an input
file is never one of them."""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

from poetslearn.check.findings import KINDS, Finding, by_kind
from poetslearn.data.sources import SPLITS
from poetslearn.errors import DataError
from poetslearn.outputs import check_writable, write_atomic

FINDING_COLUMNS = ("kind", "score", "path", "split", "label", "suggested", "group", "detail")


def _where(result, finding: Finding) -> str:
    if finding.row is None:
        return finding.path or ""
    path = result.table.path(finding.row)
    return str(path) if path is not None else result.table.name(finding.row)


def finding_record(result, finding: Finding) -> dict:
    """One finding as plain values: the CSV's row and an entry of --json's findings."""
    table, row = result.table, finding.row
    return {
        "kind": finding.kind,
        "score": finding.score,
        "path": _where(result, finding),
        "split": table.split_of[row] if row is not None else "",
        "label": table.label_text(row) if row is not None else (finding.class_name or ""),
        "suggested": finding.suggested or "",
        "group": finding.group if finding.group is not None else "",
        "detail": finding.detail,
    }


def leaked_rows(result, kinds: tuple[str, ...] = ("copy_across_splits", "copy_across_classes")):
    """Rows of held-out images with a copy of `kinds` in an earlier split (train, then
    validation, then test): those whose scores are not those of new images."""
    table, leaked = result.table, set()
    for finding in result.findings:
        if finding.kind in kinds and finding.row is not None:
            own = SPLITS.index(table.split_of[finding.row])
            if any(SPLITS.index(table.split_of[r]) < own for r in finding.related):
                leaked.add(finding.row)
    return leaked


def _leak_line(result, kinds, what: str) -> str | None:
    rows = leaked_rows(result, kinds)
    if not rows:
        return None
    held = {s: sum(result.table.split_of[r] == s for r in rows) for s in ("validation", "test")}
    parts = [f"{n:,} {s}" for s, n in held.items() if n]
    return (
        f"{' and '.join(parts)} image(s) have {what} in an earlier split: the "
        f"{'test' if held['test'] else 'validation'} accuracy retrain reports is inflated."
    )


SURE = 0.9  # a label finding's score from which the summary counts it as sure


def _sureness(result, kind: str, findings) -> str:
    """For label findings: how many are sure, and how good the layer that judged them is (a
    weak network flags many images it merely gets wrong)."""
    if kind not in ("label_error", "label_wrong", "label_missing"):
        return ""
    sure = sum(f.score >= SURE for f in findings)
    judged = ""
    if kind == "label_error":
        right = result.probabilities.argmax(axis=1) == result.table.labels
        judged = f"; the judging layer's out-of-fold accuracy is {right.mean():.1%}"
    return f" ({sure:,} at score {SURE} or more{judged})"


def summary_lines(result) -> list[str]:
    table = result.table
    sizes = ", ".join(f"{s} {len(table.splits[s]):,}" for s in SPLITS)
    lines = [
        f"Checked {len(table):,} images in {len(result.counts)} classes ({sizes}) with "
        f"{result.architecture} bottlenecks."
    ]
    grouped = by_kind(result.findings)
    for kind, findings in grouped.items():
        groups = {f.group for f in findings if f.group is not None}
        count = f"{len(findings):,} {KINDS[kind].counted}"
        if groups:
            count += f" in {len(groups):,} group(s)"
        lines.append(
            f"  {KINDS[kind].title}: {count}{_sureness(result, kind, findings)}: "
            f"{KINDS[kind].meaning}."
        )
    for kinds, what in (
        (("copy_across_splits", "copy_across_classes"), "an exact copy"),
        (("near_copy",), "a near-copy"),
    ):
        line = _leak_line(result, kinds, what)
        if line:
            lines.append("  " + line)
    if not grouped:
        lines.append("  Found nothing to report.")
    counts = sorted(result.counts.values())
    if counts and counts[0] > 0 and counts[-1] / counts[0] >= 3:
        lines.append(
            f"  Classes are unbalanced: {counts[-1]:,} images in the largest, {counts[0]:,} in "
            f"the smallest."
        )
    return lines


def findings_csv(result) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, FINDING_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for findings in by_kind(result.findings).values():
        writer.writerows(finding_record(result, f) for f in findings)
    return out.getvalue().encode("utf-8")


@dataclass(frozen=True)
class DropRule:
    """--drop KIND[:MIN_SCORE]: leave out the images of findings of KIND scoring at least that."""

    kind: str
    min_score: float = 0.0

    @classmethod
    def parse(cls, text: str) -> DropRule:
        kind, _, score = text.partition(":")
        if kind not in KINDS or not KINDS[kind].per_image or kind == "unreadable":
            droppable = [k for k, v in KINDS.items() if v.per_image and k != "unreadable"]
            raise DataError(f"--drop {text}: unknown kind; expected one of {', '.join(droppable)}.")
        try:
            return cls(kind, float(score) if score else 0.0)
        except ValueError:
            raise DataError(
                f"--drop {text}: {score!r} is not a score (e.g. label_error:0.9)."
            ) from None


# Kinds whose groups hold one picture several times: dropping them keeps one of each group.
# (Copies in two classes are all dropped: which label is right, the data cannot say.)
KEEP_ONE_OF_GROUP = ("copy_across_splits", "copy_within_class", "near_copy")


def _kept_of_group(result, finding: Finding) -> int:
    """The member a group keeps: the first in split order (training first), then by row."""
    split_of = result.table.split_of
    return min([finding.row, *finding.related], key=lambda r: (SPLITS.index(split_of[r]), r))


def rows_to_drop(result, rules: list[DropRule]) -> set[int]:
    """Always the held-out exact copies of training images; and what the rules name (of a
    group of one picture, all but the member `_kept_of_group` chooses)."""
    drop = leaked_rows(result)
    for f in result.findings:
        if f.row is None or not any(f.kind == r.kind and f.score >= r.min_score for r in rules):
            continue
        if f.kind in KEEP_ONE_OF_GROUP and f.row == _kept_of_group(result, f):
            continue
        drop.add(f.row)
    return drop


NEEDS_FILES = (
    "--write_csv needs image files (--image_dir or --data_csv); CIFAR-10 is read from its "
    "archive, which a CSV file cannot point into."
)


def plan_outputs(
    findings: Path | None, write_csv: Path | None, report: Path | None, inputs: list, files: bool
) -> None:
    """Before any work: every output writable, none of them an input file, and a cleaned CSV
    only where there are image files to list (`files`)."""
    named = [p for p in (findings, write_csv) if p is not None]
    if report is not None:
        named.append(Path(report) / "index.html")
    for path in named:
        if any(Path(path).resolve() == Path(p).resolve() for p in inputs if p is not None):
            raise DataError(f"{path} is an input file; name a new file for check's output.")
    if write_csv is not None and not files:
        raise DataError(NEEDS_FILES)
    check_writable(named)


def cleaned_csv(result, destination: Path, rules: list[DropRule], inputs: list[Path]) -> int:
    """Writes the data set without the dropped images as a `--data_csv` file (paths relative to
    its folder where they can be, every row's split as it was); returns the rows left out."""
    destination = Path(destination)
    if any(destination.resolve() == Path(p).resolve() for p in inputs if p is not None):
        raise DataError(f"--write_csv {destination} is an input file; name a new file.")
    table = result.table
    if len(table) and table.path(0) is None:
        raise DataError(NEEDS_FILES)
    drop = rows_to_drop(result, rules)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["path", "labels", "split"])
    for row in range(len(table)):
        if row not in drop:
            writer.writerow(
                [
                    _relative(table.path(row), destination.parent),
                    table.label_text(row),
                    table.split_of[row],
                ]
            )
    write_atomic(destination, out.getvalue().encode("utf-8"))
    return len(drop)


def _relative(path: Path, folder: Path) -> str:
    try:
        return Path(os.path.relpath(path.absolute(), folder.absolute())).as_posix()
    except ValueError:  # another drive (Windows)
        return str(path.absolute())


def json_report(result, outputs: dict[str, str]) -> dict:
    grouped = by_kind(result.findings)
    return {
        "images": len(result.table),
        "splits": {s: len(result.table.splits[s]) for s in SPLITS},
        "classes": result.counts,
        "architecture": result.architecture,
        "counts": {kind: len(findings) for kind, findings in grouped.items()},
        "leaked": {
            "exact_copies": len(leaked_rows(result)),
            "near_copies": len(leaked_rows(result, ("near_copy",))),
        },
        "findings": [finding_record(result, f) for fs in grouped.values() for f in fs],
        "bottlenecks": {"cached": result.extraction.cached, "computed": result.extraction.computed},
        "outputs": outputs,
        "timings_s": {k: round(v, 3) for k, v in result.timings.items()},
    }
