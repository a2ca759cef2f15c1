"""The data check's parts on vectors and probabilities made to measure: neighbours against brute
force, near-copy groups, confident learning, out-of-fold training, outliers, exact copies."""

from __future__ import annotations

import numpy as np
import pytest

from poetslearn.check import label_errors, looks, neighbours
from poetslearn.check.label_errors import (
    confident_label_issues,
    confident_multi_label_issues,
    fold_of_keys,
    out_of_fold_probabilities,
)
from poetslearn.check.near_copies import near_copy_groups
from poetslearn.check.neighbours import nearest_neighbours, unit_rows
from poetslearn.check.outliers import find_outliers
from poetslearn.data.copies import copies_warning, exact_copies
from poetslearn.data.sources import ArrayImages, Dataset, Split
from poetslearn.train.head import HeadParams


def _brute_force(vectors, k):
    units = unit_rows(vectors)
    sims = units @ units.T
    np.fill_diagonal(sims, -np.inf)
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(sims, order, axis=1)


@pytest.mark.parametrize(
    "search, block_elements",
    [("faiss_exact", 0), ("tensorflow_exact", 1 << 26), ("tensorflow_exact", 37)],
)  # TensorFlow's in one block, and in many ragged ones
def test_exact_searches_equal_brute_force(monkeypatch, search, block_elements):
    monkeypatch.setattr(neighbours, "BLOCK_ELEMENTS", block_elements)
    vectors = np.random.default_rng(0).normal(size=(53, 7)).astype(np.float32)
    found = nearest_neighbours(vectors, 5, search)
    assert found.search == search
    indices, sims = _brute_force(vectors, 5)
    np.testing.assert_allclose(found.similarities, sims, atol=1e-5)
    assert (found.indices == indices).mean() > 0.98  # ties may swap places
    assert not (found.indices == np.arange(53)[:, None]).any()  # never itself


def test_approximate_search_finds_most_true_neighbours():
    vectors = np.random.default_rng(5).normal(size=(2000, 16)).astype(np.float32)
    exact = nearest_neighbours(vectors, 10, "faiss_exact").indices
    approximate = nearest_neighbours(vectors, 10, "faiss_hnsw").indices
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approximate, exact)])
    assert recall > 0.9
    assert not (approximate == np.arange(2000)[:, None]).any()


def test_auto_search_is_exact_while_it_is_affordable():
    assert neighbours.chosen_search("auto", 1000, 256) == "faiss_exact"
    assert neighbours.chosen_search("auto", 400_000, 1024) == "faiss_hnsw"


@pytest.mark.parametrize("search", ["faiss_exact", "tensorflow_exact"])
def test_neighbours_of_an_exact_copy_and_of_too_few_images(search):
    vectors = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], np.float32)
    found = nearest_neighbours(vectors, 10, search)
    assert found.k == 2  # cut to N - 1
    assert found.indices[0, 0] == 1 and found.indices[1, 0] == 0
    assert found.similarities[0, 0] == pytest.approx(1.0)
    assert nearest_neighbours(vectors[:1], 10).k == 0


