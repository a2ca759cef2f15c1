"""The trainers `retrain` can use, by name: the new layer alone (`new_layer`, the default), the
top blocks of the backbone with it (`fine_tune`, chosen by --fine_tune_blocks K > 0), or the whole
network on the images (`fine_tune_all`, --fine_tune_blocks all).

A trainer takes (bottlenecks, dataset, extractor, config, backend, ctx), by those names (the
pipeline calls every stage by keyword): the run's extraction
backend computes whatever more it needs from the images (fine-tuning's activations), and `ctx`
is the run's `RunContext`. It returns what it trained
(`head.TrainResult`: the layer, its best step and validation accuracy, and, when it changed the
features themselves, the test split's new features), which the score and export stages use.
"""

from __future__ import annotations

from collections.abc import Callable

from poetslearn.config import RetrainConfig
from poetslearn.context import RunContext
from poetslearn.data.sources import Dataset
from poetslearn.errors import PoetslearnError
from poetslearn.extract.backends import ExtractionBackend
from poetslearn.extract.bottlenecks import Bottlenecks
from poetslearn.extract.extractor import FeatureExtractor
from poetslearn.train.fine_tuning.top_blocks import fine_tune
from poetslearn.train.fine_tuning.whole_network import fine_tune_all
from poetslearn.train.head import TrainResult
from poetslearn.train.new_layer import train_new_layer

Trainer = Callable[
    [Bottlenecks, Dataset, FeatureExtractor, RetrainConfig, ExtractionBackend | None, RunContext],
    TrainResult,
]
TRAINERS: dict[str, Trainer] = {
    "new_layer": train_new_layer,
    "fine_tune": fine_tune,
    "fine_tune_all": fine_tune_all,
}


def trainer_for(config) -> Trainer:
    """--fine_tune_blocks chooses the trainer: 0 the configured one (the new layer), K the top K
    blocks on cached activations, 'all' the whole network on the images."""
    blocks = config.fine_tune_blocks
    name = "fine_tune_all" if blocks == "all" else "fine_tune" if blocks else config.trainer
    try:
        return TRAINERS[name]
    except KeyError:
        raise PoetslearnError(
            f"Unknown trainer {name!r}; expected one of {', '.join(TRAINERS)}."
        ) from None
