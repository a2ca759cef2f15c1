"""The real download code against a real HTTP server on 127.0.0.1 serving a file from ../shared."""

from __future__ import annotations

import hashlib
import http.server
import threading

import pytest

from poetslearn.download import fetch_file
from poetslearn.errors import DownloadError

SHARED_FILE = "models/mobilenet_v1_0.25_128_frozen.tgz"
SHARED_SHA256 = "30af63cf9039861bc03f86c7b8092fab754d51b27f042830c456ddbfa2b72fce"


class Handler(http.server.BaseHTTPRequestHandler):
    payload = b""
    drop_after: int | None = None  # announce the full length, close the socket after this many
    requests = 0

    def do_GET(self):  # noqa: N802 - http.server's naming
        type(self).requests += 1
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        body = self.payload if self.drop_after is None else self.payload[: self.drop_after]
        self.wfile.write(body)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def server(shared):
    Handler.payload = (shared / SHARED_FILE).read_bytes()
    Handler.drop_after = None
    Handler.requests = 0
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/file.tgz"
    httpd.shutdown()
    httpd.server_close()


def test_download_succeeds_and_is_hash_checked(tmp_path, server):
    dest = fetch_file(
        server, tmp_path / "cache" / "m.tgz", sha256=SHARED_SHA256, show_progress=False
    )
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == SHARED_SHA256
    # A second call finds the verified file and does not download again.
    fetch_file(server, dest, sha256=SHARED_SHA256, show_progress=False)
    assert Handler.requests == 1


def test_hash_mismatch_leaves_nothing_behind(tmp_path, server):
    dest = tmp_path / "m.tgz"
    with pytest.raises(DownloadError, match="expected 0000"):
        fetch_file(server, dest, sha256="0" * 64, show_progress=False)
    assert list(tmp_path.iterdir()) == []


def test_connection_dropped_half_way_is_detected(tmp_path, server):
    Handler.drop_after = len(Handler.payload) // 2
    dest = tmp_path / "m.tgz"
    with pytest.raises(DownloadError, match="broke off"):
        fetch_file(server, dest, sha256=SHARED_SHA256, show_progress=False)
    assert list(tmp_path.iterdir()) == []


def test_damaged_cached_file_is_downloaded_again(tmp_path, server):
    dest = tmp_path / "m.tgz"
    dest.write_bytes(b"stale")
    fetch_file(server, dest, sha256=SHARED_SHA256, show_progress=False)
    assert Handler.requests == 1 and dest.stat().st_size == len(Handler.payload)


def test_unreachable_server_says_what_to_do(tmp_path):
    with pytest.raises(DownloadError, match="download the file on a connected machine"):
        fetch_file("http://127.0.0.1:9/nothing", tmp_path / "x", show_progress=False, timeout=5)


def test_imagenet_weights_fall_back_to_the_codelab_tarball_download(tmp_path, server, monkeypatch):
    """No local weights, Keras download fails: the codelab's tarball is fetched and imported."""
    from dataclasses import replace

    from poetslearn.backbone import architectures, weights
    from poetslearn.backbone.architectures import get_architecture

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("POETSLEARN_CACHE_DIR", str(tmp_path / "cache"))
    base = server.rsplit("/", 1)[0] + "/"
    arch = get_architecture("mobilenet_0.25_128")
    tarball = arch.codelab_tarball
    # The codelab tarball from our server (its pinned sha256 kept); the Keras file unreachable,
    # so the codelab tarball is the one that succeeds.
    monkeypatch.setitem(
        architectures.ARCHITECTURES,
        arch.name,
        replace(
            arch,
            codelab_tarball=replace(tarball, url=base + tarball.filename),
            keras_weights=replace(arch.keras_weights, url="http://127.0.0.1:9/x.h5"),
        ),
    )
    models = tmp_path / "models"
    backbone, info = weights.build_backbone(
        get_architecture("mobilenet_0.25_128"), "imagenet", models
    )
    assert (models / "mobilenet_v1_0.25_128_frozen.tgz").is_file()
    assert info.sha256 == SHARED_SHA256 and "frozen.tgz" in info.path
    assert any("127.0.0.1:9" in place for place in info.looked_in)


def test_every_weights_file_in_the_registry_is_served_over_https_by_its_own_name():
    from poetslearn.backbone.architectures import ARCHITECTURES

    files = [
        spec
        for arch in ARCHITECTURES.values()
        for spec in (arch.keras_weights, arch.codelab_tarball)
        if spec is not None
    ]
    assert len(files) == 16 * 2 + 1  # every MobileNet twice (Keras, codelab), Inception V3 once
    for spec in files:
        assert spec.url.startswith("https://") and spec.url.endswith("/" + spec.filename), spec


def test_every_weights_file_at_hand_is_pinned_and_its_pin_is_its_hash(shared):
    """Each genuine file ../shared holds is pinned in the registry with the hash it has."""
    from poetslearn.backbone.architectures import ARCHITECTURES
    from poetslearn.download import hash_file

    pinned = {
        spec.filename: spec.sha256
        for arch in ARCHITECTURES.values()
        for spec in (arch.keras_weights, arch.codelab_tarball)
        if spec is not None
    }
    at_hand = sorted((shared / "models").glob("*.tgz"))
    assert at_hand
    for path in at_hand:
        assert pinned.get(path.name) == hash_file(path), path.name
