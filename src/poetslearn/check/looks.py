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


def _unit(square: np.ndarray) -> np.ndarray:
    flat = square.ravel() - square.mean()
    norm = np.linalg.norm(flat)
    return flat / norm if norm > 1e-6 else flat  # a flat square matches nothing


def squares(pixels: np.ndarray) -> np.ndarray:
    """[len(CROPS) * 2, SIDE * SIDE]: the grey squares of one image ([H, W, 3] uint8)."""
    from PIL import Image

    grey = Image.fromarray(np.asarray(pixels, np.uint8)).convert("L")
    w, h = grey.size
    out = []
    for crop in CROPS:
        box = ((w - w * crop) / 2, (h - h * crop) / 2, (w + w * crop) / 2, (h + h * crop) / 2)
        square = np.asarray(grey.resize((SIDE, SIDE), Image.BOX, box=box), np.float32)
        out += [_unit(square), _unit(square[:, ::-1])]
    return np.stack(out).astype(np.float32)


def alike(a: np.ndarray, b: np.ndarray) -> float:
    """How alike two images' squares are: -1..1, 1 for the same picture."""
    return float(max((a[:1] @ b.T).max(), (b[:1] @ a.T).max()))


def squares_of(read, rows: list[int], threads: int = 4) -> dict[int, np.ndarray | None]:
    """{row: squares} of every row, `read(row, min_side)` giving its pixels (None where the
    image cannot be read again: it then looks like nothing)."""

    def one(row: int):
        try:
            return squares(read(row, READ_SIDE))
        except Exception:  # noqa: BLE001 - a file changed or vanished since its bottleneck
            return None

    with ThreadPoolExecutor(threads) as pool:
        return dict(zip(rows, pool.map(one, rows)))
