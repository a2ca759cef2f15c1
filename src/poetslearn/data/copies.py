"""Exact copies in a data set, from the content keys every loader already computes: images whose
bytes (files) or pixels (CIFAR-10) are equal, wherever they sit.

A copy in two splits leaks: the test image was seen in training, so the accuracy reported on it
is not what new photos get. A copy in two classes contradicts itself: one of its labels is
wrong. A copy twice in one class only weighs that image double. `retrain` warns about the first
two kinds in one line (`copies_warning`); `poetslearn check` lists every group.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from poetslearn.data.sources import SPLITS, Dataset

Member = tuple[str, int]  # (split, index in that split)


@dataclass(frozen=True)
class CopyGroup:
    """Two or more images with the same content key, in split order (train first)."""

    members: tuple[Member, ...]
    splits: frozenset[str]
    labels: frozenset  # class indices (single-label) or label tuples (multi-label)

    @property
    def across_splits(self) -> bool:
        return len(self.splits) > 1

    @property
    def across_classes(self) -> bool:
        return len(self.labels) > 1

    @property
    def kind(self) -> str:
        if self.across_classes:
            return "copy_across_classes"
        return "copy_across_splits" if self.across_splits else "copy_within_class"

    def leaked(self) -> list[Member]:
        """The members a held-out split holds while a copy sits in an earlier split (training
        before validation before test): the images whose scores are not those of new ones."""
        first = min(SPLITS.index(split) for split, _ in self.members)
        return [m for m in self.members if SPLITS.index(m[0]) > first]


def _label_of(labels: np.ndarray, index: int):
    row = labels[index]
    return tuple(np.flatnonzero(row).tolist()) if row.ndim else int(row)


def exact_copies(dataset: Dataset) -> list[CopyGroup]:
    """Every group of equal images, those across splits (leaks) first, then across classes
    (within one split), then the rest; the larger groups first within each."""
    by_key: dict[bytes, list[Member]] = defaultdict(list)
    for split in SPLITS:
        for index, key in enumerate(dataset.splits[split].images.keys()):
            by_key[key].append((split, index))
    groups = []
    for members in by_key.values():
        if len(members) < 2:
            continue
        labels = frozenset(_label_of(dataset.splits[s].labels, i) for s, i in members)
        groups.append(CopyGroup(tuple(members), frozenset(s for s, _ in members), labels))
    # The order of check's report (findings.KIND_ORDER), so group numbers read in page order.
    order = {"copy_across_splits": 0, "copy_across_classes": 1, "copy_within_class": 2}
    return sorted(groups, key=lambda g: (order[g.kind], -len(g.members), g.members))


def copies_warning(groups: list[CopyGroup]) -> str | None:
    """One line on the copies that make the reported accuracy wrong, or None when there are
    none (copies within one class and split are harmless enough to stay quiet about)."""
    leaked = sum(len(g.leaked()) for g in groups)
    across_classes = sum(1 for g in groups if g.across_classes)
    if not leaked and not across_classes:
        return None
    parts = []
    if leaked:
        parts.append(
            f"{leaked:,} validation/test image(s) have an exact copy in an earlier split, so "
            f"the accuracy reported on them is inflated"
        )
    if across_classes:
        parts.append(f"{across_classes:,} image(s) are copied into two or more classes")
    return (
        "Warning: " + "; ".join(parts) + ". `poetslearn check` with the same data options "
        "lists them and writes a CSV data set without them."
    )
