"""Decoding: any mode to RGB, transparency on white, 16-bit scaled, garbage named, EXIF orientation
applied."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from poetslearn.data.images import decode_image
from poetslearn.errors import ImageError


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **kw)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "mode, fmt, tolerance",
    [
        ("L", "PNG", 0),
        ("P", "GIF", 0),
        ("RGBA", "PNG", 0),
        ("RGB", "BMP", 0),
        ("CMYK", "JPEG", 3),
        ("CMYK", "TIFF", 0),
        ("YCbCr", "JPEG", 3),
    ],
)
def test_decode_any_mode_to_rgb_keeps_the_colour(mode, fmt, tolerance):
    img = Image.new("RGB", (20, 10), (200, 100, 50)).convert(mode)
    # What the mode itself holds, in RGB: gray for L, the palette's colour for P, the original
    # for CMYK (an inverted or raw-channel decode would be far off).
    expected = np.asarray(img.convert("RGB"), np.int16)
    pixels = decode_image(encode(img, fmt), "x")
    assert pixels.shape == (10, 20, 3) and pixels.dtype == np.uint8
    assert np.abs(pixels.astype(np.int16) - expected).max() <= tolerance, pixels[0, 0]
    if mode in ("RGB", "CMYK", "RGBA"):
        assert np.abs(pixels[0, 0].astype(int) - (200, 100, 50)).max() <= tolerance


def test_decode_composites_transparency_onto_white():
    img = Image.new("RGBA", (4, 4), (200, 100, 50, 128))
    pixels = decode_image(encode(img, "PNG"), "x").astype(float)
    alpha = 128 / 255
    expected = np.array([200, 100, 50]) * alpha + 255 * (1 - alpha)  # (227, 178, 153)
    assert np.abs(pixels[0, 0] - expected).max() <= 1


def test_decode_sixteen_bit_scales_every_value_to_eight_bits():
    values = np.array([[0, 1000, 32767, 40000, 65535]], np.uint16)
    pixels = decode_image(encode(Image.fromarray(values), "PNG"), "deep.png")
    expected = np.round(values.astype(float) * 255 / 65535)  # 0, 4, 127, 156, 255
    assert pixels.shape == (1, 5, 3)
    for channel in range(3):  # gray: every channel the same value
        np.testing.assert_array_equal(pixels[..., channel], expected)


def test_decode_rejects_garbage_with_the_file_name():
    with pytest.raises(ImageError, match="holiday.jpg is not a readable image"):
        decode_image(b"\xff\xd8\xff garbage", "holiday.jpg")


def test_decode_applies_exif_orientation():
    img = Image.new("RGB", (30, 10), (0, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    assert decode_image(encode(img, "JPEG", exif=exif), "x").shape == (30, 10, 3)
