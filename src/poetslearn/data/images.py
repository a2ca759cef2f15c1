"""Decoding image files by their content (never by extension) into RGB pixel arrays.

Every image file that reaches a network passes through `load_image`, when `retrain` computes
bottlenecks and when `label` and `evaluate` classify, so training and labelling see identical
pixels.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from poetslearn.data.resize import resize_antialiased
from poetslearn.errors import ImageError
from poetslearn.quiet import import_tensorflow

# Decoded images above this many pixels are refused instead of exhausting memory. JPEGs are
# decoded at a reduced scale first, so only huge PNGs, TIFFs and the like ever reach the limit.
# PIL's own "decompression bomb" check is replaced by this one, which runs after that reduction.
MAX_DECODED_PIXELS = 120_000_000
Image.MAX_IMAGE_PIXELS = None
# A JPEG is decoded at the smallest DCT scale (1/2, 1/4, 1/8) that keeps both sides at least
# DRAFT_FACTOR times the network's input, then resized with the antialiased filter.
# scripts/draft_scale.py measures accuracy and time against other factors.
DRAFT_FACTOR = 2


def decode_image(data: bytes, name: str = "image", min_side: int | None = None) -> np.ndarray:
    """Returns [H, W, 3] uint8 RGB pixels of the first frame of an encoded image.

    Grayscale, palette, 16-bit, CMYK and images with alpha (composited onto white) become RGB;
    the EXIF orientation is applied. With `min_side`, a JPEG is decoded at a reduced scale (DCT
    scaling, much faster for large photos) as long as both sides stay at least `min_side`.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PIL's chatter about EXIF or palette transparency
            img = Image.open(io.BytesIO(data))
            width, height = img.size
            if min_side and img.format == "JPEG":
                img.draft("RGB", (min_side, min_side))  # a 1/2, 1/4 or 1/8 scale decode
            if img.size[0] * img.size[1] > MAX_DECODED_PIXELS:
                raise ImageError(
                    f"{name} is {width}x{height} pixels, too large to decode safely (the limit is "
                    f"{MAX_DECODED_PIXELS:,} pixels, about {MAX_DECODED_PIXELS * 3 >> 20} MB); "
                    f"save a smaller copy of it."
                )
            img.seek(0)
            img = ImageOps.exif_transpose(img)
            img = _to_rgb(img)
            pixels = np.asarray(img, dtype=np.uint8)
    except ImageError:
        raise
    except Exception as e:  # noqa: BLE001 - PIL's plugins raise many types on malformed files
        raise ImageError(f"{name} is not a readable image ({type(e).__name__}: {e}).") from e
    if pixels.ndim != 3 or pixels.shape[2] != 3 or min(pixels.shape[:2]) < 1:
        raise ImageError(f"{name} decoded to an unusable pixel array of shape {pixels.shape}.")
    return pixels


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        # 16-bit or 32-bit grayscale: scale to 8 bits instead of letting PIL clip at 255.
        values = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if img.mode.startswith("I;16") or values.max() > 255 else 255.0
        img = Image.fromarray(np.clip(values / peak * 255.0 + 0.5, 0, 255).astype(np.uint8))
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def read_image_file(path: Path, min_side: int | None = None) -> np.ndarray:
    """Reads and decodes one image file; any failure is an ImageError naming the file."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ImageError(f"{path} cannot be read ({e.strerror or e}).") from e
    return decode_image(data, str(path), min_side)


def resize_batch(images: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """[N, H, W, 3] -> [N, h, w, 3] float32 0..255: the antialiased bilinear resize the exported
    graph applies (`Architecture.preprocess`), for every path that has TensorFlow."""
    tf = import_tensorflow()  # may be the first use of TensorFlow: without its chatter
    return tf.image.resize(
        np.asarray(images, np.float32), tuple(hw), method="bilinear", antialias=True
    ).numpy()


def load_image(path: Path, size: int) -> np.ndarray:
    """The one way a file becomes network input, in training, labelling and evaluation: decode
    (a large JPEG at a reduced scale), then resize to [size, size, 3] float32 with the
    antialiased bilinear filter the exported graph applies (`data/resize.py`). No TensorFlow
    call: threads run it side by side."""
    return resize_antialiased(read_image_file(path, min_side=DRAFT_FACTOR * size), size, size)
