"""Content keys of image files, remembered by path, size and times, so a folder is read once.

Planning a run needs every file's content key (the bottleneck cache is keyed by content), and
reading 100,000 small files to hash them took 13-14 s on the development machine, a large share
of a run whose extraction is spread over a cluster. A file whose size, modification time and
change time are as recorded keeps its key, as git's index does; a second run only stats it.
The memo is one SQLite file under $POETSLEARN_CACHE_DIR; any problem with it (read-only, locked,
damaged, missing) costs only the speed-up, never a wrong key: an unknown or changed file is read.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from poetslearn.outputs import cache_dir

Stamp = tuple[int, int, int]  # size, mtime_ns, ctime_ns


def memo_path() -> Path:
    return cache_dir() / "file_keys.sqlite"


def file_stamp(path: Path) -> Stamp | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns


class FileKeyMemo:
    """{file path: (stamp, content key)} per image folder."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or memo_path()

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=10)
        db.execute(
            "CREATE TABLE IF NOT EXISTS keys (folder TEXT, path TEXT, size INTEGER, "
            "mtime INTEGER, ctime INTEGER, key BLOB, PRIMARY KEY (folder, path))"
        )
        return db

    def load(self, folder: Path) -> dict[str, tuple[Stamp, bytes]]:
        try:
            with self._connect() as db:
                rows = db.execute(
                    "SELECT path, size, mtime, ctime, key FROM keys WHERE folder = ?",
                    (str(Path(folder).absolute()),),
                ).fetchall()
            db.close()
        except (sqlite3.Error, OSError):
            return {}
        return {path: ((size, mtime, ctime), bytes(key)) for path, size, mtime, ctime, key in rows}

    def save(self, folder: Path, entries: dict[str, tuple[Stamp, bytes]]) -> None:
        """Replaces what is remembered of `folder` (files gone from it are forgotten, and so are
        folders that no longer exist)."""
        folder_name = str(Path(folder).absolute())
        try:
            with self._connect() as db:
                db.execute("DELETE FROM keys WHERE folder = ?", (folder_name,))
                gone = [
                    (name,)
                    for (name,) in db.execute("SELECT DISTINCT folder FROM keys")
                    if not os.path.isdir(name)
                ]
                db.executemany("DELETE FROM keys WHERE folder = ?", gone)
                db.executemany(
                    "INSERT INTO keys VALUES (?, ?, ?, ?, ?, ?)",
                    [(folder_name, path, *stamp, key) for path, (stamp, key) in entries.items()],
                )
            db.close()
        except (sqlite3.Error, OSError):
            pass  # only the speed-up of the next run is lost
