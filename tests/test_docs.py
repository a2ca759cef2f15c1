"""The docs: every option in the generated reference (and that file up to date), help text on
every option, a README a newcomer reads in minutes that gives the commands CI runs, and links
that lead somewhere."""

from __future__ import annotations

import ast
import importlib.util
import re

import pytest

import poetslearn
from helpers import REPO_ROOT
from poetslearn.cli.main import cli

README = (REPO_ROOT / "README.md").read_text()
REFERENCE = (REPO_ROOT / "docs" / "reference.md").read_text()


def _make_reference():
    spec = importlib.util.spec_from_file_location(
        "make_reference", REPO_ROOT / "scripts" / "make_reference.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_option_reference_is_generated_from_the_commands_and_up_to_date():
    assert _make_reference().render() == REFERENCE, (
        "docs/reference.md is out of date: run `python scripts/make_reference.py`"
    )


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_option_is_in_the_reference_with_help(command):
    assert f"## `poetslearn {command}`" in REFERENCE
    section = REFERENCE.split(f"## `poetslearn {command}`")[1].split("\n## ")[0]
    for param in cli.commands[command].params:
        if param.param_type_name != "option":
            continue
        first = param.opts[0]
        assert param.help, f"{command} {first} has no help text"
        assert f"| `{first}`" in section, f"{command} {first} not in docs/reference.md"


def test_readme_gives_the_test_command_ci_runs():
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert ".venv/bin/python -m pytest" in README and ".venv/bin/python -m pytest" in ci
    assert 'pip install -e ".[test]"' in README and '-e ".[test]"' in ci
    assert "ruff check" in ci and "ruff format --check" in ci


def test_readme_is_short_and_names_every_command():
    assert len(README.splitlines()) <= 220
    for command in cli.commands:
        assert f"poetslearn {command}" in README


PAGES = ["README.md", *sorted(f"docs/{p.name}" for p in (REPO_ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("page", PAGES)
def test_every_local_link_leads_to_a_file(page):
    path = REPO_ROOT / page
    prose = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)  # code is not links
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", prose):
        if target.startswith(("http://", "https://")):
            continue
        assert (path.parent / target).exists(), f"{page} links to {target}, which does not exist"


def test_the_readmes_python_example_uses_the_public_api():
    code = README.split("```python\n")[1].split("```")[0]
    tree = ast.parse(code)
    imported = {
        a.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for a in node.names
        if node.module == "poetslearn"
    }
    assert imported and imported <= set(poetslearn.__all__), imported - set(poetslearn.__all__)
    for name in imported:
        assert getattr(poetslearn, name) is not None


def test_the_readmes_python_example_runs(tmp_path, monkeypatch, capsys):
    """The example as written, on a tiny network with random weights instead of ImageNet's."""
    from PIL import Image

    from helpers import COLOURS, make_colour_folder, noisy_colour

    code = README.split("```python\n")[1].split("```")[0]
    tiny = 'architecture="test_tiny", weights="none", how_many_training_steps=100'
    assert 'architecture="mobilenet_0.50_224"' in code
    code = code.replace('architecture="mobilenet_0.50_224"', tiny)
    monkeypatch.chdir(tmp_path)
    make_colour_folder(tmp_path / "flower_photos")
    Image.fromarray(noisy_colour(COLOURS["red"], seed=9)).save(tmp_path / "my_rose.jpg")
    exec(compile(code, "README.md", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert printed[-3].startswith("red ")  # three predictions, the red class first


def test_the_version_is_written_once_and_the_changelog_has_it():
    import importlib.metadata

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert importlib.metadata.version("poetslearn") == poetslearn.__version__
    changelog = (REPO_ROOT / "CHANGELOG.md").read_text()
    assert f"## {poetslearn.__version__} (" in changelog


def test_the_licence_file_is_the_one_pyproject_names():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    text = (REPO_ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
