"""Writing the trained classifier: frozen graph, labels file and metadata, each atomically.

The frozen graph holds preprocessing, backbone and the new layer, so it takes raw RGB pixels:
input `input` ([N, H, W, 3] float32, 0..255, any size), output `final_result` ([N, classes]
softmax); `bottleneck` is the feature vector in between. The metadata file beside it records
everything `label` would otherwise need flags for.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from poetslearn import __version__
from poetslearn.block_features import pooled_layers
from poetslearn.errors import PoetslearnError
from poetslearn.extractor import calibration_images
from poetslearn.head import SoftmaxLayer
from poetslearn.outputs import describe_os_error, metadata_path_for, write_files_atomic
from poetslearn.quiet import native_stderr_silenced
from poetslearn.saved_model import export_saved_model

INPUT_NAME = "input"
OUTPUT_NAME = "final_result"
BOTTLENECK_NAME = "bottleneck"
METADATA_FORMAT = "poetslearn-graph/1"
# --input_format codelab: what the codelab's label_image.py flags and Android apps use.
CODELAB_MEAN, CODELAB_STD = 128.0, 128.0


def build_frozen_graph(extractor, layer: SoftmaxLayer, input_format: str = "pixels"):
    """Returns a GraphDef with every variable folded into constants.

    `input_format` "pixels": `input` takes [N, H, W, 3] pixels 0..255 of any size. "codelab":
    `input` takes [1, s, s, 3] already resized and scaled as (x - 128) / 128, the way the
    codelab's label_image.py and Android apps feed a graph.
    """
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2)

    size = extractor.arch.input_size
    shape = [None, None, None, 3] if input_format == "pixels" else [1, size, size, 3]

    @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32, name=INPUT_NAME)])
    def classify(images):
        # Made inside the function so the graph keeps these names (a reader can find the layer).
        weights = tf.constant(layer.weights, name="final_weights")
        biases = tf.constant(layer.biases, name="final_biases")
        features = tf.identity(extractor.features(to_pixels(images, input_format)),
                               name=BOTTLENECK_NAME)
        logits = tf.matmul(features, weights) + biases
        return tf.nn.softmax(logits, name=OUTPUT_NAME)

    frozen = convert_variables_to_constants_v2(classify.get_concrete_function())
    return frozen.graph.as_graph_def()


def to_pixels(images, input_format: str):
    """The graph's input as 0..255 pixels: codelab-format input is (x - 128) / 128, undone here so
    that the network then scales exactly as it was trained (to within float rounding)."""
    if input_format == "codelab":
        return images * CODELAB_STD + CODELAB_MEAN
    return images


def input_facts(arch, input_format: str, fixed_size: bool = False) -> dict:
    """What the metadata says about the model's input, for `label` and for people; `fixed_size`:
    the model takes [1, s, s, 3] only (TFLite), even as pixels."""
    size = arch.input_size
    if input_format == "codelab":
        return {"input_format": "codelab", "input_mean": CODELAB_MEAN, "input_std": CODELAB_STD,
                "input": f"RGB, float32, [1, {size}, {size}, 3], resized by the caller and scaled "
                         f"as (x - {CODELAB_MEAN:g}) / {CODELAB_STD:g} (label_image.py "
                         f"--input_mean {CODELAB_MEAN:g} --input_std {CODELAB_STD:g})"}
    if fixed_size:
        return {"input_format": "pixels", "input": f"RGB pixels, float32 0..255, [1, {size}, "
                                                   f"{size}, 3] (resize before feeding)"}
    return {"input_format": "pixels",
            "input": "RGB pixels, float32 0..255, [N, H, W, 3], any size (resized inside the "
                     "graph)"}


def export_classifier(extractor, layer: SoftmaxLayer, class_names: list[str], graph_path: Path,
                      labels_path: Path, metadata: dict, input_format: str = "pixels"
                      ) -> dict[str, Path]:
    """Writes graph, labels and metadata; returns {what: path}."""
    graph_def = build_frozen_graph(extractor, layer, input_format)
    arch = extractor.arch
    meta = {
        "format": METADATA_FORMAT,
        "poetslearn_version": __version__,
        "architecture": arch.name,
        "input_size": [arch.input_size, arch.input_size],
        "input_tensor": f"{INPUT_NAME}:0",
        "output_tensor": f"{OUTPUT_NAME}:0",
        "bottleneck_tensor": f"{BOTTLENECK_NAME}:0",
        "feature_dim": extractor.feature_dim,
        "bottleneck_blocks": extractor.bottleneck_blocks,
        **({"pooled_layers": list(pooled_layers(arch, extractor.bottleneck_blocks))}
           if extractor.bottleneck_blocks > 1 else {}),
        **input_facts(arch, input_format),
        "preprocessing": arch.preprocessing,
        "labels": list(class_names),
        "labels_file": Path(labels_path).name,
        **metadata,
    }
    metadata_path = metadata_path_for(graph_path)
    write_files_atomic({
        Path(graph_path): graph_def.SerializeToString(),
        Path(labels_path): "".join(f"{name}\n" for name in class_names).encode("utf-8"),
        metadata_path: (json.dumps(meta, indent=2, ensure_ascii=False) + "\n").encode("utf-8")})
    return {"graph": Path(graph_path), "labels": Path(labels_path), "metadata": metadata_path}


def export_tflite(extractor, layer: SoftmaxLayer, class_names: list[str], path: Path,
                  quantize: str | None = None, representative=None,
                  input_format: str = "pixels") -> dict[str, Path]:
    """A .tflite classifier: input [1, s, s, 3] float32 pixels 0..255, output softmax.

    `quantize="int8"` makes a full-integer model calibrated on `representative` ([N, s, s, 3]
    training images); its input and output stay float32. The metadata JSON beside it carries
    labels and input size, so `poetslearn label --graph model.tflite` needs nothing else.
    """
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2)

    size = extractor.arch.input_size

    @tf.function(input_signature=[tf.TensorSpec([1, size, size, 3], tf.float32, name=INPUT_NAME)])
    def classify(images):
        # Already at the input size: no resize op (TFLite has no antialiased resize).
        arch = extractor.arch
        pixels = to_pixels(images, input_format)
        features = extractor.backbone((pixels - arch.input_mean) / arch.input_std,
                                      training=False)
        mean, std, weights, biases = layer.standardised()  # quantizes far better than folded
        logits = tf.matmul((features - mean) / std, weights) + biases
        return tf.nn.softmax(logits, name=OUTPUT_NAME)

    frozen = convert_variables_to_constants_v2(classify.get_concrete_function())
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen], frozen.graph)
    if quantize == "int8":
        if representative is None or len(representative) == 0:
            raise PoetslearnError("int8 quantization needs representative training images.")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        scale = CODELAB_STD if input_format == "codelab" else 1.0
        shift = CODELAB_MEAN if input_format == "codelab" else 0.0
        converter.representative_dataset = lambda: (
            [((image[np.newaxis] - shift) / scale).astype(np.float32)]
            for image in representative)
    elif quantize is not None:
        raise PoetslearnError(f"--tflite_quantize must be 'int8'; got {quantize!r}.")
    with native_stderr_silenced():
        model = converter.convert()
    meta = {"format": METADATA_FORMAT, "poetslearn_version": __version__,
            "architecture": extractor.arch.name, "input_size": [size, size],
            **input_facts(extractor.arch, input_format, fixed_size=True),
            "quantization": quantize or "float32", "labels": list(class_names),
            "preprocessing": extractor.arch.preprocessing}
    meta_path = metadata_path_for(path)
    write_files_atomic({Path(path): model, meta_path: (json.dumps(
        meta, indent=2, ensure_ascii=False) + "\n").encode()})
    return {"tflite": Path(path), "tflite_metadata": meta_path}


def representative_images(split, extractor, count: int = 100) -> np.ndarray:
    """Up to `count` training images at the network's input size: int8 calibration data."""
    import tensorflow as tf

    size = extractor.arch.input_size
    return tf.image.resize(calibration_images(split, size, count), (size, size),
                           method="bilinear", antialias=True).numpy()


