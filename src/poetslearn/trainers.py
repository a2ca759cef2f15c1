"""The trainers `retrain` can use, by name: the new layer alone (`new_layer`, the default), or
the top blocks of the backbone with it (`fine_tune`, chosen by --fine_tune_blocks K > 0).

A trainer takes (bottlenecks, dataset, extractor, config, log, warn) and returns what it trained
(`head.TrainResult`: the layer, its best step and validation accuracy, and, when it changed the
features themselves, the test split's new features), which the score and export stages use.
"""

from __future__ import annotations

from typing import Callable

from poetslearn.errors import PoetslearnError
from poetslearn.fine_tuning import fine_tune
from poetslearn.head import TrainResult
from poetslearn.training import train_new_layer

Trainer = Callable[..., TrainResult]
TRAINERS: dict[str, Trainer] = {"new_layer": train_new_layer, "fine_tune": fine_tune}


def trainer_for(config) -> Trainer:
    name = "fine_tune" if config.fine_tune_blocks else config.trainer
    try:
        return TRAINERS[name]
    except KeyError:
        raise PoetslearnError(f"Unknown trainer {name!r}; expected one of "
                              f"{', '.join(TRAINERS)}.") from None
