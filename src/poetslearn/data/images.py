"""Decoding image files by their content (never by extension) into RGB pixel arrays.

Every image that reaches a network passes through `load_image`, both when `retrain` computes
bottlenecks and when `label` classifies, so training and labelling see identical pixels.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from poetslearn.errors import ImageError
from poetslearn.quiet import import_tensorflow

# Decoded images above this many pixels are refused instead of exhausting memory. JPEGs are
# decoded at a reduced scale first, so only huge PNGs, TIFFs and the like ever reach the limit.
# PIL's own "decompression bomb" check is replaced by this one, which runs after that reduction.
MAX_DECODED_PIXELS = 120_000_000
Image.MAX_IMAGE_PIXELS = None


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


def _triangle_weights(in_size: int, out_size: int) -> np.ndarray:
    """[out_size, in_size] weights of TensorFlow's antialiased bilinear resize along one axis.

    The same rule as TensorFlow's ScaleAndTranslate with a triangle kernel and antialias: each
    output pixel samples at (i + 0.5) * in/out, with the kernel widened by in/out when shrinking
    (a low-pass filter), taps outside the image dropped and the rest normalised to sum 1.
    """
    inv_scale = in_size / out_size
    kernel_scale = max(inv_scale, 1.0)
    weights = np.zeros((out_size, in_size), np.float64)
    for i in range(out_size):
        sample = (i + 0.5) * inv_scale
        start = max(int(np.ceil(sample - kernel_scale - 0.5)), 0)
        end = min(int(np.floor(sample + kernel_scale - 0.5)), in_size - 1) + 1
        taps = np.maximum(0.0, 1.0 - np.abs((np.arange(start, end) + 0.5 - sample) / kernel_scale))
        if taps.sum() > 0:
            weights[i, start:end] = taps / taps.sum()
    return weights


def resize_antialiased(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """[H, W, 3] -> [height, width, 3] float32: `tf.image.resize(..., "bilinear", antialias=True)`
    in NumPy, for the paths that never import TensorFlow. Two matrix products (rows first, as
    TensorFlow does), in float64 so that only TensorFlow's own float32 rounding separates them."""
    h, w, channels = pixels.shape
    rows, cols = _triangle_weights(h, height), _triangle_weights(w, width)
    tall = rows @ np.asarray(pixels, np.float64).reshape(h, w * channels)  # [height, W * 3]
    wide = tall.reshape(height, w, channels).transpose(0, 2, 1) @ cols.T  # [height, 3, width]
    return np.ascontiguousarray(wide.transpose(0, 2, 1), dtype=np.float32)


def load_image_without_tensorflow(path: Path, size: int) -> np.ndarray:
    """`load_image` in NumPy only: the same decode, the same resize (to within 1e-3)."""
    return resize_antialiased(read_image_file(path, min_side=2 * size), size, size)


def resize_batch(images: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """[N, H, W, 3] -> [N, h, w, 3] float32 0..255: the antialiased bilinear resize the exported
    graph applies (`Architecture.preprocess`), for every path that has TensorFlow."""
    tf = import_tensorflow()  # may be the first use of TensorFlow: without its chatter
    return tf.image.resize(
        np.asarray(images, np.float32), tuple(hw), method="bilinear", antialias=True
    ).numpy()


def resize_pixels(pixels: np.ndarray, size: int) -> np.ndarray:
    """[H, W, 3] uint8 -> [size, size, 3] float32 in 0..255, exactly as the exported graph
    resizes."""
    return resize_batch(pixels[np.newaxis], (size, size))[0]


def load_image(path: Path, size: int) -> np.ndarray:
    """The one way a file becomes network input: decode, then resize to [size, size, 3] float32."""
    return resize_pixels(read_image_file(path, min_side=2 * size), size)
