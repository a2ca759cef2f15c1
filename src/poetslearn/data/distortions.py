"""Distorted copies of training images, computed once and cached like any bottleneck.

The codelab switched the bottleneck cache off when distorting, so every training step ran the
whole network again. Here each training image gets `copies` fixed distorted variants (random
crop, scale, flip and brightness, with the codelab's meaning of each flag); they are computed in
the same batched pass as the other bottlenecks, keyed by the image's content, the distortion
settings and the copy number, so a second run finds them in the cache.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

import numpy as np

from poetslearn.data.sources import Split, SubsetImages
from poetslearn.errors import ImageError


@dataclass(frozen=True)
class Distortions:
    flip_left_right: bool = False
    random_crop: float = 0.0  # percent of margin cropped off
    random_scale: float = 0.0  # percent the image is randomly enlarged by, at most
    random_brightness: float = 0.0  # percent pixels are multiplied up or down by, at most
    copies: int = 2
    seed: int = 0

    @classmethod
    def from_config(cls, config) -> Distortions:
        return cls(
            config.flip_left_right,
            config.random_crop,
            config.random_scale,
            config.random_brightness,
            config.distorted_copies,
            config.seed,
        )

    @property
    def enabled(self) -> bool:
        return bool(
            self.flip_left_right or self.random_crop or self.random_scale or self.random_brightness
        )

    def describe(self) -> str:
        parts = [name for name, on in (("flip", self.flip_left_right),) if on]
        parts += [
            f"{name} {value:g}%"
            for name, value in (
                ("crop", self.random_crop),
                ("scale", self.random_scale),
                ("brightness", self.random_brightness),
            )
            if value
        ]
        return ", ".join(parts)


class DistortedImages:
    """`copies` distorted variants of every image of a source: index i is copy i % copies of
    image i // copies. Pixels come out at the network's input size."""

    def __init__(self, base, settings: Distortions) -> None:
        self.base, self.settings = base, settings
        self.names = [
            f"{name} (distorted copy {k + 1})"
            for name in base.names
            for k in range(settings.copies)
        ]
        self._keys: list[bytes] | None = None

    def __len__(self) -> int:
        return len(self.base) * self.settings.copies

    def keys(self) -> list[bytes]:
        if self._keys is None:
            settings = repr(sorted(asdict(self.settings).items())).encode()
            self._keys = [
                hashlib.blake2b(key + settings + bytes([k]), digest_size=16).digest()
                for key in self.base.keys()
                for k in range(self.settings.copies)
            ]
        return self._keys

    def read_original(self, index: int, min_side: int | None = None) -> np.ndarray:
        """The distorted copy itself, at least `min_side` (default 256) pixels square."""
        pixels, failures = self.load_batch([index], min_side or 256)
        if failures:
            raise ImageError(failures[index])
        return np.clip(pixels[0] + 0.5, 0, 255).astype(np.uint8)

    def file_path(self, index: int):
        return self.base.file_path(index // self.settings.copies)  # the file it distorts

    def subset(self, indices: list[int]) -> SubsetImages:
        """The copies at `indices`, holding only the images they are copies of (so a batch
        sent to another machine carries its own images, not the whole training set)."""
        copies = self.settings.copies
        bases = sorted({i // copies for i in indices})
        position = {base: k for k, base in enumerate(bases)}
        own = DistortedImages(self.base.subset(bases), self.settings)
        return SubsetImages(own, [position[i // copies] * copies + i % copies for i in indices])

    def _boxes(self, indices: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Per image: a crop box in [0, 1] coordinates (x reversed to flip) and a brightness
        factor, drawn from a generator seeded by the copy's own key (reproducible)."""
        s = self.settings
        keys = self.keys()
        boxes, brightness = [], []
        for i in indices:
            rng = np.random.default_rng(int.from_bytes(keys[i][:8], "little"))
            # The codelab's rule: enlarge by the crop margin times a random scale, then take an
            # input-sized window at a random place; as a box, that window spans 1/scale.
            scale = (1.0 + s.random_crop / 100.0) * rng.uniform(1.0, 1.0 + s.random_scale / 100.0)
            extent = 1.0 / scale
            top, left = rng.uniform(0, 1 - extent, size=2)
            x1, x2 = left, left + extent
            if s.flip_left_right and rng.random() < 0.5:
                x1, x2 = x2, x1
            boxes.append((top, x1, top + extent, x2))
            factor = rng.uniform(1 - s.random_brightness / 100.0, 1 + s.random_brightness / 100.0)
            brightness.append(factor)
        return np.array(boxes, np.float32), np.array(brightness, np.float32)

    def load_batch(self, indices: list[int], size: int) -> tuple[np.ndarray, dict[int, str]]:
        import tensorflow as tf

        copies = self.settings.copies
        base_indices = sorted({i // copies for i in indices})
        pixels, base_failures = self.base.load_batch(base_indices, size)
        row_of, row = {}, 0
        for b in base_indices:
            if b not in base_failures:
                row_of[b] = row
                row += 1
        failures = {i: base_failures[i // copies] for i in indices if i // copies in base_failures}
        ok = [i for i in indices if i not in failures]
        if not ok:
            return np.zeros((0, size, size, 3), np.float32), failures
        boxes, brightness = self._boxes(ok)
        rows = np.array([row_of[i // copies] for i in ok], np.int32)
        # One batched op: crop, enlarge to the input size and flip, for every copy at once.
        out = tf.image.crop_and_resize(pixels, boxes, rows, (size, size)).numpy()
        out = np.clip(out * brightness[:, None, None, None], 0.0, 255.0)
        return out.astype(np.float32), failures


def distorted_split(train: Split, settings: Distortions) -> Split:
    """The distorted copies of a training split, labelled like their originals."""
    return Split(
        DistortedImages(train.images, settings), np.repeat(train.labels, settings.copies, axis=0)
    )
