"""The `poetslearn` command: click commands that turn flags into a config and library errors
into `Error: ...` (exit 1). `main` is the console script."""

from poetslearn.cli.main import cli, main

__all__ = ["cli", "main"]
