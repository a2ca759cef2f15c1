"""Which labelled images a command works on: CIFAR-10 or a folder of class sub-folders.

The loaders live beside this file, one module each (`cifar10`, `image_folder`); the types they
return (image sources, splits, datasets) in `sources`.
"""

from __future__ import annotations

from pathlib import Path

from poetslearn.config import RetrainConfig
from poetslearn.data.cifar10 import load_cifar10
from poetslearn.data.image_folder import load_image_folder
from poetslearn.data.sources import SPLITS, Dataset, Split


def load_dataset(
    image_dir: Path | None,
    data_dir: Path,
    validation_percentage: float,
    testing_percentage: float,
    show_progress: bool = True,
    warn=print,
    strict: bool = False,
    whole: bool = False,
) -> Dataset:
    """The image folder when one is given, else CIFAR-10 (downloaded into `data_dir` if absent);
    `whole`: a folder's images unsplit, all in "train" (CIFAR-10's splits are its own)."""
    if image_dir is not None:
        return load_image_folder(
            image_dir, validation_percentage, testing_percentage, show_progress, warn, strict, whole
        )
    return load_cifar10(data_dir, validation_percentage, show_progress=show_progress)


def load_split_to_evaluate(
    image_dir: Path | None,
    data_dir: Path,
    split: str,
    recorded: dict,
    show_progress: bool = True,
    warn=print,
) -> tuple[Dataset, Split]:
    """The data set and the split ("test", "validation", "train" or "all") to evaluate on, cut
    with the percentages recorded in the graph's metadata so "test" is retrain's test split."""
    validation = recorded.get("validation_percentage", RetrainConfig.validation_percentage)
    testing = recorded.get("testing_percentage", RetrainConfig.testing_percentage)
    whole = split == "all"  # no split to cut: a class of one photo is fine
    data = load_dataset(image_dir, data_dir, validation, testing, show_progress, warn, whole=whole)
    if whole:
        return data, Split.concatenate([data.splits[name] for name in SPLITS])
    return data, data.splits[split]
