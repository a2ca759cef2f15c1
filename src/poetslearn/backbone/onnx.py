"""A Keras convolutional backbone as an ONNX model, for the ONNX Runtime engine.

ONNX Runtime's convolutions (MLAS, NCHWc blocked layout) run Inception V3 faster than
TensorFlow or TFLite on these CPUs (scripts/benchmark.py measures all engines side by side).
The general converters (tf2onnx) lag behind TensorFlow releases, and our backbones use a handful
of layer kinds, so this module writes the graph itself: one ONNX node per Keras layer, batch
normalisation folded into the convolution before it, NCHW throughout. A layer kind it does not
know raises `UnsupportedLayer`, and the extractor then uses another engine.

The model takes [N, H, W, 3] float32 pixels (0..255), enlarges them to the network's input size
with plain bilinear interpolation when they are smaller (equal to the antialiased resize when
enlarging), scales them as the architecture says and returns [N, features].
"""

from __future__ import annotations

import numpy as np

OPSET = 18


class UnsupportedLayer(ValueError):
    """The backbone holds a layer this converter cannot express."""


class OnnxGraph:
    """Collects nodes and constant tensors, naming each uniquely."""

    def __init__(self) -> None:
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes: list = []
        self.constants: dict[str, np.ndarray] = {}

    def constant(self, name: str, value) -> str:
        self.constants[name] = np.asarray(value)
        return name

    def node(self, op: str, inputs: list[str], output: str, **attributes) -> str:
        self.nodes.append(self.helper.make_node(op, inputs, [output], **attributes))
        return output


def _activation(graph: OnnxGraph, name: str, tensor: str, activation: str) -> str:
    if activation == "linear":
        return tensor
    if activation == "relu":
        return graph.node("Relu", [tensor], f"{name}/relu")
    raise UnsupportedLayer(f"activation {activation!r} in layer {name!r}")


def _conv(graph: OnnxGraph, layer, tensor: str) -> str:
    config = layer.get_config()
    if config.get("data_format", "channels_last") != "channels_last" or tuple(
        config.get("dilation_rate", (1, 1))
    ) != (1, 1):
        raise UnsupportedLayer(f"{layer.name}: only channels_last, undilated convolutions")
    kernel = np.asarray(layer.kernel)
    if type(layer).__name__ == "DepthwiseConv2D":  # [kh, kw, C, m] -> [C*m, 1, kh, kw]
        kh, kw, channels, multiplier = kernel.shape
        weights = kernel.transpose(2, 3, 0, 1).reshape(channels * multiplier, 1, kh, kw)
        group = channels
    else:  # [kh, kw, in, out] -> [out, in, kh, kw]
        weights, group = kernel.transpose(3, 2, 0, 1), int(config.get("groups", 1))
    bias = np.asarray(layer.bias) if layer.use_bias else np.zeros(weights.shape[0], np.float32)
    attributes = {
        "kernel_shape": list(weights.shape[2:]),
        "strides": list(config["strides"]),
        "group": group,
    }
    if config["padding"] == "same":
        attributes["auto_pad"] = "SAME_UPPER"  # TensorFlow's SAME puts the extra pixel last
    out = graph.node(
        "Conv",
        [
            tensor,
            graph.constant(f"{layer.name}/W", weights),
            graph.constant(f"{layer.name}/b", bias),
        ],
        layer.name,
        **attributes,
    )
    return _activation(graph, layer.name, out, config.get("activation", "linear"))


def _fold_batch_norm(graph: OnnxGraph, layer, tensor: str) -> str:
    """y = gamma * (x - mean) / sqrt(var + eps) + beta, folded into the convolution before it."""
    producer = next((n for n in graph.nodes if n.output[0] == tensor), None)
    if producer is None or producer.op_type != "Conv" or layer.axis not in (-1, 3, [3], [-1]):
        raise UnsupportedLayer(f"{layer.name}: batch normalisation not right after a convolution")
    scale = 1.0 / np.sqrt(np.asarray(layer.moving_variance) + layer.epsilon)
    if layer.gamma is not None:
        scale = scale * np.asarray(layer.gamma)
    shift = -np.asarray(layer.moving_mean) * scale
    if layer.beta is not None:
        shift = shift + np.asarray(layer.beta)
    weights, bias = producer.input[1], producer.input[2]
    graph.constants[weights] = graph.constants[weights] * scale.reshape(-1, 1, 1, 1)
    graph.constants[bias] = graph.constants[bias] * scale + shift
    return tensor


