"""What every `poetslearn` command shares: option spelling, defaults, and how errors are shown.

Library errors (PoetslearnError, and the OSError of a failed read or write) become `Error: ...`
with exit code 1, in `library_errors` and nowhere else; misuse of options is left to click (exit
code 2).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from poetslearn import quiet
from poetslearn.config import LabelConfig, RetrainConfig
from poetslearn.errors import PoetslearnError
from poetslearn.outputs import describe_os_error

RETRAIN = RetrainConfig()
LABEL = LabelConfig()
PathType = click.Path(path_type=Path)


def option(name: str, *args, **kwargs):
    """A click option reachable as --snake_case and --kebab-case, stored under `name`."""
    spellings = [f"--{name}"]
    if "_" in name:
        spellings.append(f"--{name.replace('_', '-')}")
    return click.option(*spellings, *args, name, **kwargs)


class BlockCount(click.ParamType):
    """--fine_tune_blocks, --bottleneck_blocks: a number of blocks, or 'all'."""

    name = "N|all"

    def convert(self, value, param, ctx):
        if isinstance(value, int) or value == "all":
            return value
        try:
            return int(value)
        except ValueError:
            self.fail(f"{value!r} is neither a number of blocks nor 'all'.", param, ctx)


def retrain_setting(name: str, **kwargs):
    """An option whose type and default come from RetrainConfig: one source of defaults."""
    default = getattr(RETRAIN, name)
    return option(name, type=type(default), default=default, show_default=True, **kwargs)


def ruled_setting(name: str, kind: type, help_text: str):
    """An option that, when not given, a rule of the data or network chooses (train.schedule);
    its value is checked with the other settings, so the errors are the library's."""
    return option(name, type=kind, default=None, help=help_text)


@contextmanager
def library_errors(after_os_error: str = "") -> Iterator[None]:
    """Shows library errors as `Error: ...` (exit code 1). `after_os_error` says what a failed
    read or write left as it was, where the command can promise it."""
    try:
        yield
    except PoetslearnError as e:
        raise click.ClickException(str(e)) from e
    except OSError as e:  # disk full, permissions, a file vanishing
        raise click.ClickException(describe_os_error(e, after_os_error)) from e


def verbose_option(function):
    """--verbose: let TensorFlow's and LiteRT's own log lines through (hidden by default)."""
    return click.option(
        "--verbose", is_flag=True, help="Also show TensorFlow's and LiteRT's own log lines."
    )(function)


def start_command(verbose: bool) -> None:
    """Settles what may reach stderr. TensorFlow itself is imported later, by the first stage
    that needs it (through `quiet.import_tensorflow`): importing it before CIFAR-10 is read
    would add the archive's 180 MB to the run's peak memory."""
    quiet.configure(verbose)


def echo_err(message: str) -> None:
    click.echo(message, err=True)


def with_options(options: list):
    """Applies a list of options to a command, in `--help` order (as stacked decorators would)."""

    def decorate(function):
        for add in reversed(options):
            function = add(function)
        return function

    return decorate
