"""The `poetslearn` command: a thin click layer over the library.

Options keep the codelab's spelling (`--image_dir`) and accept kebab-case (`--image-dir`).
Library errors (PoetslearnError) become `Error: ...` with exit code 1; misuse of options is
left to click (exit code 2). TensorFlow is imported only inside commands, so `--help` is instant.
"""

from __future__ import annotations

import click

from poetslearn import __version__
from poetslearn.cli.check import check
from poetslearn.cli.evaluate import evaluate
from poetslearn.cli.label import label
from poetslearn.cli.retrain import retrain


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="poetslearn")
def cli() -> None:
    """Transfer learning from the command line: retrain an ImageNet network's last layer on your
    images (or CIFAR-10) and label new images with the result."""


for command in (retrain, label, evaluate, check):
    cli.add_command(command)


def main() -> None:
    cli()
