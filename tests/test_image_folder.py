"""Image folders: stable splits, every class in every split, labels normalised, non-images
skipped."""

from __future__ import annotations

import pytest

from helpers import make_colour_folder
from poetslearn.data.image_folder import load_image_folder, split_of
from poetslearn.errors import DataError


def quiet(*_):
    pass


def test_splits_are_stable_when_images_are_added(tmp_path):
    folder = make_colour_folder(tmp_path / "data", per_class=40)
    before = load_image_folder(folder, show_progress=False, warn=quiet)
    make_colour_folder(tmp_path / "more", per_class=40)
    for colour_dir in (tmp_path / "more").iterdir():
        for image in colour_dir.iterdir():
            image.rename(folder / colour_dir.name / f"extra_{image.name}")
    after = load_image_folder(folder, show_progress=False, warn=quiet)
    for split in ("train", "validation", "test"):
        old = set(before.splits[split].images.names)
        new = set(after.splits[split].images.names)
        assert old <= new, split
    assert len(after.splits["train"]) > len(before.splits["train"])


def test_nohash_suffix_keeps_images_together():
    assert split_of("a/photo_nohash_1.jpg", 10, 10) == split_of("a/photo_nohash_2.jpg", 10, 10)
    placements = {split_of(f"x/img_{i}.jpg", 10, 10) for i in range(200)}
    assert placements == {"train", "validation", "test"}


def test_every_class_gets_a_validation_and_a_test_image(tmp_path):
    folder = make_colour_folder(tmp_path / "data", per_class=3)
    data = load_image_folder(folder, show_progress=False, warn=quiet)
    for split in data.splits.values():
        assert sorted(set(split.labels.tolist())) == [0, 1, 2]


def test_labels_are_normalised_and_collisions_rejected(tmp_path):
    folder = make_colour_folder(
        tmp_path / "data", per_class=3, colours={"Red Roses": (255, 0, 0), "blåbär": (0, 0, 255)}
    )
    data = load_image_folder(folder, show_progress=False, warn=quiet)
    assert data.class_names == ["red roses", "blåbär"]  # in folder-name order
    (folder / "red_roses").mkdir()
    with pytest.raises(DataError, match="both give the label 'red roses'"):
        load_image_folder(folder, show_progress=False, warn=quiet)


def test_non_images_are_skipped_with_a_warning(tmp_path):
    folder = make_colour_folder(tmp_path / "data", per_class=4)
    (folder / "red" / "notes.txt").write_text("hello")
    (folder / "red" / "empty.jpg").write_bytes(b"")
    (folder / "red" / ".DS_Store").write_bytes(b"\0\1")
    warnings = []
    data = load_image_folder(folder, show_progress=False, warn=warnings.append)
    assert sum(len(s) for s in data.splits.values()) == 12
    assert any("notes.txt" in w and "not an image" in w for w in warnings)
    assert any("empty.jpg" in w and "empty" in w for w in warnings)
    assert not any(".DS_Store" in w for w in warnings)  # hidden files are not even looked at
