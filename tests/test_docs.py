"""Every CLI option is documented in the README and has help text (sqlite-utils' test_docs)."""

from __future__ import annotations

import re

import pytest

from helpers import REPO_ROOT
from poetslearn.cli.main import cli

README = (REPO_ROOT / "README.md").read_text()


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_option_is_in_the_readme_with_help(command):
    assert f"poetslearn {command}" in README
    for param in cli.commands[command].params:
        if param.param_type_name != "option":
            continue
        first = param.opts[0]
        assert param.help, f"{command} {first} has no help text"
        assert re.search(rf"`{re.escape(first)}[`/,]", README), f"{command} {first} not in README"


def test_readme_gives_the_test_command_ci_runs():
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert ".venv/bin/python -m pytest" in README and ".venv/bin/python -m pytest" in ci
    assert 'pip install -e ".[test]"' in README and '-e ".[test]"' in ci
