"""The antialiased bilinear resize without TensorFlow: `tf.image.resize(..., "bilinear",
antialias=True)`, the rule the exported graph applies, one image at a time.

The rule: output pixel i of n_out samples the input at c = (i + 0.5) * n_in / n_out with a
triangle kernel widened by n_in / n_out when shrinking; taps outside the image are dropped and the
rest normalised; rows, then columns (it is separable).

Two implementations of that one rule, in a registry:

- "compiled": the two passes compiled by Numba (vectorised over whole rows, reading the decoded
  uint8 pixels directly, the GIL released), 3-5x faster than Pillow on photos. Loading it costs
  about half a second in a new process (importing Numba, reading its kernels from the on-disk
  cache; compiling them the first time on a machine), so jobs of many images ask for it with
  `prepare_resize(count)` and one-image commands keep Pillow.
- "pillow": Pillow's bilinear filter on float32 planes (mode "F"), the same rule at full
  precision, with no start-up cost. Also the fallback where Numba is not installed.

Both agree with TensorFlow to within 0.01 of 255 (TensorFlow's own float32 rounding) and with
each other to within 1e-4 (float32 against Pillow's double sums), so a cache written by either
serves the other.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Callable

import numpy as np
from PIL import Image

from poetslearn.errors import PoetslearnError

# Overrides the choice: "pillow" keeps Pillow even for large jobs (a benchmark's baseline, or a
# machine where Numba misbehaves).
log = logging.getLogger(__name__)
RESIZE_ENV = "POETSLEARN_RESIZE"
# Data sets and label jobs of at least this many images load the compiled resize: its half
# second of loading is paid back within about 250 photos of 500x375 and 100 of 12 MP, by the
# 2-5 ms a photo it saves (scripts/benchmark_photos.py profile).
COMPILED_FROM = 200


@functools.lru_cache(maxsize=256)
def triangle_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first input index [n_out] int32, tap count [n_out] int32, weights [n_out, taps] float32)
    of the rule above, as Pillow computes them (in float64, then normalised)."""
    scale = n_in / n_out
    support = max(scale, 1.0)
    centre = (np.arange(n_out) + 0.5) * scale
    first = np.maximum((centre - support + 0.5).astype(np.int64), 0)
    end = np.minimum((centre + support + 0.5).astype(np.int64), n_in)
    taps = int((end - first).max())
    x = first[:, None] + np.arange(taps)[None, :]
    weights = np.maximum(0.0, 1.0 - np.abs((x - centre[:, None] + 0.5) / support))
    weights[x >= end[:, None]] = 0.0
    weights /= weights.sum(axis=1, keepdims=True)
    return first.astype(np.int32), (end - first).astype(np.int32), weights.astype(np.float32)


def resize_with_pillow(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pillow's float32 planes: it runs the filter in C over its band only, GIL released."""
    planes = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(pixels[..., c], dtype=np.float32)).resize(
                (width, height), Image.BILINEAR
            )
        )
        for c in range(pixels.shape[2])
    ]
    return np.stack(planes, axis=-1)


def resize_compiled(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """Both passes as one kernel each: rows first (each output row a weighted sum of a few whole
    input rows, contiguous, so it vectorises), then columns on the row pass's float32 result."""
    kernels = compiled_kernels()
    if kernels is None:
        raise RuntimeError("the compiled resize needs Numba: pip install numba")
    weigh_rows, weigh_columns = kernels
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        return resize_with_pillow(pixels, height, width)  # the column kernel is RGB only
    if pixels.dtype != np.uint8:
        pixels = pixels.astype(np.float32, copy=False)
    pixels = np.ascontiguousarray(pixels)
    in_height, in_width, channels = pixels.shape
    rows = np.empty((height, in_width * channels), np.float32)
    weigh_rows(pixels.reshape(in_height, -1), *triangle_taps(in_height, height), rows)
    out = np.empty((height, width, channels), np.float32)
    weigh_columns(rows.reshape(height, in_width, channels), *triangle_taps(in_width, width), out)
    return out


@functools.lru_cache(maxsize=1)
def compiled_kernels() -> tuple[Callable, Callable] | None:
    """The two Numba kernels, or None where Numba cannot be imported."""
    try:
        import numba
    except ImportError:
        return None
    try:
        jit = numba.njit(nogil=True, cache=True)
        return jit(_weigh_rows), jit(_weigh_columns)
    except RuntimeError:  # no writable place for Numba's cache: compile in every process
        jit = numba.njit(nogil=True)
        return jit(_weigh_rows), jit(_weigh_columns)


def _weigh_rows(src, first, count, weights, out):
    # out[i, :] = sum over k of weights[i, k] * src[first[i] + k, :], in float32
    for i in range(out.shape[0]):
        acc = out[i]
        acc[:] = 0.0
        for k in range(count[i]):
            weight = weights[i, k]
            row = src[first[i] + k]
            for t in range(acc.shape[0]):
                acc[t] += weight * np.float32(row[t])


def _weigh_columns(src, first, count, weights, out):
    # out[i, j, :] = sum over k of weights[j, k] * src[i, first[j] + k, :], RGB, in float32;
    # the three sums kept in registers (a store per tap made this pass 2x slower).
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            red = green = blue = np.float32(0.0)
            for k in range(count[j]):
                weight, pixel = weights[j, k], src[i, first[j] + k]
                red += weight * pixel[0]
                green += weight * pixel[1]
                blue += weight * pixel[2]
            out[i, j, 0], out[i, j, 1], out[i, j, 2] = red, green, blue


RESIZERS: dict[str, Callable[[np.ndarray, int, int], np.ndarray]] = {
    "pillow": resize_with_pillow,
    "compiled": resize_compiled,
}
_chosen = "pillow"
_choosing = threading.Lock()


def use_compiled_resize() -> str:
    """Switches this process to the compiled resize (loading, and the first time compiling, its
    kernels now, before any thread needs them) unless Numba is missing or POETSLEARN_RESIZE says
    "pillow". Returns the name of the resize in use."""
    global _chosen
    with _choosing:
        wanted = os.environ.get(RESIZE_ENV, "compiled")
        if wanted not in RESIZERS:
            raise PoetslearnError(
                f"{RESIZE_ENV}={wanted!r} names no resize; expected one of {sorted(RESIZERS)}."
            )
        if wanted == "compiled" and _chosen != "compiled" and compiled_kernels() is not None:
            try:
                resize_compiled(np.zeros((2, 2, 3), np.uint8), 1, 1)  # load both kernels now
                resize_compiled(np.zeros((2, 2, 3), np.float32), 1, 1)
            except Exception as e:  # noqa: BLE001 - Numba failing to compile here only costs speed
                log.info("the compiled resize is not available (%s); Pillow's resizes", e)
                return _chosen
            _chosen = "compiled"
        return _chosen


def prepare_resize(images: int) -> str:
    """The resize for a job of `images` images: the compiled one where it pays."""
    return use_compiled_resize() if images >= COMPILED_FROM else _chosen


def resize_in_use() -> str:
    return _chosen


def resize_antialiased(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """[H, W, 3] -> [height, width, 3] float32 0..255, by the resize this process uses."""
    return RESIZERS[_chosen](pixels, height, width)
