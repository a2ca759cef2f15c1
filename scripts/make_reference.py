"""Writes docs/reference.md, the full option reference, from the click commands themselves, so
the reference and `--help` can never disagree. `tests/test_docs.py` fails when the file is stale.

    python scripts/make_reference.py            # rewrite docs/reference.md
    python scripts/make_reference.py --check    # exit 1 when it is out of date
"""

from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path

import click

from poetslearn.cli.main import cli

REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "reference.md"
HEADER = """# Option reference

Generated from the commands themselves by `python scripts/make_reference.py`; do not edit by hand.
Every option accepts the codelab's spelling (`--image_dir`) and kebab-case (`--image-dir`).
Exit codes: 0 success, 1 `Error: ...` (something to fix: the message says what), 2 usage error,
130 interrupted (Ctrl-C or SIGTERM; what was computed so far is kept).
"""


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _default(param: click.Parameter) -> str:
    if param.is_flag if isinstance(param, click.Option) else False:
        return "off"
    if param.default is None or param.default == () or not getattr(param, "show_default", True):
        return ""
    return f"`{param.default}`"


def _help_markdown(text: str) -> str:
    """A command's docstring as Markdown: click's `\\b` blocks (examples) become code blocks."""
    paragraphs = inspect.cleandoc(text).split("\n\n")
    out = []
    for paragraph in paragraphs:
        if paragraph.startswith("\b\n"):
            title, *code = paragraph[2:].splitlines()
            out.append(f"{title}\n\n```\n" + "\n".join(line.strip() for line in code) + "\n```")
        else:
            out.append(" ".join(paragraph.split()))
    return "\n\n".join(out)


def _kind(param: click.Parameter) -> str:
    if isinstance(param.type, (click.IntRange, click.FloatRange)):
        low, high = param.type.min, param.type.max
        bounds = [f">= {low}" if low is not None else "", f"<= {high}" if high is not None else ""]
        return f"{'integer' if isinstance(param.type, click.IntRange) else 'number'} " + " ".join(
            b for b in bounds if b
        )
    if isinstance(param.type, click.Choice):
        return " \\| ".join(f"`{c}`" for c in param.type.choices)
    if isinstance(param, click.Option) and param.is_flag:
        return "flag"
    return param.type.name.lower()


def describe_command(name: str, command: click.Command) -> list[str]:
    ctx = click.Context(command, info_name=f"poetslearn {name}")
    help_text = _help_markdown(command.help or "")
    lines = [
        f"## `poetslearn {name}`",
        "",
        "```",
        command.get_usage(ctx),
        "```",
        "",
        help_text.strip(),
        "",
        "| option | takes | default | what it does |",
        "|---|---|---|---|",
    ]
    for param in command.params:
        if not isinstance(param, click.Option) or param.hidden:
            continue
        spellings = ", ".join(f"`{o}`" for o in param.opts + param.secondary_opts)
        help_cell = _cell(param.help or "")
        if param.envvar:
            help_cell += f" (env: `{param.envvar}`)" if "[env:" not in help_cell else ""
        lines.append(f"| {spellings} | {_kind(param)} | {_default(param)} | {help_cell} |")
    return lines + [""]


def render() -> str:
    lines = [HEADER]
    for name in sorted(cli.commands):
        lines += describe_command(name, cli.commands[name])
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the file is stale")
    args = parser.parse_args()
    text = render()
    if args.check:
        stale = not REFERENCE.is_file() or REFERENCE.read_text() != text
        print(f"{REFERENCE} is {'out of date' if stale else 'up to date'}")
        return 1 if stale else 0
    REFERENCE.parent.mkdir(parents=True, exist_ok=True)
    REFERENCE.write_text(text)
    print(f"Wrote {REFERENCE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
