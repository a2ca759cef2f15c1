"""Nothing Unix-only at import time, and peak memory read right on every system."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from poetslearn import memory

# The CLI imported and run in a Python where `resource` (Unix-only) does not exist, as on
# Windows, and no /proc either: the import must work and a whole retrain must finish, saying
# peak memory is unknown.
WITHOUT_RESOURCE = """
import sys
sys.modules["resource"] = None  # `import resource` now raises ImportError
from poetslearn import memory
memory._linux_high_water_mb = lambda: None
from poetslearn.cli.main import main
sys.argv = ["poetslearn"] + sys.argv[1:]
main()
"""


@pytest.mark.processes
def test_cli_runs_where_the_resource_module_does_not_exist(tmp_path, colour_dir):
    args = [
        "retrain",
        "--architecture",
        "test_tiny",
        "--weights",
        "none",
        "--image_dir",
        str(colour_dir),
        "--bottleneck_dir",
        str(tmp_path / "b"),
        "--output_graph",
        str(tmp_path / "g.pb"),
        "--output_labels",
        str(tmp_path / "l.txt"),
        "--summaries_dir",
        "",
        "--how_many_training_steps",
        "20",
        "--quiet",
        "--json",
    ]
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_RESOURCE, *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["peak_memory_mb"] is None
    assert "peak memory unknown." in done.stderr
    help_text = subprocess.run(
        [sys.executable, "-c", WITHOUT_RESOURCE, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert help_text.returncode == 0 and "retrain" in help_text.stdout


@pytest.mark.parametrize("platform, unit", [("linux", 1024), ("darwin", 1)])
def test_peak_memory_reads_ru_maxrss_in_the_systems_unit(monkeypatch, platform, unit):
    resource = pytest.importorskip("resource")  # Unix: what the other systems report differs

    class Usage:
        ru_maxrss = 3 * 1024 * 1024 * 1024 // unit  # 3 GiB in the system's unit

    monkeypatch.setattr(resource, "getrusage", lambda who: Usage())
    monkeypatch.setattr(memory, "_linux_high_water_mb", lambda: None)  # no /proc to read
    assert memory.peak_memory_mb(platform) == 3 * 1024


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's /proc and exec rule")
def test_a_process_started_by_a_large_one_reports_its_own_peak():
    import numpy as np

    held = np.ones(64 * 1024 * 1024 // 8 * 8)  # 512 MiB, every page touched
    child = subprocess.run(
        [sys.executable, "-c", "from poetslearn import memory; print(memory.peak_memory_mb())"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    # ru_maxrss would say at least the 512 MiB this process holds: Linux keeps it over an exec.
    assert float(child.stdout) < 256, (child.stdout, held.nbytes)


def test_peak_memory_on_windows_asks_windows_and_never_crashes_elsewhere():
    if sys.platform != "win32":
        # Here the Windows API is missing: the answer is "unknown", not an exception.
        assert memory.peak_memory_mb("win32") is None
    # On this system the figure is known, and this process (NumPy, pytest) holds tens of MB.
    peak = memory.peak_memory_mb()
    assert isinstance(peak, float) and 10 < peak < 64 * 1024, peak


def test_native_stderr_is_dropped_unless_asked_for_and_replayed_on_failure(capfd, monkeypatch):
    from poetslearn import quiet

    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    quiet.configure(verbose=False)
    with quiet.native_stderr_silenced():
        os.write(2, b"oneDNN custom operations are on\n")
    assert capfd.readouterr().err == ""
    with pytest.raises(RuntimeError), quiet.native_stderr_silenced():
        os.write(2, b"the reason it failed\n")
        raise RuntimeError("boom")
    assert capfd.readouterr().err == "the reason it failed\n"  # nothing real is lost
    quiet.configure(verbose=True)
    with quiet.native_stderr_silenced():
        os.write(2, b"shown with --verbose\n")
    assert capfd.readouterr().err == "shown with --verbose\n"
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")  # the user asks TensorFlow for everything
    quiet.configure(verbose=False)
    with quiet.native_stderr_silenced():
        os.write(2, b"shown for TF_CPP_MIN_LOG_LEVEL=0\n")
    assert capfd.readouterr().err == "shown for TF_CPP_MIN_LOG_LEVEL=0\n"
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL")
    quiet.configure(verbose=False)  # leave the process as the CLI would (quiet)


@pytest.mark.processes
def test_tensorflow_imported_from_many_threads_at_once_is_never_seen_half_done():
    # What evaluate's image-loading threads do on their first image (a fresh process, so that
    # TensorFlow is not imported yet).
    code = """
from concurrent.futures import ThreadPoolExecutor
from poetslearn.quiet import import_tensorflow
with ThreadPoolExecutor(8) as pool:
    modules = list(pool.map(lambda _: import_tensorflow(), range(8)))
assert all(hasattr(m, "image") and m is modules[0] for m in modules)
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout == "ok\n", done.stderr
