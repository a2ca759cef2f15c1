"""The `.tflite` export: input [1, s, s, 3] float32 pixels 0..255 (or the codelab format),
output softmax; float32, or int8 calibrated on training images. It carries standard TFLite Model
Metadata (normalization, labels; what MediaPipe Tasks needs) and poetslearn's own metadata inside
it, and the same metadata beside it as JSON, so `label` and `evaluate` need nothing else."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from poetslearn.artifacts.metadata import (
    INPUT_NAME,
    OUTPUT_NAME,
    ModelFacts,
    build_metadata,
    input_scaling,
    metadata_bytes,
    metadata_path_for,
)
from poetslearn.artifacts.tflite_bundle import embed
from poetslearn.artifacts.tflite_metadata import associated_files, model_metadata
from poetslearn.artifacts.tflite_metadata_schema import encode_model_metadata
from poetslearn.backbone.convert import to_tflite
from poetslearn.data.images import resize_batch
from poetslearn.data.sources import calibration_images
from poetslearn.errors import PoetslearnError
from poetslearn.export.graph import mirror_averaged, to_pixels
from poetslearn.outputs import write_files_atomic
from poetslearn.train.head import OutputLayer


def representative_images(split, extractor, count: int = 100) -> np.ndarray:
    """Up to `count` training images at the network's input size: int8 calibration data."""
    size = extractor.arch.input_size
    return resize_batch(calibration_images(split, size, count), (size, size))


def _calibration(representative: np.ndarray | None, input_format: str):
    """The converter's representative inputs: the images as the model's input takes them."""
    if representative is None or len(representative) == 0:
        raise PoetslearnError("int8 quantization needs representative training images.")
    shift, scale = input_scaling(input_format)
    return lambda: (
        [((image[np.newaxis] - shift) / scale).astype(np.float32)] for image in representative
    )


def export_tflite(
    extractor,
    layer: OutputLayer,
    facts: ModelFacts,
    path: Path,
    quantize: str | None = None,
    representative=None,
) -> dict[str, Path]:
    """Writes the .tflite model and its metadata; `quantize="int8"` makes a full-integer model
    calibrated on `representative` ([N, s, s, 3] training images), input and output float32."""
    import tensorflow as tf

    if quantize not in (None, "int8"):
        raise PoetslearnError(f"--tflite_quantize must be 'int8'; got {quantize!r}.")
    size, arch = extractor.arch.input_size, extractor.arch

    @tf.function(input_signature=[tf.TensorSpec([1, size, size, 3], tf.float32, name=INPUT_NAME)])
    def classify(images):
        # Already at the input size: no resize op (TFLite has no antialiased resize).
        pixels = to_pixels(images, facts.input_format)
        features = mirror_averaged(
            lambda x: extractor.backbone((x - arch.input_mean) / arch.input_std, training=False),
            facts.test_time_mirror,
        )(pixels)
        mean, std, weights, biases = layer.standardised()  # quantizes far better than folded
        logits = tf.matmul((features - mean) / std, weights) + biases
        return getattr(tf.nn, layer.activation)(logits, name=OUTPUT_NAME)  # softmax, sigmoid

    calibration = _calibration(representative, facts.input_format) if quantize else None
    meta = build_metadata(facts, "tflite", quantization=quantize or "float32")
    model = embed(
        to_tflite(classify, calibration),
        encode_model_metadata(model_metadata(meta)),
        associated_files(meta),
    )
    meta_path = metadata_path_for(path)
    write_files_atomic({Path(path): model, meta_path: metadata_bytes(meta)})
    return {"tflite": Path(path), "tflite_metadata": meta_path}
