"""The trainers `retrain` can use, by name: the new layer alone (`new_layer`, the default), the
top blocks of the backbone with it (`fine_tune`, chosen by --fine_tune_blocks K > 0), or the whole
network on the images (`fine_tune_all`, --fine_tune_blocks all).

A trainer takes (bottlenecks, dataset, extractor, config, log, warn) and returns what it trained
(`head.TrainResult`: the layer, its best step and validation accuracy, and, when it changed the
features themselves, the test split's new features), which the score and export stages use.
"""

from __future__ import annotations

from typing import Callable

from poetslearn.errors import PoetslearnError
from poetslearn.train.fine_tuning import fine_tune
from poetslearn.train.fine_tuning_all import fine_tune_all
from poetslearn.train.head import TrainResult
from poetslearn.train.new_layer import train_new_layer

Trainer = Callable[..., TrainResult]
TRAINERS: dict[str, Trainer] = {"new_layer": train_new_layer, "fine_tune": fine_tune,
                                "fine_tune_all": fine_tune_all}


def trainer_for(config) -> Trainer:
    """--fine_tune_blocks chooses the trainer: 0 the configured one (the new layer), K the top K
    blocks on cached activations, 'all' the whole network on the images."""
    blocks = config.fine_tune_blocks
    name = "fine_tune_all" if blocks == "all" else "fine_tune" if blocks else config.trainer
    try:
        return TRAINERS[name]
    except KeyError:
        raise PoetslearnError(f"Unknown trainer {name!r}; expected one of "
                              f"{', '.join(TRAINERS)}.") from None
