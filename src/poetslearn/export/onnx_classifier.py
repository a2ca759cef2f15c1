"""A whole classifier as ONNX (the `--onnx_output` export): the backbone written by the ONNX
writer of `backbone.onnx`, then the new layer and its activation. With test-time mirroring
(`retrain --test_time_mirror`) the batch goes through the network beside its mirror images and
each image's features are averaged with its mirror image's, as the TensorFlow exports do
(`export.graph.mirror_averaged`)."""

from __future__ import annotations

import numpy as np

from poetslearn.backbone.onnx import (
    OnnxGraph,
    UnsupportedLayer,
    input_stage,
    layers_stage,
    model_bytes,
)

# The classifier's output layer: its activation -> the ONNX operator and its attributes.
OUTPUT_ACTIVATIONS = {"softmax": ("Softmax", {"axis": 1}), "sigmoid": ("Sigmoid", {})}


def convert_classifier_to_onnx(
    arch,
    backbone,
    weights: np.ndarray,
    biases: np.ndarray,
    pixel_scale: tuple[float, float] | None = None,
    metadata: dict[str, str] | None = None,
    activation: str = "softmax",
    mirror: bool = False,
) -> bytes:
    """A whole classifier as ONNX, through the same writer as the backbone: input `pixels`
    [batch, s, s, 3] float32 (0..255, or the codelab format undone by `pixel_scale`), the
    network, then softmax (or, multi-label, a sigmoid per label) of features @ weights + biases
    as `probabilities` [batch, classes]. `mirror`: features averaged with the mirror image's."""
    if not hasattr(backbone, "layers") or not hasattr(backbone, "inputs"):
        raise UnsupportedLayer(f"{type(backbone).__name__} is not a Keras functional model")
    size = arch.input_size
    graph = OnnxGraph()
    network_input = input_stage(graph, arch, size, size, pixel_scale)
    if mirror:
        network_input = with_mirror_images(graph, network_input)
    features = layers_stage(graph, backbone, network_input)
    if mirror:
        features = mean_with_mirror_images(graph, features, int(np.shape(weights)[0]))
    weights_name = graph.constant("final/weights", np.asarray(weights, np.float32))
    logits = graph.node("MatMul", [features, weights_name], "final/matmul")
    biases_name = graph.constant("final/biases", np.asarray(biases, np.float32))
    logits = graph.node("Add", [logits, biases_name], "final/logits")
    op, attributes = OUTPUT_ACTIVATIONS[activation]
    graph.node(op, [logits], "probabilities", **attributes)
    return model_bytes(
        graph,
        arch.name,
        ["batch", size, size, 3],
        ["batch", int(np.shape(weights)[1])],
        "probabilities",
        metadata,
    )


def with_mirror_images(graph, nchw: str) -> str:
    """[N, 3, s, s] -> [2N, 3, s, s]: the images, then each flipped left to right."""
    flipped = graph.node(
        "Slice",
        [
            nchw,
            graph.constant("mirror/starts", np.array([-1], np.int64)),
            graph.constant("mirror/ends", np.array([np.iinfo(np.int64).min], np.int64)),
            graph.constant("mirror/axes", np.array([3], np.int64)),
            graph.constant("mirror/steps", np.array([-1], np.int64)),
        ],
        "mirror/flipped",
    )
    return graph.node("Concat", [nchw, flipped], "mirror/both", axis=0)


def mean_with_mirror_images(graph, features: str, dim: int) -> str:
    """[2N, dim] (the images' features, then their mirror images') -> [N, dim], the mean."""
    pairs = graph.node(
        "Reshape",
        [features, graph.constant("mirror/pairs_shape", np.array([2, -1, dim], np.int64))],
        "mirror/pairs",
    )
    axes = graph.constant("mirror/mean_axes", np.array([0], np.int64))
    return graph.node("ReduceMean", [pairs, axes], "mirror/mean", keepdims=0)
