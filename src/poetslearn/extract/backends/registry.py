"""Extraction backends by name (`RetrainConfig.extraction`): `local`, or `ray` (an optional
extra, imported only when asked for)."""

from __future__ import annotations

from collections.abc import Callable

from poetslearn.errors import PoetslearnError
from poetslearn.extract.backends.base import ExtractionBackend
from poetslearn.extract.backends.local import LocalExtraction


def _ray_backend(config) -> ExtractionBackend:
    from poetslearn.extract.backends.ray import ray_backend  # Ray is an optional extra

    return ray_backend(config)


EXTRACTION_BACKENDS: dict[str, Callable[[object], ExtractionBackend]] = {
    "local": lambda config: LocalExtraction(),
    "ray": _ray_backend,
}


def extraction_backend_for(config) -> ExtractionBackend:
    try:
        make = EXTRACTION_BACKENDS[config.extraction]
    except KeyError:
        raise PoetslearnError(
            f"Unknown extraction backend {config.extraction!r}; expected one "
            f"of {', '.join(EXTRACTION_BACKENDS)}."
        ) from None
    return make(config)
