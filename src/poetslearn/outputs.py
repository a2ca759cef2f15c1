"""The files a run writes: planned and proven writable before any long work, each written
atomically (a temporary file renamed into place), so a crash, Ctrl-C or a full disk never leaves a
half-written output and the previous one stays as it was."""

from __future__ import annotations

import errno
import functools
import os
import tempfile
from pathlib import Path

from poetslearn.errors import PoetslearnError


def cache_dir() -> Path:
    """Where poetslearn keeps what it can compute again (converted weights, converted graphs,
    file keys): `$POETSLEARN_CACHE_DIR`, default `~/.cache/poetslearn`. Never the user's model or
    data folder: those hold only what they put there, whatever their permissions."""
    return Path(
        os.environ.get("POETSLEARN_CACHE_DIR")
        or Path(os.path.expanduser("~")) / ".cache" / "poetslearn"
    )


def write_atomic(path: Path, data: bytes) -> None:
    """Writes `data` to a temporary file beside `path`, then renames it over `path`: a crash,
    Ctrl-C or full disk leaves either the old file or the new one, never a mix."""
    write_files_atomic({Path(path): data})


@functools.cache
def _new_file_mode() -> int:
    """The mode `open()` gives a new file under this process's umask (read once: setting the
    umask to read it is not thread-safe)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def write_files_atomic(files: dict[Path, bytes]) -> None:
    """Writes several files as one: every temporary file first, then the renames, so a full disk
    or Ctrl-C leaves all the old files or (renames cannot run out of space) all the new ones."""
    temporaries: list[tuple[str, Path]] = []
    try:
        for path, data in files.items():
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            temporaries.append((tmp, path))
            os.chmod(tmp, _new_file_mode())  # mkstemp's 0600 would hide models from others
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        for tmp, path in temporaries:
            os.replace(tmp, path)
    finally:
        for tmp, _ in temporaries:
            Path(tmp).unlink(missing_ok=True)


def describe_os_error(e: OSError, consequence: str = "") -> str:
    """`Error: ...` text for a failed read or write; `consequence` says what was kept."""
    where = f" {e.filename}" if e.filename else ""
    if e.errno == errno.ENOSPC:
        text = f"The disk is full (writing{where}). Free some space and run the command again"
    else:
        text = f"Could not read or write{where}: {e.strerror or e}"
    return f"{text}; {consequence}" if consequence else f"{text}."


def check_writable(paths: list[Path]) -> None:
    """Creates the parent folders and proves each can take a new file, before any long work."""
    for path in paths:
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=path.parent):
                pass
        except OSError as e:
            raise PoetslearnError(
                f"Cannot write {path}: {e.strerror or e}. Choose another "
                f"location or fix the folder's permissions."
            ) from e
        if path.is_dir():
            raise PoetslearnError(f"Cannot write {path}: it is a folder; give a file name.")
