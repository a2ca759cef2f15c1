"""Images unlike the rest of their class, or of the whole data set: off-topic pictures, blank or
broken frames.

An image's oddness is its mean cosine distance to its k nearest other images (the kNN distance
cleanlab's Datalab also uses): a photo of a flower among flowers has close neighbours, a
screenshot among them has none. It is measured twice: among the images of the image's own class
(so a handful of blank frames or screenshots, alike among themselves and spread over the
classes, still stand out in each class), and among all images (for multi-label data, the only
measure). Flagged are the images beyond Tukey's far fence of either distance (Q3 + 3 IQR, at
least MIN_FENCE), which adapts to how spread out the class or data set is; each one's score is
the share of its class (or of the data set) that is less odd than it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from poetslearn.check.neighbours import Neighbours

FENCE_IQRS = 3.0
# The least fence, in cosine distance: closer than that to its neighbours, an image is like them
# (a data set of near-identical images has no spread, and a fence of 0 would flag noise).
MIN_FENCE = 0.05
MIN_IMAGES = 8  # fewer images than this: no spread to measure oddness against
BLOCK_ELEMENTS = 1 << 26  # similarities held at once when placing images in another class


@dataclass
class Outliers:
    rows: np.ndarray  # [M] image rows, oddest first
    scores: np.ndarray  # [M] share of its class (or the data set) less odd, 0..1
    within: list[str]  # [M] "its class" or "the data set": where it is odd
    distance: np.ndarray  # [N] every image's mean distance to its nearest images overall
    class_fences: dict[int, float] = field(default_factory=dict)  # label -> its far fence


def mean_distance(neighbours: Neighbours) -> np.ndarray:
    return (1.0 - neighbours.similarities).mean(axis=1)


def far_fence(distance: np.ndarray) -> float:
    q1, q3 = np.quantile(distance, [0.25, 0.75])
    return max(float(q3 + FENCE_IQRS * (q3 - q1)), MIN_FENCE)


def _beyond_fence(distance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positions beyond the far fence, the share of images less odd than each)."""
    if len(distance) < MIN_IMAGES:
        return np.zeros(0, np.int64), np.zeros(0)
    odd = np.flatnonzero(distance > far_fence(distance))
    return odd, np.searchsorted(np.sort(distance), distance[odd], side="left") / len(distance)


def fit_class(
    units: np.ndarray, members: np.ndarray, rows: np.ndarray, fence: float, k: int
) -> np.ndarray:
    """[len(rows)] booleans: whether each image at `rows` ([N, dim] unit rows) lies within
    `fence` of its k nearest images among `members` (the rows of a class it is not labelled
    with), in one product for all of them."""
    if not len(rows) or not len(members):
        return np.zeros(len(rows), bool)
    k = min(k, len(members))
    block = max(1, BLOCK_ELEMENTS // len(members))  # similarities held at once
    inside = np.zeros(len(rows), bool)
    for start in range(0, len(rows), block):
        sims = units[rows[start : start + block]] @ units[members].T
        nearest = np.partition(sims, len(members) - k, axis=1)[:, len(members) - k :]
        inside[start : start + block] = (1.0 - nearest).mean(axis=1) <= fence
    return inside


def find_outliers(
    neighbours: Neighbours,
    labels: np.ndarray | None = None,
    neighbours_among: Callable[[np.ndarray], Neighbours] | None = None,
) -> Outliers:
    """Outliers among all images, and, given single-label `labels` and `neighbours_among(rows)`
    (the neighbours of those rows among themselves), among each class."""
    distance = mean_distance(neighbours) if neighbours.k else np.zeros(len(neighbours.indices))
    found: dict[int, tuple[float, str]] = {}
    fences: dict[int, float] = {}
    if labels is not None and neighbours_among is not None:
        for label in np.unique(labels):
            rows = np.flatnonzero(labels == label)
            if len(rows) < MIN_IMAGES:
                continue
            within = mean_distance(neighbours_among(rows))
            fences[int(label)] = far_fence(within)
            odd, scores = _beyond_fence(within)
            for row, score in zip(rows[odd].tolist(), scores.tolist()):
                found[row] = (score, "its class")
    if neighbours.k:
        odd, scores = _beyond_fence(distance)
        for row, score in zip(odd.tolist(), scores.tolist()):
            if row not in found or found[row][0] < score:
                found[row] = (score, "the data set")
    order = sorted(found, key=lambda row: (-found[row][0], -distance[row], row))
    return Outliers(
        np.array(order, np.int64),
        np.array([found[r][0] for r in order]),
        [found[r][1] for r in order],
        distance,
        fences,
    )
