"""The options that name the labelled images a command reads, shared by `retrain` and
`evaluate`: CIFAR-10, a folder of class sub-folders, or a CSV file; and the check that only one
of them is given."""

from __future__ import annotations

from pathlib import Path

import click

from poetslearn.cli.common import RETRAIN, PathType, option


def data_source_options(verb: str) -> list:
    """--dataset, --image_dir, --data_csv and --data_dir, their help starting with `verb`."""
    return [
        option(
            "dataset",
            type=click.Choice(["cifar10"]),
            default=None,
            help=f"{verb} on CIFAR-10 (the default when neither --image_dir nor --data_csv is "
            f"given).",
        ),
        option(
            "image_dir",
            type=click.Path(exists=True, file_okay=False, path_type=Path),
            help="Folder with one sub-folder of images per class; the sub-folder name is the "
            "label.",
        ),
        option(
            "data_csv",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="CSV file describing the images: a header row, a 'path' column (relative to "
            "the CSV's folder, or absolute), a 'labels' column (labels separated by ';') and an "
            "optional 'split' column (train, validation, test; empty: the stable rule folders "
            "use).",
        ),
        option(
            "data_dir",
            type=PathType,
            default=RETRAIN.data_dir,
            show_default=True,
            envvar="POETSLEARN_DATA_DIR",
            help="Where cifar-10-python.tar.gz (or its extracted cifar-10-batches-py/) is, or "
            "is downloaded to. [env: POETSLEARN_DATA_DIR]",
        ),
    ]


def check_one_data_source(dataset: str | None, image_dir: Path | None, data_csv: Path | None):
    """--dataset, --image_dir and --data_csv each name the images; two of them is misuse."""
    named = {"--dataset": dataset, "--image_dir": image_dir, "--data_csv": data_csv}
    given = [flag for flag, value in named.items() if value]
    if len(given) > 1:
        raise click.UsageError(
            f"Give one of --dataset cifar10, --image_dir or --data_csv; got {' and '.join(given)}."
        )
