"""Where bottlenecks and activations are computed. `base` holds what every backend shares
(`Batch`, `BatchResult`, `NodeCounts`, the `ExtractionBackend` protocol); `local` and `ray`
implement it; `registry` finds one by name. Imports point one way: backends -> base."""

from poetslearn.extract.backends.base import BatchResult, ExtractionBackend, NodeCounts
from poetslearn.extract.backends.local import LocalExtraction
from poetslearn.extract.backends.registry import EXTRACTION_BACKENDS, extraction_backend_for

__all__ = [
    "BatchResult",
    "ExtractionBackend",
    "NodeCounts",
    "LocalExtraction",
    "EXTRACTION_BACKENDS",
    "extraction_backend_for",
]
