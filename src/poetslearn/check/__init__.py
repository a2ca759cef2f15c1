"""`poetslearn check` as a library call: what is wrong with a data set, found from its
bottlenecks.

load data -> exact copies (content keys) -> bottlenecks (the cache `retrain` reads and fills:
only the missing ones are computed, and `retrain` then reuses them) -> nearest neighbours ->
near-copies, likely label errors (out-of-fold confident learning), outliers -> class balance
and unreadable files. Nothing here moves, deletes or rewrites a user's file: the outputs
(`check.outputs`, `check.report`) write only where they are told to.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from poetslearn.backbone.load import fetch_backbone
from poetslearn.check.finders import (
    class_counts,
    class_findings,
    copy_findings,
    label_error_findings,
    multi_label_findings,
    near_copy_findings,
    outlier_findings,
    unreadable_findings,
)
from poetslearn.check.findings import Finding
from poetslearn.check.label_errors import (
    DEFAULT_FOLDS,
    confident_label_issues,
    confident_multi_label_issues,
    fold_of_keys,
    out_of_fold_probabilities,
)
from poetslearn.check.looks import squares_of
from poetslearn.check.near_copies import DEFAULT_SIMILARITY, near_copy_groups
from poetslearn.check.neighbours import SEARCH_CHOICES, nearest_neighbours, unit_rows
from poetslearn.check.outliers import find_outliers, fit_class
from poetslearn.check.table import ImageTable
from poetslearn.config import RetrainConfig, check_settings
from poetslearn.context import RunContext, warn_on_stderr
from poetslearn.data.copies import exact_copies
from poetslearn.data.datasets import dataset_of
from poetslearn.data.image_scan import skipped_file
from poetslearn.data.sources import SPLITS
from poetslearn.errors import DataError
from poetslearn.extract.backends import extraction_backend_for
from poetslearn.extract.bottlenecks import (
    ExtractionStats,
    bottleneck_cache_for,
    compute_bottlenecks,
)
from poetslearn.extract.extractor import build_extractor
from poetslearn.progress import Timings
from poetslearn.train.head import HeadParams

NEIGHBOURS = 10  # per image: enough for near-copy groups, outliers and the report's pictures


@dataclass(frozen=True)
class CheckSettings:
    folds: int = DEFAULT_FOLDS
    near_copy_similarity: float = DEFAULT_SIMILARITY
    neighbour_search: str = "auto"  # a name of neighbours.SEARCH_CHOICES

    def check(self) -> None:
        if self.folds < 2:
            raise DataError(f"--folds must be 2 or more (got {self.folds}).")
        if self.neighbour_search not in SEARCH_CHOICES:
            raise DataError(
                f"--neighbour_search {self.neighbour_search!r}: expected one of "
                f"{', '.join(SEARCH_CHOICES)}."
            )
        if not 0.0 < self.near_copy_similarity <= 1.0:
            raise DataError(
                f"--near_copy_similarity must lie in (0, 1] (got {self.near_copy_similarity})."
            )


@dataclass
class CheckResult:
    table: ImageTable
    findings: list[Finding]
    counts: dict[str, int]  # images per class
    extraction: ExtractionStats
    architecture: str
    probabilities: np.ndarray  # [N, classes] out-of-fold, rows as the table's
    neighbour_search: str
    timings: dict[str, float] = field(default_factory=dict)


def _load(config: RetrainConfig, ctx: RunContext):
    """The data set, as retrain loads it, and the files it skipped as unreadable."""
    skipped: list[tuple[str, str]] = []

    def warn(message: str) -> None:
        found = skipped_file(message)
        if found:
            skipped.append(found)
        ctx.warn(message)

    dataset = dataset_of(config, show_progress=ctx.show_progress, warn=warn)
    ctx.log(f"Dataset {dataset.summary()} (from {dataset.source})")
    return dataset, skipped


def _bottlenecks(config: RetrainConfig, dataset, ctx: RunContext):
    """Every image's bottleneck from retrain's cache, the missing ones computed into it."""
    backbone = fetch_backbone(config, ctx)
    extractor = build_extractor(backbone=backbone, config=config, dataset=dataset, ctx=ctx)
    cache = bottleneck_cache_for(config, extractor, ctx.warn)
    vectors, splits, stats = compute_bottlenecks(
        dict(dataset.splits),
        extractor,
        cache,
        config.bottleneck_batch_size,
        ctx.show_progress,
        ctx.warn,
        extraction_backend_for(config),
    )
    ctx.log(stats.describe() + f" Cache: {cache.dir}")
    if stats.by_node:
        ctx.log(stats.by_node.describe("Vectors"))
    return vectors, splits, stats, extractor.arch.name


def _failed_in_extraction(dataset, splits) -> list[tuple[str, str]]:
    """The images that passed the scan but failed to decode when their bottleneck was made."""
    failed = []
    for s in SPLITS:
        kept = set(splits[s].images.keys())
        images = dataset.splits[s].images
        for i, key in enumerate(images.keys()):
            if key not in kept:
                where = images.file_path(i) or images.names[i]
                failed.append((str(where), "could not be decoded"))
    return failed


def _label_findings(table: ImageTable, neighbours, config, settings):
    """The label findings, and the out-of-fold probabilities they come from."""
    n_classes = len(table.dataset.class_names)
    params = HeadParams.from_config(config, steps=1)  # each fold chooses its own length
    probabilities = out_of_fold_probabilities(
        table.vectors,
        table.labels,
        n_classes,
        fold_of_keys(table.keys, settings.folds),
        params,
        table.dataset.multi_label,
    )
    if table.dataset.multi_label:
        issues = confident_multi_label_issues(probabilities, table.labels)
        return multi_label_findings(table, issues), probabilities
    issues = confident_label_issues(probabilities, table.labels)
    return label_error_findings(table, issues, neighbours), probabilities


def _fit_elsewhere(table: ImageTable, labelled: list[Finding], outliers) -> set[int]:
    """The likely label errors that lie among the images of the class the data suggests: in
    the wrong class, not off-topic, so not outliers of their class as well."""
    units, labels = unit_rows(table.vectors), table.labels
    index = {name: i for i, name in enumerate(table.dataset.class_names)}
    by_label: dict[int, list[int]] = {}
    for f in labelled:
        label = index.get(f.suggested) if f.kind == "label_error" else None
        if label in outliers.class_fences:
            by_label.setdefault(label, []).append(f.row)
    fits = set()
    for label, rows in by_label.items():
        rows = np.array(rows, np.int64)
        members = np.flatnonzero(labels == label)
        inside = fit_class(units, members, rows, outliers.class_fences[label], NEIGHBOURS)
        fits.update(rows[inside].tolist())
    return fits


def check_data(
    config: RetrainConfig,
    settings: CheckSettings = CheckSettings(),
    log=print,
    warn=warn_on_stderr,
) -> CheckResult:
    """Every finding about the data set `config` names, worst first within each kind."""
    ctx = RunContext(log, warn, config.show_progress)
    check_settings(config)
    settings.check()
    timings = Timings()
    with timings("total"):
        with timings("load_data"):
            dataset, skipped = _load(config, ctx)
        with timings("bottlenecks"):
            vectors, splits, stats, architecture = _bottlenecks(config, dataset, ctx)
        skipped += _failed_in_extraction(dataset, splits)
        table = ImageTable.pooled(dataset, splits, vectors)
        kept = replace(dataset, splits=splits)
        with timings("neighbours"):
            neighbours = nearest_neighbours(table.vectors, NEIGHBOURS, settings.neighbour_search)
        copies = exact_copies(kept)
        findings = copy_findings(table, copies)
        with timings("near_copies"):
            groups = near_copy_groups(
                neighbours,
                table.keys,
                lambda rows: squares_of(table.read_original, rows),
                settings.near_copy_similarity,
            )
        findings += near_copy_findings(table, groups, first_group=len(copies) + 1)
        with timings("label_errors"):
            labelled, probabilities = _label_findings(table, neighbours, config, settings)
        findings += labelled
        with timings("outliers"):
            outliers = find_outliers(
                neighbours,
                None if table.dataset.multi_label else table.labels,
                lambda rows: nearest_neighbours(
                    table.vectors[rows], NEIGHBOURS, settings.neighbour_search
                ),
            )
            fit_elsewhere = _fit_elsewhere(table, labelled, outliers)
        findings += outlier_findings(table, outliers, neighbours, fit_elsewhere)
        findings += unreadable_findings(skipped) + class_findings(table)
    return CheckResult(
        table,
        findings,
        class_counts(table),
        stats,
        architecture,
        probabilities,
        neighbours.search,
        dict(timings),
    )