def build_metadata(dataset, splits: dict, weights, trained, score, extractor, config) -> dict:
    """What the metadata file records of the run, beside the facts of the graph itself."""
    return {
        "dataset": {"name": dataset.name, "source": dataset.source,
                    "sizes": {name: len(split) for name, split in splits.items()},
                    "validation_percentage": config.validation_percentage,
                    "testing_percentage": config.testing_percentage},
        "weights": weights.as_dict(),
        "validation_accuracy": trained.best_validation_accuracy,
        "test_accuracy": score.accuracy,
        # When every vector was cached no engine ran: the requested one says how they were made.
        "bottleneck_engine": extractor.engine_name or extractor.requested_engine,
        "test_size": score.size,
        **score.extra,
        "best_step": trained.best_step,
        **({"fine_tuning": trained.details} if trained.details else {}),
        "training": {k: getattr(config, k) for k in (
            "how_many_training_steps", "learning_rate", "train_batch_size", "weight_decay",
            "seed")},
    }


def export_everything(extractor, trained, dataset, splits: dict, weights, score,
                      config) -> dict[str, Path]:
    """The retrain stage: frozen graph, labels and metadata, then the SavedModel and TFLite
    model when asked for; returns {what: path}."""
    layer, names = trained.layer, dataset.class_names
    metadata = build_metadata(dataset, splits, weights, trained, score, extractor, config)
    paths = export_classifier(extractor, layer, names, config.output_graph,
                              config.output_labels, metadata, config.input_format)
    try:
        if config.saved_model_dir is not None:
            paths["saved_model"] = export_saved_model(extractor, layer, names,
                                                      config.saved_model_dir)
        if config.tflite_output is not None:
            representative = (representative_images(splits["train"], extractor)
                              if config.tflite_quantize else None)
            paths.update(export_tflite(extractor, layer, names, config.tflite_output,
                                       config.tflite_quantize, representative,
                                       config.input_format))
    except OSError as e:  # the new graph is in place already: say so, not "left intact"
        written = ", ".join(str(p) for p in paths.values())
        raise PoetslearnError(describe_os_error(
            e, f"the new {written} were written, the later exports were not.")) from e
    return paths
