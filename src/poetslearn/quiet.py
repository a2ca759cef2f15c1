"""Keeping TensorFlow's and LiteRT's native start-up chatter off the user's terminal.

TensorFlow prints its oneDNN notice, CUDA probe and an absl line from C++ while it is imported,
before its own log level is read, and LiteRT announces its XNNPACK delegate; none of it is for
our users, and shell scripts that read stderr trip on it. The CLI calls `configure` once; the
few native calls that chatter run inside `native_stderr_silenced`, which sends file descriptor 2
to a temporary file for their duration and replays it if they fail, so no real error is lost.
`--verbose`, or TF_CPP_MIN_LOG_LEVEL set by the user to 0, 1 or 2, lets everything through.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_native_output_wanted = False
_tensorflow = None
_import_lock = threading.Lock()


def configure(verbose: bool = False) -> None:
    """Decides, once per process, whether native libraries may write to stderr."""
    global _native_output_wanted
    # A level below 3 (errors) asks for TensorFlow's lines; 3, which we set ourselves and our
    # child processes inherit, asks for quiet.
    _native_output_wanted = verbose or os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3") != "3"
    if not _native_output_wanted:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"  # after start-up, TensorFlow honours it


@contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Native writes to stderr inside the block are dropped (replayed if the block fails)."""
    if _native_output_wanted:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            capture.seek(0)
            sys.stderr.write(capture.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def import_tensorflow():
    """`import tensorflow`, without the lines it prints while loading. Safe from several threads
    at once (image loaders): the others wait for the one import, never see it half done."""
    global _tensorflow
    if _tensorflow is None:
        with _import_lock:
            if _tensorflow is None:
                with native_stderr_silenced():
                    import tensorflow
                _tensorflow = tensorflow
    return _tensorflow
