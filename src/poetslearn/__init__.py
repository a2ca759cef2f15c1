"""poetslearn: transfer learning from the command line (the successor of TensorFlow for Poets).

The public API (see docs/api.md); everything else may move. Names are imported when first used,
so `import poetslearn` (and `poetslearn --help`) stays instant:

    from poetslearn import RetrainConfig, retrain, LabelConfig, load_classifier
"""

from __future__ import annotations

import importlib

__version__ = "0.5.0"

# Public name -> the module that defines it.
_PUBLIC = {
    "retrain": "poetslearn.pipeline",
    "retrain_within": "poetslearn.budget.run",
    "parse_duration": "poetslearn.budget.duration",
    "RetrainResult": "poetslearn.pipeline",
    "RetrainConfig": "poetslearn.config",
    "LabelConfig": "poetslearn.config",
    "RunContext": "poetslearn.context",
    "load_classifier": "poetslearn.inference.label",
    "Prediction": "poetslearn.inference.predictions",
    "evaluate_split": "poetslearn.inference.evaluate",
    "Evaluation": "poetslearn.inference.evaluate",
    "load_dataset": "poetslearn.data.datasets",
    "check_data": "poetslearn.check",
    "CheckSettings": "poetslearn.check",
    "CheckResult": "poetslearn.check",
    "PoetslearnError": "poetslearn.errors",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'poetslearn' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value  # once imported, an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})
