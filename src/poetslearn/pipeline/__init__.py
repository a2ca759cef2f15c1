"""`retrain` as a library call: a pipeline of named stages, each in the module of its concept.

check settings -> plan outputs -> load data -> fetch backbone -> build extractor -> get or create
bottlenecks -> train -> score on test -> accuracy gate -> export.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from poetslearn.backbone.load import fetch_backbone
from poetslearn.backbone.weights import WeightsInfo
from poetslearn.clock import Clock
from poetslearn.config import RetrainConfig, check_settings
from poetslearn.context import RunContext, warn_on_stderr
from poetslearn.data.copies import copies_warning, exact_copies
from poetslearn.data.datasets import dataset_of
from poetslearn.data.sources import Dataset
from poetslearn.export.stage import export_everything, plan_outputs
from poetslearn.extract.backends import extraction_backend_for
from poetslearn.extract.bottlenecks import ExtractionStats, get_or_create_bottlenecks
from poetslearn.extract.extractor import FeatureExtractor, build_extractor
from poetslearn.memory import return_freed_memory
from poetslearn.pipeline.scoring import TestScore, check_accuracy, score_on_test
from poetslearn.progress import Timings
from poetslearn.train.head import TrainResult
from poetslearn.train.trainers import trainer_for


@dataclass
class RetrainResult:
    dataset: Dataset
    extractor: FeatureExtractor
    weights: WeightsInfo
    extraction: ExtractionStats
    trained: TrainResult
    score: TestScore
    outputs: dict[str, Path]
    timings: dict[str, float] = field(default_factory=dict)
    plan: dict | None = None  # --time_budget: what was planned and why

    @property
    def misclassified(self) -> list[tuple[str, str, str]]:
        """(image name, true label, predicted label) of each test mistake."""
        return self.score.evaluation.misclassified()


def _settings_and_data(config: RetrainConfig, ctx: RunContext, dataset: Dataset | None):
    """The first stages: the settings checked, the trainer and backend resolved, the outputs
    planned (all before any work), then the data set loaded (unless the caller has it)."""
    check_settings(config)
    train, backend = trainer_for(config), extraction_backend_for(config)
    plan_outputs(config)
    if dataset is None:
        dataset = load_data(config, ctx)
    return train, backend, dataset


def load_data(config: RetrainConfig, ctx: RunContext) -> Dataset:
    """The data set `config` names, announced, with a warning for exact copies across splits."""
    dataset = dataset_of(config, show_progress=ctx.show_progress, warn=ctx.warn)
    ctx.log(f"Dataset {dataset.summary()} (from {dataset.source})")
    copies = copies_warning(exact_copies(dataset))
    if copies:
        ctx.warn(copies)
    return dataset


def _scored(trained, bottlenecks, dataset, extractor, config, ctx) -> TestScore:
    """The test split scored and the accuracy gate applied; every vector freed after."""
    score = score_on_test(
        trained=trained, bottlenecks=bottlenecks, dataset=dataset, config=config, ctx=ctx
    )
    if extractor.accuracy_caveat():
        ctx.log(extractor.accuracy_caveat())
    # Every vector is done with; freed, they make room for building the export (about
    # 500 MB for Inception V3's graph), which keeps a full CIFAR-10 run's peak lower.
    bottlenecks.release()
    return_freed_memory()
    check_accuracy(score, config.assert_accuracy_at_least)
    return score


def retrain(
    config: RetrainConfig,
    log=print,
    warn=warn_on_stderr,
    clock: Clock | None = None,
    dataset: Dataset | None = None,
) -> RetrainResult:
    """Runs the whole pipeline; `log` gets progress lines, `warn` gets warnings. With a `clock`
    (--time_budget) training ends by its deadline; `dataset`: one loaded already."""
    ctx = RunContext(log, warn, config.show_progress, clock)
    timings = Timings(clock)
    with timings("total"):
        with timings("load_data"):
            train, backend, dataset = _settings_and_data(config, ctx, dataset)
        with timings("build_model"):
            backbone = fetch_backbone(config, ctx)
            extractor = build_extractor(backbone=backbone, config=config, dataset=dataset, ctx=ctx)
        with timings("bottlenecks"):
            bottlenecks = get_or_create_bottlenecks(
                dataset=dataset, extractor=extractor, config=config, backend=backend, ctx=ctx
            )
        with timings("train_head"):
            trained = train(
                bottlenecks=bottlenecks,
                dataset=dataset,
                extractor=extractor,
                config=config,
                backend=backend,
                ctx=ctx,
            )
        timings.update(trained.stage_seconds)  # a trainer of several parts: each one's time
        score = _scored(trained, bottlenecks, dataset, extractor, config, ctx)
        with timings("export"):
            outputs = export_everything(
                extractor=extractor,
                trained=trained,
                dataset=dataset,
                splits=bottlenecks.splits,
                weights=backbone.weights,
                score=score,
                config=config,
            )
    return RetrainResult(
        dataset,
        extractor,
        backbone.weights,
        bottlenecks.stats,
        trained,
        score,
        outputs,
        timings,
        config.plan,
    )
