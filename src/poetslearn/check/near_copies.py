"""Near-copies: the same photo re-encoded, resized, cropped, mirrored or recoloured, or shots of
a burst a moment apart.

Two tests, the cheap one first: their bottlenecks are nearest neighbours at least
`similarity` alike (cosine), and then their thumbnails look alike (`looks`). Groups form around
a leader, the image with the most such partners, and hold only images that passed both tests
with it, so a chain of look-alikes never joins two images that are not alike themselves. Pairs
with equal content keys are exact copies, reported as such and left out here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from poetslearn.check.looks import LOOKS_ALIKE, alike
from poetslearn.check.neighbours import Neighbours

DEFAULT_SIMILARITY = 0.75


@dataclass
class NearCopyGroup:
    rows: list[int]  # the leader first, then the others by row
    similarity: float  # the closest pair's thumbnail likeness


def candidate_pairs(
    neighbours: Neighbours, keys: list[bytes], similarity: float
) -> dict[tuple[int, int], float]:
    """{(i, j) with i < j: cosine} of neighbour pairs at least `similarity`, exact copies aside."""
    pairs = {}
    for row, position in np.argwhere(neighbours.similarities >= similarity).tolist():
        other = int(neighbours.indices[row, position])
        if keys[row] != keys[other]:
            pairs[(min(row, other), max(row, other))] = float(
                neighbours.similarities[row, position]
            )
    return pairs


def near_copy_groups(
    neighbours: Neighbours,
    keys: list[bytes],
    squares_of: Callable[[list[int]], dict],
    similarity: float = DEFAULT_SIMILARITY,
    looks_alike: float = LOOKS_ALIKE,
) -> list[NearCopyGroup]:
    """Groups of near-copies, the most alike first; `squares_of(rows)` gives each row's
    thumbnail squares (`looks.squares_of`)."""
    pairs = candidate_pairs(neighbours, keys, similarity)
    squares = squares_of(sorted({row for pair in pairs for row in pair}))
    partners: dict[int, dict[int, float]] = {}
    for i, j in pairs:
        if squares[i] is None or squares[j] is None:
            continue
        likeness = alike(squares[i], squares[j])
        if likeness >= looks_alike:
            partners.setdefault(i, {})[j] = likeness
            partners.setdefault(j, {})[i] = likeness
    taken: set[int] = set()
    groups = []
    for leader in sorted(partners, key=lambda r: (-len(partners[r]), r)):
        if leader in taken:
            continue
        others = sorted(r for r in partners[leader] if r not in taken)
        if others:
            taken.update([leader, *others])
            best = max(partners[leader][r] for r in others)
            groups.append(NearCopyGroup([leader, *others], best))
    return sorted(groups, key=lambda g: (-g.similarity, g.rows))
