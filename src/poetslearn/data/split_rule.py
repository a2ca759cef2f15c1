"""The stable split rule: which of train, validation and test an image belongs to, from a hash of
its path (the codelab's rule, so its splits and ours agree), and the one correction for tiny
classes. Folders and CSV files without a split column are cut by it alike."""

from __future__ import annotations

import hashlib
import re

from poetslearn.data.sources import SPLITS

MAX_NUM_IMAGES_PER_CLASS = 2**27 - 1  # the codelab's constant, kept so splits match its own


def split_of(relative_path: str, validation_percentage: float, testing_percentage: float) -> str:
    """Which split an image belongs to, from a stable hash of its path below the image folder.

    As in the codelab, anything from `_nohash_` on is ignored, so `a_nohash_1.jpg` and
    `a_nohash_2.jpg` stay together. Adding or removing other images never moves this one.
    """
    hash_name = re.sub(r"_nohash_.*$", "", relative_path)
    value = int(hashlib.sha1(hash_name.encode("utf-8")).hexdigest(), 16)
    percentage = (value % (MAX_NUM_IMAGES_PER_CLASS + 1)) * (100.0 / MAX_NUM_IMAGES_PER_CLASS)
    if percentage < validation_percentage:
        return "validation"
    if percentage < validation_percentage + testing_percentage:
        return "test"
    return "train"


def give_every_split_one(by_split: dict[str, list], fixed: dict[str, int] | None = None) -> None:
    """Moves images so that no split of a class is empty (tiny classes only).

    `by_split` holds the class's images cut by the rule; `fixed` counts its images whose split
    was given (a CSV's split column), which are never moved but do fill their split. The image
    moved is the donor split's first by path, a deterministic choice; classes large enough for
    the hash to fill every split are never touched, and a donor is never emptied of its last
    image.
    """
    fixed = fixed or {}
    for needy in SPLITS:
        if by_split[needy] or fixed.get(needy):
            continue
        donor = max(SPLITS, key=lambda s: len(by_split[s]))
        if not by_split[donor] or len(by_split[donor]) + fixed.get(donor, 0) < 2:
            continue  # nothing movable (every image's split given), or only its last image
        by_split[donor].sort()
        by_split[needy].append(by_split[donor].pop(0))
