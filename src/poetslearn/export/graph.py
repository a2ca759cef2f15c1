"""The frozen graph export: preprocessing, backbone and the new layer in one GraphDef, with the
labels file and the metadata beside it, written together.

The graph takes raw RGB pixels: input `input` ([N, H, W, 3] float32, 0..255, any size), output
`final_result` ([N, classes] softmax); `bottleneck` is the feature vector in between. With
`--input_format codelab` it takes [1, s, s, 3] scaled as (x - 128) / 128 instead, the way the
codelab's label_image.py and Android apps feed a graph.
"""

from __future__ import annotations

from pathlib import Path

from poetslearn.artifacts.metadata import (
    BOTTLENECK_NAME,
    INPUT_NAME,
    OUTPUT_NAME,
    ModelFacts,
    build_metadata,
    input_scaling,
    metadata_bytes,
    metadata_path_for,
)
from poetslearn.backbone.convert import frozen_graph_def
from poetslearn.outputs import write_files_atomic
from poetslearn.train.head import OutputLayer


def to_pixels(images, input_format: str):
    """The graph's input as 0..255 pixels: codelab-format input is (x - 128) / 128, undone here so
    that the network then scales exactly as it was trained (to within float rounding)."""
    if input_format == "codelab":
        mean, std = input_scaling(input_format)
        return images * std + mean
    return images


def mirror_averaged(features_of, mirror: bool):
    """`features_of`, or with --test_time_mirror the mean of the features of the images and of
    their mirror images (one pass over both, as a batch twice as large), as retrain scored them."""
    if not mirror:
        return features_of

    def averaged(pixels):
        import tensorflow as tf

        plain, mirrored = tf.split(
            features_of(tf.concat([pixels, tf.reverse(pixels, axis=[2])], axis=0)), 2, axis=0
        )
        return (plain + mirrored) / 2

    return averaged


def build_frozen_graph(
    extractor, layer: OutputLayer, input_format: str = "pixels", mirror: bool = False
):
    """Returns a GraphDef with every variable folded into constants."""
    import tensorflow as tf

    size = extractor.arch.input_size
    shape = [None, None, None, 3] if input_format == "pixels" else [1, size, size, 3]

    @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32, name=INPUT_NAME)])
    def classify(images):
        # Made inside the function so the graph keeps these names (a reader can find the layer).
        weights = tf.constant(layer.weights, name="final_weights")
        biases = tf.constant(layer.biases, name="final_biases")
        features_of = mirror_averaged(extractor.features, mirror)
        features = tf.identity(features_of(to_pixels(images, input_format)), name=BOTTLENECK_NAME)
        logits = tf.matmul(features, weights) + biases
        # tf.nn.softmax, or tf.nn.sigmoid for multi-label data: named as the codelab's output.
        return getattr(tf.nn, layer.activation)(logits, name=OUTPUT_NAME)

    return frozen_graph_def(classify)


def export_classifier(
    extractor, layer: OutputLayer, facts: ModelFacts, graph_path: Path, labels_path: Path
) -> dict[str, Path]:
    """Writes graph, labels and metadata as one; returns {what: path}."""
    graph_def = build_frozen_graph(extractor, layer, facts.input_format, facts.test_time_mirror)
    meta = build_metadata(facts, "frozen_graph", labels_file=Path(labels_path).name)
    metadata_path = metadata_path_for(graph_path)
    write_files_atomic(
        {
            Path(graph_path): graph_def.SerializeToString(),
            Path(labels_path): "".join(f"{name}\n" for name in facts.labels).encode("utf-8"),
            metadata_path: metadata_bytes(meta),
        }
    )
    return {"graph": Path(graph_path), "labels": Path(labels_path), "metadata": metadata_path}
