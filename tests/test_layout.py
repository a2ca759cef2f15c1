"""The package's shape, checked: imports point one way (downward through the layers below, and
no cycle, counting imports inside functions), no module over 300 lines, no function over 60."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "poetslearn"
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 60


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """Every poetslearn module `path` imports, at the top or inside a function; `from pkg import
    name` counts as importing `pkg.name` when that is a module."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in modules else node.module)
    return {name for name in found if name in modules}


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) - {name} for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


# The layers, top to bottom. A module may import from its own room (its top-level module or
# package) and from the layers below its own, never from a layer above, nor from another room
# of its own layer. The bottom layer is small single-purpose modules that may use each other
# (the cycle test still holds them). docs/how-it-works.md shows the same picture.
LAYERS = [
    ["__main__"],
    ["cli"],
    ["budget"],
    ["pipeline", "check"],
    ["inference", "export"],
    ["train"],
    ["extract"],
    ["data", "backbone", "artifacts"],
    [
        "clock",
        "config",
        "context",
        "download",
        "errors",
        "memory",
        "outputs",
        "progress",
        "quiet",
        "",
    ],
]
SHARED_LAYER = len(LAYERS) - 1


def room_of(module: str) -> str:
    """`poetslearn.data.csv_table` -> `data`; the package itself (`__version__`) -> ``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def layer_of(room: str) -> int:
    for i, rooms in enumerate(LAYERS):
        if room in rooms:
            return i
    raise AssertionError(f"{room!r} is in no layer of LAYERS: add it where it belongs")


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Every import that points up a layer or sideways into another room of the same layer."""
    wrong = []
    for module, imported in graph.items():
        here = room_of(module)
        for other in imported:
            there = room_of(other)
            if there == here:
                continue
            a, b = layer_of(here), layer_of(there)
            if b < a or (b == a and a != SHARED_LAYER):
                wrong.append(f"{module} -> {other}")
    return sorted(wrong)


def test_imports_point_down_the_layers():
    wrong = upward_imports(import_graph())
    assert not wrong, "imports that point up or sideways:\n" + "\n".join(wrong)


def test_the_layer_check_finds_an_upward_import():
    assert upward_imports({"poetslearn.config": {"poetslearn.backbone.architectures"}}) == [
        "poetslearn.config -> poetslearn.backbone.architectures"
    ]
    assert upward_imports({"poetslearn.export.graph": {"poetslearn.inference.label"}})
    assert not upward_imports({"poetslearn.cli.label": {"poetslearn.inference.label"}})
    assert not upward_imports({"poetslearn.outputs": {"poetslearn.errors"}})


def test_every_room_has_a_layer():
    for module in import_graph():
        layer_of(room_of(module))


def test_no_import_cycle():
    assert find_cycle(import_graph()) is None, " -> ".join(find_cycle(import_graph()))


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_module_over_300_lines():
    long = {
        name: n
        for name, path in _modules().items()
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_no_function_over_60_lines():
    long = {}
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                start = node.lineno  # the def line: click options above it are declarations
                if (n := node.end_lineno - start + 1) > MAX_FUNCTION_LINES:
                    long[f"{name}.{node.name}"] = n
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_no_test_marks_itself_slow_by_hand():
    """`slow` comes from what a test uses (tests/conftest.py), so it always means the same."""
    tests = Path(__file__).resolve().parent
    by_hand = [
        path.name
        for path in sorted(tests.glob("*.py"))
        if path.name != "conftest.py" and "mark." + "slow" in path.read_text()
    ]
    assert not by_hand, by_hand