def _layer(graph: OnnxGraph, layer, inputs: list[str]) -> str:
    kind, name, config = type(layer).__name__, layer.name, layer.get_config()
    if kind in ("Conv2D", "DepthwiseConv2D"):
        return _conv(graph, layer, inputs[0])
    if kind == "BatchNormalization":
        return _fold_batch_norm(graph, layer, inputs[0])
    if kind == "ReLU":
        if config.get("negative_slope") or config.get("threshold"):
            raise UnsupportedLayer(f"{name}: leaky or thresholded ReLU")
        if config.get("max_value") is None:
            return graph.node("Relu", inputs, name)
        return graph.node(
            "Clip",
            [
                inputs[0],
                graph.constant(f"{name}/lo", np.float32(0)),
                graph.constant(f"{name}/hi", np.float32(config["max_value"])),
            ],
            name,
        )
    if kind == "Activation":
        return _activation(graph, name, inputs[0], config["activation"])
    if kind == "ZeroPadding2D":
        (top, bottom), (left, right) = config["padding"]
        pads = np.array([0, 0, top, left, 0, 0, bottom, right], np.int64)
        return graph.node("Pad", [inputs[0], graph.constant(f"{name}/pads", pads)], name)
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        attributes = {"kernel_shape": list(config["pool_size"]), "strides": list(config["strides"])}
        if config["padding"] == "same":
            attributes["auto_pad"] = "SAME_UPPER"
        if kind == "AveragePooling2D":
            attributes["count_include_pad"] = 0  # Keras averages over the real pixels only
        return graph.node(
            "MaxPool" if kind == "MaxPooling2D" else "AveragePool", inputs, name, **attributes
        )
    if kind == "Concatenate":
        if config["axis"] not in (-1, 3):
            raise UnsupportedLayer(f"{name}: concatenation along axis {config['axis']}")
        return graph.node("Concat", inputs, name, axis=1)
    if kind == "GlobalAveragePooling2D":
        pooled = graph.node("GlobalAveragePool", inputs, f"{name}/4d")
        return graph.node("Flatten", [pooled], name)
    if kind == "Dropout":
        return inputs[0]
    raise UnsupportedLayer(f"layer {name!r} of kind {kind}")


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def input_stage(graph: OnnxGraph, arch, height: int, width: int, pixel_scale=None) -> str:
    """NHWC pixels -> NCHW, enlarged to the input size when smaller, scaled as the network
    expects; returns the tensor the first layer reads. `pixel_scale` (scale, shift) first turns
    another input format back into pixels: pixels = x * scale + shift."""
    size = arch.input_size
    tensor = graph.node("Transpose", ["pixels"], "nchw", perm=[0, 3, 1, 2])
    if pixel_scale is not None:
        scale, shift = (
            graph.constant(f"pixels/{k}", np.float32(v))
            for k, v in zip(("scale", "shift"), pixel_scale)
        )
        tensor = graph.node(
            "Add", [graph.node("Mul", [tensor, scale], "unscaled"), shift], "as_pixels"
        )
    if (height, width) != (size, size):
        scales = graph.constant(
            "resize/scales", np.array([1, 1, size / height, size / width], np.float32)
        )
        tensor = graph.node(
            "Resize",
            [tensor, "", scales],
            "resized",
            mode="linear",
            coordinate_transformation_mode="half_pixel",
        )
    tensor = graph.node(
        "Mul", [tensor, graph.constant("scale/mul", np.float32(1 / arch.input_std))], "mul"
    )
    return graph.node(
        "Sub",
        [tensor, graph.constant("scale/sub", np.float32(arch.input_mean / arch.input_std))],
        "scaled",
    )


def layers_stage(graph: OnnxGraph, backbone, tensor: str) -> str:
    """One ONNX node (or a few) per Keras layer; returns the backbone's output tensor."""
    # Keras tensors are matched by identity: each layer's output becomes an ONNX tensor name.
    names = {id(t): tensor for t in _as_list(backbone.inputs)}
    for layer in backbone.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        try:
            inputs = [names[id(t)] for t in _as_list(layer.input)]
        except (KeyError, AttributeError, ValueError) as e:  # shared or multi-input layers
            raise UnsupportedLayer(f"layer {layer.name!r} is not connected simply ({e})") from e
        names[id(layer.output)] = _layer(graph, layer, inputs)
    out = names.get(id(_as_list(backbone.outputs)[0]))
    if out is None:
        raise UnsupportedLayer("the backbone's output was not reached")
    return out


def model_bytes(
    graph: OnnxGraph,
    name: str,
    input_shape: list,
    output_shape: list,
    output: str = "features",
    metadata: dict[str, str] | None = None,
) -> bytes:
    """The collected nodes and constants as a checked, serialised ONNX model; `metadata` goes
    into its metadata_props (strings that any ONNX reader shows)."""
    import onnx

    helper = graph.helper
    initializers = [
        graph.numpy_helper.from_array(
            value.astype(np.float32) if value.dtype.kind == "f" else value, key
        )
        for key, value in graph.constants.items()
    ]
    model = helper.make_model(
        helper.make_graph(
            graph.nodes,
            name,
            [helper.make_tensor_value_info("pixels", onnx.TensorProto.FLOAT, input_shape)],
            [helper.make_tensor_value_info(output, onnx.TensorProto.FLOAT, output_shape)],
            initializers,
        ),
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="poetslearn",
    )
    model.ir_version = 9  # readable by every ONNX Runtime since 1.16
    if metadata:
        helper.set_model_props(model, metadata)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def convert_to_onnx(arch, backbone, input_hw: tuple[int, int] | None = None) -> bytes:
    """The backbone, with resizing and scaling in front, as a serialised ONNX model: input
    `pixels` [batch, h, w, 3] float32 0..255, output `features` [batch, dim]."""
    if not hasattr(backbone, "layers") or not hasattr(backbone, "inputs"):
        raise UnsupportedLayer(f"{type(backbone).__name__} is not a Keras functional model")
    size = arch.input_size
    height, width = input_hw or (size, size)
    if height > size or width > size:
        raise ValueError(f"the ONNX engine only enlarges; got {height}x{width} for {size}")
    graph = OnnxGraph()
    out = layers_stage(graph, backbone, input_stage(graph, arch, height, width))
    graph.node("Identity", [out], "features")
    return model_bytes(
        graph, arch.name, ["batch", height, width, 3], ["batch", int(backbone.output_shape[-1])]
    )
