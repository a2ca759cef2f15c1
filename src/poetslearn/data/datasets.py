"""Which labelled images a command works on: a CSV file, a folder of class sub-folders or
CIFAR-10.

The loaders live beside this file, one module each (`csv_table`, `image_folder`, `cifar10`); the
types they return (image sources, splits, datasets) in `sources`.
"""

from __future__ import annotations

from pathlib import Path

from poetslearn.config import RetrainConfig
from poetslearn.context import warn_on_stderr
from poetslearn.data.cifar10 import load_cifar10
from poetslearn.data.csv_table import load_csv_dataset
from poetslearn.data.image_folder import load_image_folder
from poetslearn.data.sources import SPLITS, Dataset, Split
from poetslearn.errors import DataError


def load_dataset(
    image_dir: Path | None,
    data_dir: Path,
    validation_percentage: float,
    testing_percentage: float,
    *,
    show_progress: bool = True,
    warn=warn_on_stderr,
    strict: bool = False,
    whole: bool = False,
    data_csv: Path | None = None,
    multi_label: bool = False,
) -> Dataset:
    """The CSV file's images when one is given, else the image folder's, else CIFAR-10
    (downloaded into `data_dir` if absent); `whole`: a CSV's or folder's images unsplit, all in
    "train" (CIFAR-10's splits are its own). `multi_label` needs a CSV: folders and CIFAR-10
    give one label per image."""
    if data_csv is not None:
        return load_csv_dataset(
            data_csv,
            validation_percentage,
            testing_percentage,
            show_progress=show_progress,
            warn=warn,
            strict=strict,
            whole=whole,
            multi_label=multi_label,
        )
    if multi_label:
        raise DataError(
            "--multi_label needs --data_csv: a folder of class sub-folders and CIFAR-10 give "
            "one label per image. Describe the images and their labels in a CSV file."
        )
    if image_dir is not None:
        return load_image_folder(
            image_dir,
            validation_percentage,
            testing_percentage,
            show_progress=show_progress,
            warn=warn,
            strict=strict,
            whole=whole,
        )
    return load_cifar10(data_dir, validation_percentage, show_progress=show_progress)


def dataset_of(config: RetrainConfig, *, show_progress: bool = True, warn=warn_on_stderr):
    """The data set a `retrain` or `check` configuration names, cut as retrain cuts it."""
    return load_dataset(
        config.image_dir,
        config.data_dir,
        config.validation_percentage,
        config.testing_percentage,
        show_progress=show_progress,
        warn=warn,
        strict=config.strict,
        data_csv=config.data_csv,
        multi_label=config.multi_label,
    )


def load_split_to_evaluate(
    image_dir: Path | None,
    data_dir: Path,
    split: str,
    recorded: dict,
    show_progress: bool = True,
    warn=warn_on_stderr,
    data_csv: Path | None = None,
) -> tuple[Dataset, Split]:
    """The data set and the split ("test", "validation", "train" or "all") to evaluate on, cut
    with the percentages recorded in the graph's metadata so "test" is retrain's test split
    (and read as multi-label when the model was trained so)."""
    validation = recorded.get("validation_percentage", RetrainConfig.validation_percentage)
    testing = recorded.get("testing_percentage", RetrainConfig.testing_percentage)
    whole = split == "all"  # no split to cut: a class of one photo is fine
    multi_label = bool(recorded.get("multi_label", False))
    data = load_dataset(
        image_dir,
        data_dir,
        validation,
        testing,
        show_progress=show_progress,
        warn=warn,
        whole=whole,
        data_csv=data_csv,
        multi_label=multi_label,
    )
    if whole:
        return data, Split.concatenate([data.splits[name] for name in SPLITS])
    return data, data.splits[split]
