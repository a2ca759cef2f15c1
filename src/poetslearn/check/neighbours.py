"""Each image's nearest neighbours among all the others by the cosine of their bottlenecks.

Near-copies, outliers and the report's "looks like" pictures all read this one table. Three
ways to search, by name in SEARCHES:

- `faiss_exact`: faiss's flat inner-product index, exact (every pair compared), BLAS blocks and
  a heap per query: 60,000 CIFAR-10 images at 256 features in about 13 s on two cores;
- `tensorflow_exact`: the same answer from TensorFlow's matmul and top_k a block of rows at a
  time, where faiss is not installed (about 2.5x slower);
- `faiss_hnsw`: faiss's HNSW graph, approximate, for data sets where comparing every pair would
  take too long; its recall against exact search is measured by scripts/check_benchmark.py.

`auto` searches exactly while N^2 * dim stays under EXACT_BUDGET multiply-adds (60,000 images
at 1,024 features), and with HNSW beyond.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from poetslearn.errors import PoetslearnError

log = logging.getLogger(__name__)

EXACT_BUDGET = 60_000 * 60_000 * 1024
BLOCK_ELEMENTS = 1 << 26  # similarities held at once by the TensorFlow search (256 MB)
HNSW_LINKS, HNSW_EF_SEARCH, HNSW_EF_CONSTRUCTION = 32, 128, 80


@dataclass
class Neighbours:
    """indices[i] are image i's k nearest other images, nearest first; similarities[i] their
    cosine similarities to it (1.0: the same direction)."""

    indices: np.ndarray  # [N, k] int64
    similarities: np.ndarray  # [N, k] float32
    search: str = ""  # which search found them

    @property
    def k(self) -> int:
        return self.indices.shape[1]


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Each row scaled to length 1 (a zero row stays zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


def _without_self(indices: np.ndarray, sims: np.ndarray, k: int):
    """From k + 1 results per row, the k that are not the row itself (an exact copy may come
    before the row in a tie, so the row is removed by index, not by position)."""
    n = len(indices)
    own = indices == np.arange(n)[:, None]
    # Rows where the search did not return the row itself lose their last (farthest) result.
    missing = ~own.any(axis=1)
    own[missing, -1] = True
    keep = ~own
    return indices[keep].reshape(n, k), sims[keep].reshape(n, k)


def _faiss_search(units: np.ndarray, k: int, index) -> tuple[np.ndarray, np.ndarray]:
    index.add(units)
    sims, indices = index.search(units, k + 1)
    return _without_self(indices.astype(np.int64), sims.astype(np.float32), k)


def faiss_exact(units: np.ndarray, k: int):
    import faiss

    return _faiss_search(units, k, faiss.IndexFlatIP(units.shape[1]))


def faiss_hnsw(units: np.ndarray, k: int):
    import faiss

    index = faiss.IndexHNSWFlat(units.shape[1], HNSW_LINKS, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    index.hnsw.efSearch = max(HNSW_EF_SEARCH, 2 * k)
    return _faiss_search(units, k, index)


def tensorflow_exact(units: np.ndarray, k: int):
    from poetslearn.quiet import import_tensorflow

    tf = import_tensorflow()
    n = len(units)
    indices = np.zeros((n, k + 1), np.int64)
    sims = np.zeros((n, k + 1), np.float32)
    everyone = tf.constant(units)
    block = max(1, min(8192, BLOCK_ELEMENTS // max(n, 1)))
    for start in range(0, n, block):
        rows = slice(start, min(n, start + block))
        top = tf.math.top_k(tf.matmul(units[rows], everyone, transpose_b=True), k + 1)
        sims[rows], indices[rows] = top.values.numpy(), top.indices.numpy()
    return _without_self(indices, sims, k)


SEARCHES: dict[str, Callable] = {
    "faiss_exact": faiss_exact,
    "tensorflow_exact": tensorflow_exact,
    "faiss_hnsw": faiss_hnsw,
}
SEARCH_CHOICES = ("auto", *SEARCHES)


def faiss_installed() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def chosen_search(search: str, n: int, dim: int) -> str:
    """The search `auto` stands for at this size, or the one asked for (checked)."""
    if search != "auto":
        if search.startswith("faiss") and not faiss_installed():
            raise PoetslearnError(
                f"--neighbour_search {search} needs faiss: pip install faiss-cpu (or choose "
                f"tensorflow_exact)."
            )
        return search
    if not faiss_installed():
        return "tensorflow_exact"
    return "faiss_exact" if n * n * dim <= EXACT_BUDGET else "faiss_hnsw"


def nearest_neighbours(vectors: np.ndarray, k: int, search: str = "auto") -> Neighbours:
    """The k nearest other images of every image (k is cut to N - 1)."""
    n = len(vectors)
    k = max(0, min(k, n - 1))
    if k == 0:
        return Neighbours(np.zeros((n, 0), np.int64), np.zeros((n, 0), np.float32), "none")
    name = chosen_search(search, n, vectors.shape[1])
    log.debug("nearest neighbours of %d images by %s", n, name)
    indices, sims = SEARCHES[name](unit_rows(vectors), k)
    return Neighbours(indices, np.minimum(sims, 1.0), name)
