"""The feature extractor: raw RGB pixels in, bottleneck vectors out.

Resizing and scaling live here, inside the TensorFlow function, so every caller (bottleneck
extraction, the exported graph, `label`) feeds plain 0..255 pixels of any size.
"""

from __future__ import annotations

import hashlib
import json

from poetslearn.architectures import Architecture
from poetslearn.weights import weights_fingerprint

# Bump when anything about how vectors are computed changes, to invalidate every cached vector.
EXTRACTOR_VERSION = 1


def preprocess(images, arch: Architecture):
    """[N, H, W, 3] float32 0..255 -> [N, s, s, 3] network input (scaled to [-1, 1])."""
    import tensorflow as tf

    size = (arch.input_size, arch.input_size)
    resized = tf.image.resize(images, size, method="bilinear", antialias=True)
    return (resized - arch.input_mean) / arch.input_std


class FeatureExtractor:
    """Wraps a backbone with its preprocessing as one traced TensorFlow function."""

    def __init__(self, arch: Architecture, backbone) -> None:
        import tensorflow as tf

        self.arch, self.backbone = arch, backbone
        self.feature_dim = int(backbone.output_shape[-1])
        if self.feature_dim != arch.feature_dim:
            raise ValueError(f"{arch.name} backbone gives {self.feature_dim} features, the "
                             f"registry says {arch.feature_dim}")
        self.fn = tf.function(self.features, input_signature=[
            tf.TensorSpec([None, None, None, 3], tf.float32, name="input")])
        self._fingerprint: str | None = None

    def features(self, images):
        """[N, H, W, 3] float32 0..255 -> [N, feature_dim] float32 bottlenecks."""
        return self.backbone(preprocess(images, self.arch), training=False)

    def __call__(self, images):
        return self.fn(images).numpy()

    @property
    def fingerprint(self) -> str:
        """Identifies everything that changes a vector: architecture, preprocessing, weights."""
        if self._fingerprint is None:
            facts = {"architecture": self.arch.name, "preprocessing": self.arch.preprocessing,
                     "version": EXTRACTOR_VERSION, "weights": weights_fingerprint(self.backbone)}
            self._fingerprint = hashlib.sha256(json.dumps(facts, sort_keys=True).encode()
                                               ).hexdigest()
        return self._fingerprint
