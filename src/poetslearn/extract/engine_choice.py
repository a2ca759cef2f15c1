"""Which engine computes an extractor's features: the one asked for, or with "auto" the
architecture's engines fastest first, each built for the input size and checked against
TensorFlow on two images before it is trusted (exact engines to 1e-4 relative, int8 within a
bound on the relative RMS); TensorFlow itself when none passes."""

from __future__ import annotations

import logging

import numpy as np

from poetslearn.data.images import resize_batch
from poetslearn.errors import EngineError
from poetslearn.extract.engines import ENGINE_BATCH, ENGINES, TensorFlowEngine, build_engine

log = logging.getLogger(__name__)

# How far int8 features may stray from float ones (relative RMS) before the engine is refused as
# broken. Genuine MobileNets measured 0.32 (0.25/128 and 0.50/224, cosine similarity 0.95: their
# ReLU6 ranges are fixed, so more calibration images change nothing); garbage is near 1 or more.
INT8_MAX_RELATIVE_RMS = 0.5


def first_working_engine(extractor, sample: np.ndarray, warn) -> tuple[str, object]:
    """(name, engine): the first of the engines asked for (with "auto", the architecture's,
    fastest first) that builds for this input size and agrees with TensorFlow; TensorFlow
    itself, with a warning, when none does."""
    auto = extractor.requested_engine == "auto"
    names = extractor.arch.engines if auto else (extractor.requested_engine,)
    failures = []
    for name in names:
        try:
            engine = checked_engine(extractor, name, sample)
        except Exception as e:  # noqa: BLE001 - any failure means: try the next engine
            if not auto:
                raise EngineError(
                    f"The {name} engine cannot run {extractor.arch.name}: {e}. "
                    f"Use --engine auto or --engine tf."
                ) from e
            log.info("engine %s unavailable: %s", name, e)
            failures.append(f"{name}: {e}")
            continue
        return name, engine
    warn(
        f"No fast engine is available ({'; '.join(failures)}); computing bottlenecks "
        f"with TensorFlow, which is slower."
    )
    return "tf", new_engine(extractor, "tf", sample)


def new_engine(extractor, name: str, sample: np.ndarray):
    """The engine `name` for inputs shaped like `sample` (int8 engines calibrated at that size)."""
    if name == "tf":
        return TensorFlowEngine(extractor.fn)  # the function the export holds, traced once
    calibration = None
    if ENGINES[name].needs_calibration:
        calibration = extractor.prepare(extractor.int8_calibration)
        if calibration.shape[1:3] != sample.shape[1:3]:
            calibration = resize_batch(calibration, sample.shape[1:3])
    return build_engine(
        name,
        extractor.arch,
        extractor.backbone,
        min(ENGINE_BATCH, len(sample)),
        tuple(sample.shape[1:3]),
        calibration,
        extractor.threads,
    )


def checked_engine(extractor, name: str, sample: np.ndarray):
    """Builds the engine and compares its features with TensorFlow's on two images."""
    engine = new_engine(extractor, name, sample)
    if name == "tf":
        return engine  # the reference itself
    # Two images show a wrong conversion as well as more would, and TensorFlow keeps
    # memory in proportion (about 130 MB after 8 Inception V3 images).
    probe = sample[:2]
    fast, reference = engine(probe), extractor.fn(probe).numpy()
    if extractor.exact:
        error = float(np.abs(fast - reference).max() / max(np.abs(reference).max(), 1e-12))
        bound, what = 1e-4, "relative"
    else:
        error = float(np.linalg.norm(fast - reference) / max(np.linalg.norm(reference), 1e-12))
        bound, what = INT8_MAX_RELATIVE_RMS, "relative RMS"
    if not error <= bound:  # also catches NaN
        raise RuntimeError(
            f"its features differ from TensorFlow's by {error:.1e} ({what}; "
            f"at most {bound:g} allowed)"
        )
    log.info("engine %s: features within %.1e (%s) of TensorFlow's", name, error, what)
    return engine
