"""Mirror images of a split's images, for scoring an image and its mirror image together
(`retrain --test_time_mirror`).

A mirrored split is one more split to the bottleneck and activation code: its images have keys of
their own (derived from the original's content key), so their vectors are cached beside the
originals' and a second run finds them.
"""

from __future__ import annotations

import hashlib

import numpy as np

from poetslearn.data.sources import KEY_BYTES, Split
from poetslearn.errors import DataError

# What a mirrored split is called beside its original: "validation" -> "validation_mirror".
MIRROR_SUFFIX = "_mirror"
# The splits that are scored (the training split is never mirrored: test-time only).
SCORED_SPLITS = ("validation", "test")


class MirroredImages:
    """The images of `base`, each flipped left to right."""

    def __init__(self, base) -> None:
        self.base = base
        self.names = [f"{name} (mirrored)" for name in base.names]
        self._keys: list[bytes] | None = None

    def __len__(self) -> int:
        return len(self.base)

    def keys(self) -> list[bytes]:
        if self._keys is None:
            self._keys = [
                hashlib.blake2b(key + b"mirror", digest_size=KEY_BYTES).digest()
                for key in self.base.keys()
            ]
        return self._keys

    def load_batch(self, indices: list[int], size: int) -> tuple[np.ndarray, dict[int, str]]:
        # Resizing and mirroring commute (the resize filter is symmetric), so the flip of the
        # resized image is the resized mirror image, as the exported models compute it.
        pixels, failures = self.base.load_batch(indices, size)
        return np.ascontiguousarray(pixels[:, :, ::-1]), failures

    def read_original(self, index: int, min_side: int | None = None) -> np.ndarray:
        return np.ascontiguousarray(self.base.read_original(index, min_side)[:, ::-1])

    def file_path(self, index: int):
        return self.base.file_path(index)  # the file the mirror image is made of

    def subset(self, indices: list[int]) -> MirroredImages:
        return MirroredImages(self.base.subset(indices))


def mirrored_splits(splits: dict[str, Split]) -> dict[str, Split]:
    """{"validation_mirror": ..., "test_mirror": ...}: the scored splits' mirror images."""
    return {
        name + MIRROR_SUFFIX: Split(MirroredImages(splits[name].images), splits[name].labels)
        for name in SCORED_SPLITS
        if name in splits
    }


def mean_with_mirror(name: str, features: np.ndarray, mirror: np.ndarray) -> np.ndarray:
    """A split's features averaged with its mirror images'. Averaging features is averaging the
    new layer's logits: the layer is linear."""
    if len(mirror) != len(features):  # an image that loaded once and failed once
        raise DataError(
            f"{len(features)} {name} images but {len(mirror)} mirror images: an image changed "
            f"while it was read. Run again."
        )
    return (features + mirror) / 2


def average_with_mirror(features: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """{split: features} with each scored split averaged with its mirror images' and the
    mirrored entries removed."""
    out = {name: value for name, value in features.items() if not name.endswith(MIRROR_SUFFIX)}
    for name in SCORED_SPLITS:
        if name + MIRROR_SUFFIX in features:
            out[name] = mean_with_mirror(name, out[name], features[name + MIRROR_SUFFIX])
    return out
