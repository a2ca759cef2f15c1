"""Which files are usable images, and each one's content key: the scan before any work, shared
by every loader of image files (folders of class sub-folders, CSV files).

Files are recognised as images by content, not extension. Unreadable files are skipped with a
warning each, or, with `strict`, refused all together in one error before any work.
"""

from __future__ import annotations

import io
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from poetslearn.data.file_keys import FileKeyMemo, file_stamp
from poetslearn.data.images import decode_image
from poetslearn.data.sources import content_key
from poetslearn.errors import DataError, ImageError
from poetslearn.progress import progress


def scan_file(path: Path, decode: bool = False) -> bytes | str:
    """The content key of an image file, or the reason it is not a usable image.

    Normally only the header is read (cheap; by content, not extension); with `decode`, the
    whole image is decoded, which also finds truncated and corrupt files.
    """
    from PIL import Image

    try:
        data = path.read_bytes()
    except OSError as e:
        return f"cannot be read ({e.strerror or e})"
    if not data:
        return "is empty (0 bytes)"
    try:
        if decode:
            decode_image(data, str(path))
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                Image.open(io.BytesIO(data))
    except ImageError as e:
        return f"cannot be decoded ({e})"
    except Exception as e:  # noqa: BLE001 - PIL's plugins raise many types on malformed files
        return f"is not an image ({type(e).__name__})"
    return content_key(data)


def scan_files(
    paths: list[Path], strict: bool, show_progress: bool, memo_folder: Path
) -> list[bytes | str]:
    """`scan_file` of every path, in threads (it is mostly waiting for the disk). A file whose
    size and times match the memo keeps its remembered key unread (not with `strict`, which
    decodes every file); the others are read."""
    memo = FileKeyMemo()
    known = memo.load(memo_folder) if not strict else {}
    names = [str(path) for path in paths]
    stamps = [file_stamp(path) for path in paths]
    results: list[bytes | str | None] = [None] * len(paths)
    for i, name in enumerate(names):
        remembered = known.get(name)
        if remembered is not None and remembered[0] == stamps[i]:
            results[i] = remembered[1]
    unread = [i for i, result in enumerate(results) if result is None]
    with (
        ThreadPoolExecutor(8) as pool,
        progress(len(unread), "Scanning images", "file", show_progress and bool(unread)) as bar,
    ):

        def scan(i: int) -> bytes | str:
            result = scan_file(paths[i], decode=strict)
            bar.update(1)
            return result

        for i, result in zip(unread, pool.map(scan, unread)):
            results[i] = result
    if unread:
        memo.save(
            memo_folder,
            {
                name: (stamp, result)
                for name, stamp, result in zip(names, stamps, results)
                if isinstance(result, bytes) and stamp is not None
            },
        )
    return results


SKIPPING = "Skipping "  # how each skipped file's warning starts (read back by `skipped_file`)


def skipped_file(warning: str) -> tuple[str, str] | None:
    """(path, reason) from a warning `report_unreadable` gave about one file, else None."""
    if not (warning.startswith(SKIPPING) and ": it " in warning and warning.endswith(".")):
        return None
    path, reason = warning[len(SKIPPING) : -1].rsplit(": it ", 1)
    return path, reason


def report_unreadable(where: str, bad: list[tuple[Path, str]], strict: bool, warn) -> None:
    """Warns about each unreadable file, or with `strict` refuses them all in one error."""
    lines = [f"{path}: it {reason}" for path, reason in bad]
    if lines and strict:
        listing = "\n  ".join(lines[:20]) + (
            f"\n  ... and {len(lines) - 20} more" if len(lines) > 20 else ""
        )
        raise DataError(
            f"--strict: {len(lines)} file(s) in {where} are not readable images:"
            f"\n  {listing}\nRemove or fix them, or run without --strict to skip "
            f"them."
        )
    for line in lines:
        warn(f"{SKIPPING}{line}.")
    if lines:
        warn(f"Skipped {len(lines)} file(s) that are not readable images.")
