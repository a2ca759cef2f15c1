"""The feature extractor: raw RGB pixels in, bottleneck vectors out.

Resizing and scaling live here, inside the TensorFlow function, so every caller (bottleneck
extraction, the exported graph, `label`) feeds plain 0..255 pixels of any size.
"""

from __future__ import annotations

import hashlib
import json
import logging

import numpy as np

from poetslearn.architectures import Architecture
from poetslearn.engines import ENGINE_BATCH, ENGINES, build_engine, is_exact, return_freed_memory
from poetslearn.weights import weights_fingerprint

log = logging.getLogger(__name__)

# Bump when anything about how vectors are computed changes, to invalidate every cached vector.
EXTRACTOR_VERSION = 1
# How far int8 features may stray from float ones (relative RMS) before the engine is refused as
# broken. Genuine MobileNets measured 0.32 (0.25/128 and 0.50/224, cosine similarity 0.95: their
# ReLU6 ranges are fixed, so more calibration images change nothing); garbage is near 1 or more.
INT8_MAX_RELATIVE_RMS = 0.5


def _resize(images: np.ndarray, hw) -> np.ndarray:
    import tensorflow as tf

    return tf.image.resize(images, tuple(hw), method="bilinear", antialias=True).numpy()


def preprocess(images, arch: Architecture):
    """[N, H, W, 3] float32 0..255 -> [N, s, s, 3] network input ((x - mean) / std of the arch)."""
    import tensorflow as tf

    size = (arch.input_size, arch.input_size)
    resized = tf.image.resize(images, size, method="bilinear", antialias=True)
    return (resized - arch.input_mean) / arch.input_std


class FeatureExtractor:
    """Wraps a backbone with its preprocessing; `extractor(pixels)` gives bottlenecks.

    `features` is the TensorFlow function (what the exported graph holds). Calling the extractor
    runs the chosen engine: with "auto", the first of the architecture's fast engines (TFLite or
    ONNX Runtime) that builds and agrees with TensorFlow on the first batch of each input size,
    else TensorFlow itself.
    """

    def __init__(self, arch: Architecture, backbone, engine: str = "tf", warn=None,
                 int8_calibration: np.ndarray | None = None) -> None:
        import tensorflow as tf

        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}; got {engine!r}")
        # Approximate engines (int8) give other vectors: they need calibration images, and the
        # cache keeps their vectors apart (see `fingerprint`).
        self.exact = is_exact(engine)
        if not self.exact and (int8_calibration is None or len(int8_calibration) == 0):
            raise ValueError(f"the {engine} engine needs calibration images")
        self.int8_calibration = None if self.exact else np.asarray(int8_calibration, np.float32)
        self.arch, self.backbone = arch, backbone
        self.feature_dim = int(backbone.output_shape[-1])
        if self.feature_dim != arch.feature_dim:
            raise ValueError(f"{arch.name} backbone gives {self.feature_dim} features, the "
                             f"registry says {arch.feature_dim}")
        self.fn = tf.function(self.features, input_signature=[
            tf.TensorSpec([None, None, None, 3], tf.float32, name="input")])
        self.requested_engine = engine
        self.engine_name: str | None = "tf" if engine == "tf" else None  # decided on first call
        self._engines: dict[tuple[int, int], object] = {}  # fast engine per input size
        self._warn = warn or log.warning
        self._fingerprint: str | None = None

    def features(self, images):
        """[N, H, W, 3] float32 0..255 -> [N, feature_dim] float32 bottlenecks."""
        return self.backbone(preprocess(images, self.arch), training=False)

    def prepare(self, images: np.ndarray) -> np.ndarray:
        """Shrinks images larger than the input size (antialiased, as the graph does).

        Smaller images are left alone: every engine enlarges them itself, on all cores. This
        runs in the thread that loads the next batch.
        """
        size = self.arch.input_size
        images = np.asarray(images, np.float32)
        if images.shape[1] <= size and images.shape[2] <= size:
            return images
        return _resize(images, (size, size))

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """[N, H, W, 3] float32 0..255 -> [N, feature_dim] float32 bottlenecks."""
        images = self.prepare(images)
        if self.engine_name == "tf":
            return self.fn(images).numpy()
        shape = tuple(images.shape[1:3])
        engine = self._engines.get(shape)
        if engine is None:
            engine = self._build_engine(images)
            if engine is None:  # fell back to TensorFlow
                return self.fn(images).numpy()
            self._engines[shape] = engine
        return engine(images)

    def release_engines(self) -> None:
        """Frees the fast engines (their models and buffers); a later call builds them again."""
        self._engines.clear()
        return_freed_memory()

    def _build_engine(self, sample: np.ndarray):
        """The first fast engine that builds for this input size and agrees with TensorFlow."""
        try:
            return self._first_working_engine(sample)
        finally:
            return_freed_memory()  # conversion buffers and the check's activations

    def _first_working_engine(self, sample: np.ndarray):
        names = self.arch.engines if self.requested_engine == "auto" else (self.requested_engine,)
        failures = []
        for name in names:
            try:
                calibration = None
                if not self.exact:
                    calibration = self.prepare(self.int8_calibration)
                    if calibration.shape[1:3] != sample.shape[1:3]:
                        calibration = _resize(calibration, sample.shape[1:3])
                engine = build_engine(name, self.arch, self.backbone,
                                      min(ENGINE_BATCH, len(sample)), tuple(sample.shape[1:3]),
                                      calibration)
                # Two images show a wrong conversion as well as more would, and TensorFlow
                # keeps memory in proportion (about 130 MB after 8 Inception V3 images).
                probe = sample[:2]
                fast, reference = engine(probe), self.fn(probe).numpy()
                if self.exact:
                    error = float(np.abs(fast - reference).max()
                                  / max(np.abs(reference).max(), 1e-12))
                    bound, what = 1e-4, "relative"
                else:
                    error = float(np.linalg.norm(fast - reference)
                                  / max(np.linalg.norm(reference), 1e-12))
                    bound, what = INT8_MAX_RELATIVE_RMS, "relative RMS"
                if not error <= bound:  # also catches NaN
                    raise RuntimeError(f"its features differ from TensorFlow's by {error:.1e} "
                                       f"({what}; at most {bound:g} allowed)")
                log.info("engine %s: features within %.1e (%s) of TensorFlow's", name, error,
                         what)
            except Exception as e:  # noqa: BLE001 - any failure means: try the next engine
                if self.requested_engine != "auto":
                    raise RuntimeError(f"The {name} engine cannot run {self.arch.name}: {e}. "
                                       f"Use --engine auto or --engine tf.") from e
                log.info("engine %s unavailable: %s", name, e)
                failures.append(f"{name}: {e}")
                continue
            self.engine_name = name
            return engine
        self._warn(f"No fast engine is available ({'; '.join(failures)}); computing bottlenecks "
                   f"with TensorFlow, which is slower.")
        self.engine_name = "tf"
        return None

    @property
    def fingerprint(self) -> str:
        """Identifies everything that changes a vector: architecture, preprocessing, weights."""
        if self._fingerprint is None:
            facts = {"architecture": self.arch.name, "preprocessing": self.arch.preprocessing,
                     "version": EXTRACTOR_VERSION, "weights": weights_fingerprint(self.backbone)}
            if not self.exact:  # exact engines share vectors; an approximate one has its own
                facts["engine"] = self.requested_engine
                facts["calibration"] = hashlib.sha256(self.int8_calibration.tobytes()
                                                      ).hexdigest()
            self._fingerprint = hashlib.sha256(json.dumps(facts, sort_keys=True).encode()
                                               ).hexdigest()
        return self._fingerprint
