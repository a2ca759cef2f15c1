"""Whether two images look the same, pixel by pixel, at a glance: the second test a near-copy
passes after its bottleneck has placed it near another image.

A bottleneck says what an image shows, so two different deer in the same grass can lie as close
as a photo and its re-encoded copy (on CIFAR-10, half of all images have a neighbour at cosine
0.85 or more). Their thumbnails tell them apart: each image becomes small grey squares (16 x 16,
the mean and contrast taken out, so brightness, colour and grey-scale changes do not count), of
the whole image and of its centre at 90% and 80% (so a crop still meets its original), each
also mirrored. Two images look alike by the best correlation of one's whole square with any of
the other's squares. With the default gate (cosine 0.75) and LOOKS_ALIKE, check_benchmark.py
finds 90-100% of re-encoded, cropped, mirrored, brightened, grey and desaturated copies of
CIFAR-10 images, and 5 groups among 3,390 untouched ones (CIFAR-10 has near-duplicates of its
own: recoloured and shifted copies, seen in the report of the whole set).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

SIDE = 16
CROPS = (1.0, 0.9, 0.8)
LOOKS_ALIKE = 0.9
READ_SIDE = 4 * SIDE  # the least side an image is decoded at (a large JPEG: at reduced scale)
BATCH = 4096  # images squared at once


GREY = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R 601 luma, as Pillow's "L"


def _area_weights(length: int, crop: float) -> np.ndarray:
    """[SIDE, length]: how much of each pixel falls into each of SIDE equal bins over the
    centre `crop` of the line, each row summing to 1 (a box filter, as Pillow's BOX resize)."""
    low = length * (1 - crop) / 2
    edges = low + (length - 2 * low) * np.arange(SIDE + 1) / SIDE
    pixel = np.arange(length)
    overlap = np.minimum(edges[1:, None], pixel + 1) - np.maximum(edges[:-1, None], pixel)
    weights = np.clip(overlap, 0, None)
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


def _unit(squares: np.ndarray) -> np.ndarray:
    """[n, SIDE, SIDE] -> [n, SIDE * SIDE], each with its mean and contrast taken out (a flat
    square stays all zeros and matches nothing)."""
    flat = squares.reshape(len(squares), -1)
    flat = flat - flat.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(flat, axis=1, keepdims=True)
    return np.where(norms > 1e-3, flat / np.maximum(norms, 1e-3), 0.0).astype(np.float32)


def squares_batch(pixels: np.ndarray) -> np.ndarray:
    """[n, len(CROPS) * 2, SIDE * SIDE]: the grey squares of images of one size ([n, H, W, 3])."""
    grey = np.asarray(pixels, np.float32) @ GREY
    out = []
    for crop in CROPS:
        rows, columns = _area_weights(grey.shape[1], crop), _area_weights(grey.shape[2], crop)
        square = np.einsum("sh,nhw,tw->nst", rows, grey, columns, optimize=True)
        out += [_unit(square), _unit(square[:, :, ::-1])]
    return np.stack(out, axis=1)


def squares(pixels: np.ndarray) -> np.ndarray:
    """[len(CROPS) * 2, SIDE * SIDE]: the grey squares of one image ([H, W, 3] uint8)."""
    return squares_batch(np.asarray(pixels)[None])[0]


def alike(a: np.ndarray, b: np.ndarray) -> float:
    """How alike two images' squares are: -1..1, 1 for the same picture."""
    return float(max((a[:1] @ b.T).max(), (b[:1] @ a.T).max()))


def squares_of(read, rows: list[int], threads: int = 4) -> dict[int, np.ndarray | None]:
    """{row: squares} of every row, `read(row, min_side)` giving its pixels (None where the
    image cannot be read again: it then looks like nothing). Images are read in threads (for
    files, decoding is the cost), then squared a batch of one size at a time (for pixels held
    in memory, such as CIFAR-10's, the arithmetic is)."""

    def one(row: int):
        try:
            return read(row, READ_SIDE)
        except Exception:  # noqa: BLE001 - a file changed or vanished since its bottleneck
            return None

    with ThreadPoolExecutor(threads) as pool:
        pixels = dict(zip(rows, pool.map(one, rows)))
    found: dict[int, np.ndarray | None] = {row: None for row in rows}
    by_shape: dict[tuple, list[int]] = {}
    for row, image in pixels.items():
        if image is not None and np.ndim(image) == 3 and min(np.shape(image)[:2]) > 0:
            by_shape.setdefault(np.shape(image), []).append(row)
    for members in by_shape.values():
        for start in range(0, len(members), BATCH):
            chunk = members[start : start + BATCH]
            done = squares_batch(np.stack([pixels[r] for r in chunk]))
            found.update(zip(chunk, done))
    return found