def test_near_copies_must_look_alike_and_exact_copies_stay_out():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (8, 32, 32, 3)).astype(np.uint8)
    smooth = np.repeat(np.repeat(rng.integers(0, 256, (8, 4, 4, 3)), 8, axis=1), 8, axis=2)
    images = (images.astype(int) // 4 + smooth * 3 // 4).astype(np.uint8)
    images[5] = np.clip(images[0].astype(int) + 30, 0, 255)  # brightened
    images[6] = images[0][:, ::-1]  # mirrored
    images[7] = images[0]  # an exact copy: its key equals row 0's
    vectors = rng.normal(size=(8, 32)).astype(np.float32)
    for row in (1, 5, 6, 7):  # row 1 is as near as the copies, yet another picture
        vectors[row] = vectors[0] + 0.05 * rng.normal(size=32)
    keys = [bytes([i]) for i in range(8)]
    keys[7] = keys[0]
    groups = near_copy_groups(
        nearest_neighbours(vectors, 4),
        keys,
        lambda rows: {r: looks.squares(images[r]) for r in rows},
        similarity=0.9,
    )
    # 0 and its exact copy 7 are both near-copies of 5 and 6; row 1 looks like none of them
    assert [sorted(g.rows) for g in groups] == [[0, 5, 6, 7]]
    assert groups[0].similarity > 0.95


def test_looks_alike_through_crops_and_colour_but_not_between_pictures():
    rng = np.random.default_rng(2)
    base = rng.integers(0, 4, (8, 8)).repeat(16, axis=0).repeat(16, axis=1) * 60
    picture = np.stack([base, base // 2, 255 - base], axis=-1).astype(np.uint8)
    cropped = picture[6:-6, 6:-6]  # 90% of it
    grey = np.repeat(picture.mean(axis=2, keepdims=True), 3, axis=2).astype(np.uint8)
    other = np.roll(picture, 40, axis=0)
    squares = looks.squares
    assert looks.alike(squares(picture), squares(cropped)) > looks.LOOKS_ALIKE
    assert looks.alike(squares(picture), squares(grey)) > looks.LOOKS_ALIKE
    assert looks.alike(squares(picture), squares(other)) < looks.LOOKS_ALIKE
    blank = np.full((20, 20, 3), 128, np.uint8)
    assert looks.alike(squares(blank), squares(blank)) == 0.0  # flat: alike to nothing


def test_confident_learning_flags_the_confidently_other_and_suggests_its_class():
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    probabilities = np.full((9, 3), 0.05)
    probabilities[np.arange(9), labels] = 0.9
    probabilities[1] = [0.05, 0.9, 0.05]  # labelled 0, the data says 1
    probabilities[7] = [0.4, 0.2, 0.4]  # unsure: below every other class's threshold
    issues = confident_label_issues(probabilities, labels)
    assert issues.rows.tolist() == [1]
    assert issues.suggested.tolist() == [1]
    assert issues.scores[0] == pytest.approx(0.95)


def test_confident_learning_finds_nothing_in_clean_labels():
    labels = np.repeat(np.arange(4), 10)
    probabilities = np.random.default_rng(2).dirichlet(np.ones(4), size=40) * 0.3
    probabilities[np.arange(40), labels] += 0.7
    assert len(confident_label_issues(probabilities, labels).rows) == 0


def test_multi_label_confident_learning_tells_missing_from_wrong():
    targets = np.zeros((12, 2), np.uint8)
    targets[:6, 0] = 1
    probabilities = np.where(targets == 1, 0.9, 0.1).astype(np.float32)
    targets[0, 0] = 0  # the data says label 0 is there: missing
    targets[8, 1] = 1  # given, the data says absent: wrong
    issues = confident_multi_label_issues(probabilities, targets)
    assert [(r, label) for r, label, _ in issues.missing] == [(0, 0)]
    assert [(r, label) for r, label, _ in issues.wrong] == [(8, 1)]


def test_folds_follow_content_keys():
    keys = [bytes([i % 7]) * 8 for i in range(50)]
    fold = fold_of_keys(keys, 5)
    assert set(fold.tolist()) <= set(range(5))
    assert all(fold[i] == fold[i % 7] for i in range(50))  # copies share a fold


def test_out_of_fold_training_exposes_flipped_labels():
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(3, 16)) * 4
    labels = np.repeat(np.arange(3), 60)
    vectors = (centres[labels] + rng.normal(size=(180, 16))).astype(np.float32)
    flipped = [5, 70, 130]
    noisy = labels.copy()
    noisy[flipped] = (labels[flipped] + 1) % 3
    keys = [rng.bytes(16) for _ in range(180)]
    params = HeadParams(1, 1e-2, 32, 1, -1, 1e-4, 0)
    probabilities = out_of_fold_probabilities(
        vectors, noisy, 3, fold_of_keys(keys, label_errors.DEFAULT_FOLDS), params
    )
    issues = confident_label_issues(probabilities, noisy)
    assert set(issues.rows.tolist()) == set(flipped)
    assert (issues.suggested == labels[issues.rows]).all()  # the true class suggested


def test_outliers_beyond_the_fence_and_none_without_spread():
    rng = np.random.default_rng(4)
    cluster = np.abs(rng.normal(1.0, 0.05, size=(60, 8))).astype(np.float32)
    odd = np.zeros((2, 8), np.float32)
    odd[0, 0], odd[1, 1] = 1.0, 1.0
    found = find_outliers(nearest_neighbours(np.concatenate([cluster, odd]), 5))
    assert set(found.rows.tolist()) == {60, 61}
    assert (found.scores > 0.95).all()
    same = np.ones((30, 8), np.float32) + 1e-4 * rng.normal(size=(30, 8)).astype(np.float32)
    assert len(find_outliers(nearest_neighbours(same, 5)).rows) == 0


def _dataset(train, validation, test, labels) -> Dataset:
    """Images given as small ints (equal ints: equal pixels); `labels` per split."""

    def split(values, split_labels):
        pixels = np.array([np.full((2, 2, 3), v, np.uint8) for v in values])
        return Split(ArrayImages(pixels, [f"img{v}" for v in values]), np.array(split_labels))

    return Dataset(
        "toy",
        ["a", "b"],
        {
            "train": split(train, labels[0]),
            "validation": split(validation, labels[1]),
            "test": split(test, labels[2]),
        },
        "toy",
    )


def test_exact_copies_by_kind_and_what_leaks():
    data = _dataset([1, 2, 3, 3], [1, 4], [2, 5], ([0, 0, 1, 1], [0, 0], [1, 1]))
    groups = exact_copies(data)
    kinds = [g.kind for g in groups]
    # 2 is in train as class a and in test as class b; 1 leaks into validation; 3 twice in train
    assert kinds == ["copy_across_splits", "copy_across_classes", "copy_within_class"]
    assert groups[0].leaked() == [("validation", 0)]
    assert groups[1].leaked() == [("test", 0)]
    assert groups[2].leaked() == []
    warning = copies_warning(groups)
    assert "2 validation/test image(s) have an exact copy" in warning
    assert "1 image(s) are copied into two or more classes" in warning
    assert "poetslearn check" in warning


def test_no_warning_for_copies_within_one_class_and_split():
    data = _dataset([1, 1, 2], [3], [4], ([0, 0, 1], [0], [1]))
    assert [g.kind for g in exact_copies(data)] == ["copy_within_class"]
    assert copies_warning(exact_copies(data)) is None


def test_a_handful_of_alike_oddities_spread_over_classes_stand_out_in_each():
    rng = np.random.default_rng(6)
    centres = np.abs(rng.normal(size=(3, 16))) * 3
    labels = np.repeat(np.arange(3), 40)
    vectors = np.abs(centres[labels] + 0.3 * rng.normal(size=(120, 16))).astype(np.float32)
    blank = np.zeros(16, np.float32)
    blank[0] = 1.0
    blanks = [5, 6, 7, 8, 45, 46, 47, 48, 85, 86, 87, 88]  # 4 per class, 12 in all
    vectors[blanks] = blank + 0.001 * rng.normal(size=(12, 16))
    overall = nearest_neighbours(vectors, 10)
    assert len(find_outliers(overall).rows) == 0  # alike among themselves: no global outlier
    found = find_outliers(overall, labels, lambda rows: nearest_neighbours(vectors[rows], 10))
    assert set(found.rows.tolist()) == set(blanks)
    assert set(found.within) == {"its class"}


@pytest.mark.parametrize("block_elements", [1 << 26, 7])  # one block; a row or two at a time
def test_an_image_fits_the_class_it_lies_among(monkeypatch, block_elements):
    from poetslearn.check import outliers

    monkeypatch.setattr(outliers, "BLOCK_ELEMENTS", block_elements)
    rng = np.random.default_rng(7)
    centres = np.abs(rng.normal(size=(2, 16))) * 3
    vectors = np.abs(np.repeat(centres, 30, axis=0) + 0.2 * rng.normal(size=(60, 16)))
    units = unit_rows(vectors.astype(np.float32))
    class_b = np.arange(30, 60)
    fence = outliers.far_fence(outliers.mean_distance(nearest_neighbours(vectors[class_b], 5)))
    inside = outliers.fit_class(units, class_b, np.array([0, 1, 35]), fence, 5)
    assert inside.tolist() == [False, False, True]  # class a's images do not fit class b
