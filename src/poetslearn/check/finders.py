"""From what the check computed to findings, one finder per kind of problem; each returns a
list of `Finding`s and knows nothing of the others."""

from __future__ import annotations

from collections import Counter

import numpy as np

from poetslearn.check.findings import Finding
from poetslearn.check.label_errors import LabelIssues, MultiLabelIssues
from poetslearn.check.near_copies import NearCopyGroup
from poetslearn.check.neighbours import Neighbours
from poetslearn.check.outliers import Outliers
from poetslearn.check.table import ImageTable
from poetslearn.data.copies import CopyGroup

# Fewer images than this in a class: too few to learn it or to measure it.
TINY_CLASS = 20
SHOWN_NEIGHBOURS = 4


def copy_findings(table: ImageTable, groups: list[CopyGroup]) -> list[Finding]:
    """One finding per member of each exact-copy group, the group's number shared."""
    findings = []
    for number, group in enumerate(groups, start=1):
        rows = [table.row_of(split, index) for split, index in group.members]
        for row in rows:
            findings.append(
                Finding(
                    group.kind,
                    1.0,
                    row,
                    group=number,
                    related=[r for r in rows if r != row],
                    detail=f"{len(rows)} copies in {', '.join(sorted(group.splits))}",
                )
            )
    return findings


def near_copy_findings(
    table: ImageTable, groups: list[NearCopyGroup], first_group: int
) -> list[Finding]:
    """Groups across splits or classes first, then the closest; each member a finding."""

    def crosses(group: NearCopyGroup) -> bool:
        return len({table.split_of[r] for r in group.rows}) > 1 or (
            len({table.label_text(r) for r in group.rows}) > 1
        )

    ordered = sorted(groups, key=lambda g: (not crosses(g), -g.similarity))
    findings = []
    for number, group in enumerate(ordered, start=first_group):
        splits = sorted({table.split_of[r] for r in group.rows})
        across_classes = len({table.label_text(r) for r in group.rows}) > 1
        for row in group.rows:
            findings.append(
                Finding(
                    "near_copy",
                    round(group.similarity, 4),
                    row,
                    group=number,
                    related=[r for r in group.rows if r != row],
                    detail=f"{len(group.rows)} near-copies in {', '.join(splits)}"
                    + (", across classes" if across_classes else ""),
                )
            )
    return findings


def _like(neighbours: Neighbours, labels: np.ndarray, row: int, wanted: int) -> list[int]:
    """Up to SHOWN_NEIGHBOURS of the row's nearest images labelled `wanted`."""
    near = [int(r) for r in neighbours.indices[row] if labels[r] == wanted]
    return near[:SHOWN_NEIGHBOURS]


def label_error_findings(
    table: ImageTable, issues: LabelIssues, neighbours: Neighbours
) -> list[Finding]:
    labels, names = table.labels, table.dataset.class_names
    return [
        Finding(
            "label_error",
            round(float(score), 4),
            int(row),
            suggested=names[int(suggested)],
            related=_like(neighbours, labels, int(row), int(suggested)),
            detail=f"given {names[int(labels[row])]!r}, the data says {names[int(suggested)]!r}",
        )
        for row, suggested, score in zip(issues.rows, issues.suggested, issues.scores)
    ]


def multi_label_findings(table: ImageTable, issues: MultiLabelIssues) -> list[Finding]:
    names = table.dataset.class_names
    findings = [
        Finding("label_wrong", round(s, 4), r, detail=f"{names[label]!r} given, likely absent")
        for r, label, s in issues.wrong
    ]
    findings += [
        Finding(
            "label_missing",
            round(s, 4),
            r,
            suggested=names[label],
            detail=f"{names[label]!r} likely present, not given",
        )
        for r, label, s in issues.missing
    ]
    return findings


def outlier_findings(
    table: ImageTable, outliers: Outliers, neighbours: Neighbours, explained: set[int]
) -> list[Finding]:
    """`explained`: rows found to be in the wrong class, lying among the images of the class
    the data suggests; unlike their own class for that reason, they are not also called
    outliers of it (unlike the whole data set, they would be)."""
    return [
        Finding(
            "outlier",
            round(float(score), 4),
            int(row),
            related=[int(r) for r in neighbours.indices[row][:SHOWN_NEIGHBOURS]],
            detail=f"unlike the rest of {within}: odder than {score:.1%} of it",
        )
        for row, score, within in zip(outliers.rows, outliers.scores, outliers.within)
        if not (within == "its class" and int(row) in explained)
    ]


def unreadable_findings(skipped: list[tuple[str, str]]) -> list[Finding]:
    return [Finding("unreadable", 1.0, path=path, detail=reason) for path, reason in skipped]


def class_findings(table: ImageTable) -> list[Finding]:
    """Classes with fewer than TINY_CLASS images; the score grows as the class shrinks."""
    small = sorted((count, name) for name, count in class_counts(table).items())
    return [
        Finding(
            "tiny_class",
            round(1.0 - count / TINY_CLASS, 4),
            class_name=name,
            detail=f"{count} image(s); {TINY_CLASS} or more learn and measure a class better",
        )
        for count, name in small
        if count < TINY_CLASS
    ]


def class_counts(table: ImageTable) -> dict[str, int]:
    labels = table.labels
    names = table.dataset.class_names
    if table.dataset.multi_label:
        return {name: int(labels[:, i].sum()) for i, name in enumerate(names)}
    counted = Counter(labels.tolist())
    return {name: counted.get(i, 0) for i, name in enumerate(names)}
