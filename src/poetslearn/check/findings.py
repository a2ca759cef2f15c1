"""What `poetslearn check` finds, as one flat list of findings, and the kinds a finding can be.

Each kind is written down once, in KINDS: its title for people, and what it means for the
accuracy `retrain` reports. The summary, the CSV, the JSON and the HTML report all read this
registry, so a new kind of problem is one entry here and one finder beside the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Kind:
    title: str
    meaning: str  # what it does to the accuracy retrain reports, or to training
    per_image: bool = True  # False: a finding about a class, not an image
    counted: str = "image(s)"  # what the summary counts


KINDS = {
    "copy_across_splits": Kind(
        "Exact copies across splits",
        "a validation or test image has an exact copy in training: the accuracy reported on it "
        "is inflated",
    ),
    "copy_across_classes": Kind(
        "Exact copies in two classes",
        "the same image carries two labels: at least one is wrong, and training pulls both ways",
    ),
    "copy_within_class": Kind(
        "Exact copies within a class",
        "the image weighs double in training; harmless unless there are many",
    ),
    "near_copy": Kind(
        "Near-copies",
        "the same photo re-encoded, resized, cropped, mirrored or recoloured (or a burst); "
        "across splits they inflate the reported accuracy as exact copies do",
    ),
    "label_error": Kind(
        "Likely label errors",
        "the data says another class: training learns the wrong thing, and a wrong test label "
        "scores a right answer as a mistake",
    ),
    "label_wrong": Kind(
        "Labels likely wrong",
        "a label given that the data says the image does not have",
    ),
    "label_missing": Kind(
        "Labels likely missing",
        "a label the data says the image has, not given",
    ),
    "outlier": Kind(
        "Outliers",
        "unlike every other image (off-topic, blank, corrupt-looking): it teaches noise, and "
        "in the test split it scores a class it belongs to no more than any other",
    ),
    "unreadable": Kind(
        "Unreadable files",
        "retrain skips them: they are neither trained on nor tested",
        counted="file(s)",
    ),
    "tiny_class": Kind(
        "Small classes",
        "too few images to learn the class well or to measure it: its accuracy swings by "
        "whole images",
        per_image=False,
        counted="class(es)",
    ),
}

# The order of kinds in the summary, the report and the CSV: what falsifies the reported
# accuracy first.
KIND_ORDER = list(KINDS)


@dataclass
class Finding:
    kind: str
    score: float  # 0..1 per kind, higher is worse (see each finder)
    row: int | None = None  # the image, or None (unreadable files, classes)
    group: int | None = None  # copies: the group's number, shared by its members
    suggested: str | None = None  # the label the data suggests
    related: list[int] = field(default_factory=list)  # images to show beside it
    path: str | None = None  # where no image row exists (unreadable files)
    class_name: str | None = None  # a finding about a class (tiny_class)
    detail: str = ""  # one line for people: the reason, the class's counts

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown finding kind {self.kind!r}; known: {', '.join(KINDS)}")


def by_kind(findings: list[Finding]) -> dict[str, list[Finding]]:
    """The findings of each kind present, kinds in KIND_ORDER, each kind in the order its
    finder gave (worst first: each finder knows what is worst of its kind, e.g. near-copies
    across splits before closer ones within a split)."""
    grouped: dict[str, list[Finding]] = {}
    for kind in KIND_ORDER:
        mine = [f for f in findings if f.kind == kind]
        if mine:
            grouped[kind] = mine
    return grouped
