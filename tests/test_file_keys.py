"""The file-key memo: a folder's files are read once; a changed file is read again."""

from __future__ import annotations

import os

from helpers import make_colour_folder
from poetslearn.data import image_scan
from poetslearn.data.image_folder import load_image_folder


def keys_of(dataset) -> dict[str, bytes]:
    return {
        name: key
        for split in dataset.splits.values()
        for name, key in zip(split.images.names, split.images.keys())
    }


def count_reads(monkeypatch) -> list:
    reads = []
    original = image_scan.scan_file

    def scan(path, decode=False):
        reads.append(path)
        return original(path, decode)

    monkeypatch.setattr(image_scan, "scan_file", scan)
    return reads


def test_a_second_scan_reads_no_file_and_gives_the_same_keys(tmp_path, monkeypatch):
    monkeypatch.setenv("POETSLEARN_CACHE_DIR", str(tmp_path / "cache"))
    folder = make_colour_folder(tmp_path / "colours", per_class=6)
    reads = count_reads(monkeypatch)
    first = load_image_folder(folder, show_progress=False)
    assert len(reads) == 18
    second = load_image_folder(folder, show_progress=False)
    assert len(reads) == 18  # nothing read again
    assert keys_of(second) == keys_of(first)
    load_image_folder(folder, show_progress=False, strict=True)
    assert len(reads) == 36  # --strict decodes every file whatever the memo says


def test_a_file_rewritten_with_its_old_size_and_mtime_gets_its_new_key(tmp_path, monkeypatch):
    monkeypatch.setenv("POETSLEARN_CACHE_DIR", str(tmp_path / "cache"))
    folder = make_colour_folder(tmp_path / "colours", per_class=6)
    before = keys_of(load_image_folder(folder, show_progress=False))
    target = folder / "red" / "img_0.png"
    stat = target.stat()
    data = bytearray(target.read_bytes())
    data[-20] ^= 0xFF  # same size, other content
    target.write_bytes(bytes(data))
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # the old modification time
    reads = count_reads(monkeypatch)
    after = keys_of(load_image_folder(folder, show_progress=False))
    assert reads == [target]
    assert after["red/img_0.png"] != before["red/img_0.png"]
    assert {k: v for k, v in after.items() if k != "red/img_0.png"} == {
        k: v for k, v in before.items() if k != "red/img_0.png"
    }


def test_a_memo_that_cannot_be_written_costs_only_the_speed_up(tmp_path, monkeypatch):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("")
    monkeypatch.setenv("POETSLEARN_CACHE_DIR", str(blocker))  # its memo cannot be made there
    folder = make_colour_folder(tmp_path / "colours", per_class=6)
    reads = count_reads(monkeypatch)
    first = load_image_folder(folder, show_progress=False)
    second = load_image_folder(folder, show_progress=False)
    assert len(reads) == 36 and keys_of(first) == keys_of(second)
