"""Hash-checked downloads into a cache, with progress, that never leave a partial file behind.

Modelled on Keras's `get_file`: the file is streamed to `<dest>.part`, its length and hash are
checked, and only then renamed into place. A cached file is re-checked on every use when a hash is
known, so a file damaged after the fact is fetched again instead of being trusted.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from pathlib import Path

from poetslearn.errors import DownloadError
from poetslearn.progress import progress

_CHUNK = 1 << 20


def hash_file(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes, read in chunks (weights and data sets can be large)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _expected_hash(sha256: str | None, md5: str | None) -> tuple[str, str] | None:
    if sha256:
        return "sha256", sha256.lower()
    if md5:
        return "md5", md5.lower()
    return None


def file_matches(path: Path, sha256: str | None = None, md5: str | None = None) -> bool:
    """True when `path` exists and has the expected hash (any existing file when none is given)."""
    if not path.is_file():
        return False
    expected = _expected_hash(sha256, md5)
    return expected is None or hash_file(path, expected[0]) == expected[1]


def _open(url: str, timeout: float, dest: Path):
    try:
        return urllib.request.urlopen(url, timeout=timeout)
    except (urllib.error.URLError, OSError) as e:
        raise DownloadError(
            f"Could not download {url}: {getattr(e, 'reason', e)}. Check the network "
            f"connection, or download the file on a connected machine and put it at {dest}."
        ) from e


def _stream_to(
    url: str, part: Path, digest, show_progress: bool, timeout: float, dest: Path
) -> tuple[int, int]:
    """Downloads `url` into `part` under a progress bar, hashing as it goes; returns (bytes
    received, bytes announced or 0)."""
    received = 0
    with _open(url, timeout, dest) as response, open(part, "wb") as out:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else 0
        with progress(total, f"Downloading {dest.name}", unit="B", enabled=show_progress) as bar:
            while True:
                try:
                    chunk = response.read(_CHUNK)
                except (OSError, ValueError, http.client.HTTPException) as e:  # reset, short
                    raise DownloadError(
                        f"The download of {url} broke off after {received:,} bytes ({e}). "
                        f"Run the command again to retry."
                    ) from e
                if not chunk:
                    return received, total
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                bar.update(len(chunk))


def fetch_file(
    url: str,
    dest: Path,
    sha256: str | None = None,
    md5: str | None = None,
    show_progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Returns `dest`, downloading `url` there first unless a copy with the right hash is present.

    Raises DownloadError when the server cannot be reached, the connection drops before the
    announced length arrived, or the bytes do not have the expected hash. In every failure case
    nothing is left at `dest` or at the temporary `.part` name.
    """
    dest = Path(dest)
    if file_matches(dest, sha256, md5):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    expected = _expected_hash(sha256, md5)
    digest = hashlib.new(expected[0] if expected else "sha256")
    try:
        received, total = _stream_to(url, part, digest, show_progress, timeout, dest)
        if total and received != total:
            raise DownloadError(
                f"The download of {url} broke off: received {received:,} of {total:,} bytes. "
                f"Run the command again to retry."
            )
        if expected and digest.hexdigest() != expected[1]:
            raise DownloadError(
                f"The file downloaded from {url} has {expected[0]} {digest.hexdigest()}, expected "
                f"{expected[1]}; it was discarded. The server may be serving a different or "
                f"damaged file."
            )
        os.replace(part, dest)
    except BaseException:
        # KeyboardInterrupt included: a partial file must never be mistaken for a complete one.
        part.unlink(missing_ok=True)
        raise
    return dest
