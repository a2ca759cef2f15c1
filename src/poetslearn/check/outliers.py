"""Images unlike the rest of the data set: off-topic pictures, blank or broken frames.

An image's oddness is its mean cosine distance to its k nearest other images (the kNN distance
cleanlab's Datalab also uses): a photo of a flower among flowers has close neighbours, a
screenshot among them has none. Flagged are the images beyond Tukey's far fence of that
distance (Q3 + 3 IQR, at least MIN_FENCE), which adapts to how spread out the data set is;
each one's score is the share of the data set that is less odd than it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from poetslearn.check.neighbours import Neighbours

FENCE_IQRS = 3.0
# The least fence, in cosine distance: closer than that to its neighbours, an image is like them
# (a data set of near-identical images has no spread, and a fence of 0 would flag noise).
MIN_FENCE = 0.05


@dataclass
class Outliers:
    rows: np.ndarray  # [M] image rows, oddest first
    scores: np.ndarray  # [M] share of images less odd, 0..1
    distance: np.ndarray  # [N] every image's mean distance to its neighbours
    fence: float


def find_outliers(neighbours: Neighbours) -> Outliers:
    distance = (1.0 - neighbours.similarities).mean(axis=1) if neighbours.k else None
    if distance is None or len(distance) < 8:  # no spread to measure oddness against
        empty = np.zeros(0, np.int64)
        return Outliers(empty, np.zeros(0), np.zeros(len(neighbours.indices)), float("inf"))
    q1, q3 = np.quantile(distance, [0.25, 0.75])
    fence = max(float(q3 + FENCE_IQRS * (q3 - q1)), MIN_FENCE)
    rows = np.flatnonzero(distance > fence)
    rows = rows[np.argsort(-distance[rows], kind="stable")]
    ranks = np.searchsorted(np.sort(distance), distance[rows], side="left") / len(distance)
    return Outliers(rows, ranks, distance, fence)
