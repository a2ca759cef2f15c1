"""Shared fixtures: tiny image folders and a tiny CIFAR-10 (made by `helpers`), the real data in
../shared (or $POETSLEARN_SHARED_DIR), and poetslearn's own cache kept in the test session.

`slow` is given here, by what a test uses, never by hand: every test that reads the genuine
weights or CIFAR-10 (the `shared` fixture), starts a Ray cluster (`ray_cluster`), runs a
measurement script end to end (marked `scripts`), runs poetslearn in fresh processes (to stop,
kill or race them, or to see what a user sees: marked `processes`), or builds Inception V3
(23 million weights, seconds a test: marked `big_network`, and every test parametrized with
it). `pytest -m "not slow"` runs the rest: no Ray, no genuine weights, no subprocess benchmarks.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import make_colour_folder, make_tiny_cifar, shared_dir

# What makes a test slow: the fixtures and markers of the docstring above.
SLOW_FIXTURES = {"shared", "ray_cluster"}
SLOW_MARKERS = {"scripts", "processes", "big_network", "ray"}
BIG_NETWORKS = {"inception_v3"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        parameters = item.callspec.params.values() if hasattr(item, "callspec") else ()
        if any(isinstance(p, str) and p in BIG_NETWORKS for p in parameters):
            item.add_marker(pytest.mark.big_network)
        if "ray_cluster" in item.fixturenames:
            item.add_marker(pytest.mark.ray)
        uses = SLOW_FIXTURES & set(item.fixturenames)
        marked = {mark.name for mark in item.iter_markers()} & SLOW_MARKERS
        if uses or marked:
            item.add_marker(pytest.mark.slow)
    # `pytest -n 2 --dist loadfile` (pyproject's addopts) gives each file to one worker, in this
    # order: the files of the Ray tests first, the longest two of the suite (test_ray.py and
    # test_scripts.py), one to each worker, so that the rest fills in around them and neither
    # is left for last while the other worker waits.
    items.sort(key=lambda item: not item.get_closest_marker("ray"))


@pytest.fixture(scope="session")
def shared() -> Path:
    """The genuine weights and CIFAR-10. Without them a test that needs them is skipped, with
    the reason, on a developer's machine; in CI (CI set) it fails: CI must run everything."""
    path = shared_dir()
    if not (path / "README.md").is_file():
        message = (
            f"needs the shared data folder {path} (genuine weights, CIFAR-10); set "
            f"POETSLEARN_SHARED_DIR"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session", autouse=True)
def own_cache_dir(tmp_path_factory):
    """poetslearn's own cache (imported weights, the file-key memo) in a folder of the test
    session, unless the caller chose one: tests leave nothing in the user's home."""
    if "POETSLEARN_CACHE_DIR" in os.environ:
        yield
        return
    os.environ["POETSLEARN_CACHE_DIR"] = str(tmp_path_factory.mktemp("poetslearn_cache"))
    yield
    os.environ.pop("POETSLEARN_CACHE_DIR", None)


@pytest.fixture
def colour_dir(tmp_path: Path) -> Path:
    return make_colour_folder(tmp_path / "colours")


@pytest.fixture
def tiny_cifar(tmp_path: Path) -> Path:
    return make_tiny_cifar(tmp_path / "cifar")
