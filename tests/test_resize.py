"""The antialiased resize without TensorFlow (data/resize.py): both implementations follow the
rule the exported graph applies, they agree with each other, and a job chooses the compiled one
only where it pays."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from poetslearn.data import resize
from poetslearn.data.sources import FileImages
from poetslearn.errors import PoetslearnError

SHAPES = [
    ((480, 640), (224, 224)),
    ((32, 32), (224, 224)),  # enlarged
    ((100, 37), (128, 128)),  # shrunk one way, enlarged the other
    ((300, 451), (299, 299)),
    ((7, 3), (32, 32)),
    ((224, 224), (224, 224)),
    ((3024, 17), (160, 192)),
]


@pytest.fixture
def pillow_first(monkeypatch):
    """Each test starts from a new process's choice, whatever an earlier test switched to."""
    monkeypatch.setattr(resize, "_chosen", "pillow")
    monkeypatch.delenv(resize.RESIZE_ENV, raising=False)


def photo_like(rng, h: int, w: int) -> np.ndarray:
    """Smooth regions, edges and noise, as uint8, as the decoder gives them."""
    small = rng.integers(0, 256, (max(h // 8, 1), max(w // 8, 1), 3), dtype=np.uint8)
    base = np.asarray(Image.fromarray(small).resize((w, h), Image.BICUBIC), np.float32)
    return np.clip(base + rng.normal(0, 8, (h, w, 3)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("name", sorted(resize.RESIZERS))
def test_each_resize_equals_tensorflows_antialiased_resize(name):
    import tensorflow as tf

    rng = np.random.default_rng(0)
    for (h, w), (oh, ow) in SHAPES:
        x = rng.uniform(0, 255, (h, w, 3)).astype(np.float32)
        expected = tf.image.resize(x[None], (oh, ow), method="bilinear", antialias=True)
        got = resize.RESIZERS[name](x, oh, ow)
        assert got.shape == (oh, ow, 3) and got.dtype == np.float32
        # TensorFlow sums in float32: 0.01 of 255 is its own rounding, not a different rule.
        np.testing.assert_allclose(got, expected.numpy()[0], atol=0.01)


def test_the_compiled_resize_agrees_with_pillows_on_decoded_pixels():
    rng = np.random.default_rng(1)
    for (h, w), (oh, ow) in SHAPES:
        pixels = photo_like(rng, h, w)
        compiled = resize.resize_compiled(pixels, oh, ow)
        np.testing.assert_allclose(compiled, resize.resize_with_pillow(pixels, oh, ow), atol=1e-4)
        # uint8 read directly gives what float32 input gives: the same sums.
        np.testing.assert_array_equal(
            compiled, resize.resize_compiled(pixels.astype(np.float32), oh, ow)
        )


def test_the_compiled_resize_takes_a_strided_view():
    pixels = photo_like(np.random.default_rng(2), 200, 300)
    view = pixels[10:150:2, ::3]  # what a crop or a mirror hands over
    np.testing.assert_allclose(
        resize.resize_compiled(view, 64, 64), resize.resize_with_pillow(view, 64, 64), atol=1e-4
    )


def test_the_weights_of_each_output_pixel_sum_to_one_within_the_image():
    for n_in, n_out in [(500, 224), (224, 224), (32, 224), (3024, 160), (1, 7)]:
        first, count, weights = resize.triangle_taps(n_in, n_out)
        assert (first >= 0).all() and (first + count <= n_in).all() and (count >= 1).all()
        np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-6)
        taps = np.arange(weights.shape[1])[None, :]
        assert (weights[taps >= count[:, None]] == 0).all()  # no weight past a row's taps


def test_a_small_job_keeps_pillow_and_a_large_one_switches(pillow_first):
    assert resize.prepare_resize(resize.COMPILED_FROM - 1) == "pillow"
    assert resize.resize_in_use() == "pillow"
    assert resize.prepare_resize(resize.COMPILED_FROM) == "compiled"
    assert resize.resize_in_use() == "compiled"
    assert resize.prepare_resize(1) == "compiled"  # a process never switches back


def test_the_environment_keeps_pillow_or_names_the_choices(pillow_first, monkeypatch):
    monkeypatch.setenv(resize.RESIZE_ENV, "pillow")
    assert resize.prepare_resize(10_000) == "pillow"
    monkeypatch.setenv(resize.RESIZE_ENV, "opencv")
    with pytest.raises(PoetslearnError, match=r"POETSLEARN_RESIZE='opencv'.*compiled.*pillow"):
        resize.prepare_resize(10_000)


def test_without_numba_every_job_keeps_pillow(pillow_first, monkeypatch):
    monkeypatch.setattr(resize, "compiled_kernels", lambda: None)
    assert resize.prepare_resize(10_000) == "pillow"
    with pytest.raises(RuntimeError, match="pip install numba"):
        resize.resize_compiled(np.zeros((4, 4, 3), np.uint8), 2, 2)


def test_kernels_that_fail_to_compile_leave_pillow_in_use(pillow_first, monkeypatch):
    def broken(src, first, count, weights, out):
        raise TypeError("as Numba's compiler may fail on some platform")

    monkeypatch.setattr(resize, "compiled_kernels", lambda: (broken, broken))
    assert resize.prepare_resize(10_000) == "pillow" and resize.resize_in_use() == "pillow"


def test_a_split_of_a_large_data_set_is_read_with_the_compiled_resize(pillow_first, tmp_path):
    rng = np.random.default_rng(3)
    paths = [tmp_path / f"{i}.png" for i in range(2)]
    for path in paths:
        Image.fromarray(photo_like(rng, 30, 40)).save(path)
    small = FileImages(paths, [p.name for p in paths], [bytes(16)] * 2)
    pixels, failed = small.load_batch([0, 1], 24)
    assert resize.resize_in_use() == "pillow" and not failed  # two images: not worth loading
    # The same two files as the test split of a large data set: its size decides, and a subset
    # (a Ray batch, a class) keeps it.
    split = FileImages(paths, [p.name for p in paths], [bytes(16)] * 2, dataset_size=1000)
    again, failed = split.subset([1, 0]).load_batch([1, 0], 24)
    assert resize.resize_in_use() == "compiled" and not failed
    np.testing.assert_allclose(again, pixels, atol=1e-4)


def test_the_folder_and_csv_loaders_give_each_split_the_data_sets_size(tmp_path):
    from poetslearn.data.csv_table import load_csv_dataset
    from poetslearn.data.image_folder import load_image_folder

    for label in ("cat", "dog"):
        (tmp_path / label).mkdir()
        for i in range(5):
            Image.new("RGB", (8, 8), (40 * i, 0, 0)).save(tmp_path / label / f"{i}.png")
    folder = load_image_folder(tmp_path, 20, 20, show_progress=False)
    rows = "".join(f"{label}/{i}.png,{label}\n" for label in ("cat", "dog") for i in range(5))
    (tmp_path / "data.csv").write_text("path,labels\n" + rows)
    table = load_csv_dataset(tmp_path / "data.csv", 20, 20, show_progress=False)
    for dataset in (folder, table):
        assert sum(len(split.images) for split in dataset.splits.values()) == 10
        assert {split.images.dataset_size for split in dataset.splits.values()} == {10}
