"""The photo pipeline's parallel parts: results in order, failures per item, bounded look-ahead."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image

from poetslearn.data.images import load_image
from poetslearn.data.parallel import load_each, prefetched
from poetslearn.errors import ImageError


def test_load_each_keeps_the_order_and_names_each_failure():
    """Each item waits for the next one to finish first, so they finish in reverse order, on
    any machine: the results still come back in input order."""
    finished = [threading.Event() for _ in range(4)]
    order = []

    def load(n: int) -> int:
        if n + 1 < len(finished):
            assert finished[n + 1].wait(timeout=10), f"item {n + 1} never finished"
        order.append(n)
        finished[n].set()
        if n == 2:
            raise ImageError(f"image {n} is broken")
        return n * 10

    ok, failed = load_each(load, list(range(4)), workers=4)
    assert order == [3, 2, 1, 0]  # finished out of order, truly
    assert ok == [0, 10, 30]
    assert failed == {2: "image 2 is broken"}


def test_load_each_raises_what_is_not_an_image_problem():
    def load(n: int) -> int:
        raise KeyError(n)

    with pytest.raises(KeyError):
        load_each(load, [1, 2, 3], workers=2)


def test_load_each_uses_several_threads():
    seen, barrier = set(), threading.Barrier(3, timeout=10)

    def load(n: int) -> int:
        seen.add(threading.get_ident())
        barrier.wait()  # only passes when three items are loading at once
        return n

    assert load_each(load, [1, 2, 3], workers=3) == ([1, 2, 3], {})
    assert len(seen) == 3


def test_prefetched_yields_in_order_and_loads_at_most_ahead():
    """While the caller holds batch n, the loader runs up to two batches ahead and no further:
    the caller waits until it has (an event, not a guess at how long it takes)."""
    started, consumed = [], []
    progressed = threading.Condition()

    def load(n: int) -> int:
        with progressed:
            started.append(n)
            progressed.notify_all()
        return n

    for n in prefetched(range(10), load, ahead=2):
        last = min(n + 2, 9)
        with progressed:
            assert progressed.wait_for(lambda last=last: last in started, timeout=10), (n, started)
            assert max(started) == last  # the one in use and two ahead, never the whole list
        consumed.append(n)
    assert consumed == list(range(10))


def test_prefetched_stops_loading_when_the_caller_stops():
    started = []

    def load(n: int) -> int:
        started.append(n)
        return n

    batches = prefetched(range(1000), load, ahead=2)
    for n in batches:
        if n == 3:
            break
    batches.close()  # what leaving the loop does: the pool is shut down before close returns
    assert max(started) <= 5


def test_load_image_matches_tensorflows_resize_of_the_same_decode(tmp_path):
    """The pipeline's resize (no TensorFlow call) against the graph's own resize op."""
    import tensorflow as tf

    from poetslearn.data.images import read_image_file

    rng = np.random.default_rng(0)
    path = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 256, (375, 500, 3), dtype=np.uint8)).save(path)
    ours = load_image(path, 224)
    pixels = read_image_file(path, min_side=448)
    theirs = tf.image.resize(pixels[None].astype(np.float32), (224, 224), antialias=True)
    assert ours.shape == (224, 224, 3) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs.numpy()[0], atol=0.01)
