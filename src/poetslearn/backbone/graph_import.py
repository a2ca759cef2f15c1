"""Importing the codelab's MobileNet v1 frozen graphs into our Keras MobileNet.

Handles the three kinds of graph the codelab world has: Google's float `frozen_graph.pb` (batch
norm as separate ops), the weight-quantized `quantized_graph.pb` (8-bit weights behind
`Dequantize` ops, batch norm folded into the convolutions) and a codelab `retrained_graph.pb`
(a float MobileNet with an extra head, which is ignored).

Rather than matching op names of each kind, each layer is read the same way: from its Relu6 walk
back through `Add(offset)`, an optional `Mul(scale)`, to the convolution and its kernel. TensorFlow
evaluates those constant sub-graphs (Identity, Rsqrt, Dequantize...), so every kind yields the
same facts: kernel, per-channel scale and offset. They become the Keras layers' kernel and batch
norm with mean 0 and variance 1 - epsilon, which reproduces `conv * scale + offset` exactly.
"""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from poetslearn.errors import WeightsError

SCOPE = "MobilenetV1/MobilenetV1"
N_BLOCKS = 13


@dataclass
class MobilenetGraphWeights:
    """Per-layer arrays read from a graph, keyed by the Keras layer name."""

    alpha: float
    input_size: int | None  # None when the graph's input has no fixed size
    kernels: dict[str, np.ndarray]
    scales: dict[str, np.ndarray]
    offsets: dict[str, np.ndarray]
    logits_weights: np.ndarray | None  # [features, 1001] ImageNet classifier, if present
    logits_biases: np.ndarray | None


def read_graph_bytes(path: Path) -> bytes:
    """A .pb file's bytes, or the graph inside a codelab `_frozen.tgz` (float graph preferred)."""
    path = Path(path)
    if path.name.endswith((".tgz", ".tar.gz")):
        try:
            with tarfile.open(path, "r:*") as tar:
                members = {m.name.rsplit("/", 1)[-1]: m for m in tar.getmembers() if m.isfile()}
                for wanted in ("frozen_graph.pb", "quantized_graph.pb"):
                    if wanted in members:
                        return tar.extractfile(members[wanted]).read()
        except (tarfile.TarError, OSError, EOFError) as e:
            raise WeightsError(
                f"{path} is damaged or not a tar archive ({e}); download it again."
            ) from e
        raise WeightsError(f"{path} holds no frozen_graph.pb or quantized_graph.pb.")
    try:
        return path.read_bytes()
    except OSError as e:
        raise WeightsError(f"Cannot read {path} ({e.strerror or e}).") from e


def _keras_layer_names() -> list[tuple[str, str]]:
    """(graph layer scope, Keras layer name) for every convolution of MobileNet v1."""
    names = [("Conv2d_0", "conv1")]
    for i in range(1, N_BLOCKS + 1):
        names += [
            (f"Conv2d_{i}_depthwise", f"conv_dw_{i}"),
            (f"Conv2d_{i}_pointwise", f"conv_pw_{i}"),
        ]
    return names


def read_mobilenet_graph(data: bytes, source: str) -> MobilenetGraphWeights:
    """Reads every MobileNet v1 weight from a serialized frozen GraphDef."""
    import tensorflow as tf
    from google.protobuf.message import DecodeError

    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(data)
    except DecodeError as e:
        raise WeightsError(f"{source} is not a TensorFlow frozen graph (.pb).") from e
    nodes = {n.name: n for n in graph_def.node}
    if f"{SCOPE}/Conv2d_0/Relu6" not in nodes:
        raise WeightsError(
            f"{source} holds no MobileNet v1 layers (no {SCOPE}/Conv2d_0/Relu6); "
            f"expected a codelab mobilenet_v1_* graph."
        )
    values = _evaluate_constants(graph_def, _weight_tensors(nodes, source), source)
    kernels = {k: v for (k, what), v in values.items() if what == "kernel" and k != "logits"}
    channels = {
        k: kernel.shape[-1] if not k.startswith("conv_dw") else kernel.shape[-2]
        for k, kernel in kernels.items()
    }
    scales = {k: values.get((k, "scale"), np.ones(channels[k], np.float32)) for k in kernels}
    offsets = {k: values[(k, "offset")] for k in kernels}
    logits_w = values.get(("logits", "kernel"))
    return MobilenetGraphWeights(
        alpha=kernels["conv1"].shape[-1] / 32.0,
        input_size=_input_size(nodes.get("input")),
        kernels=kernels,
        scales=scales,
        offsets=offsets,
        logits_weights=None if logits_w is None else logits_w.reshape(logits_w.shape[-2], -1),
        logits_biases=values.get(("logits", "bias")),
    )


def _weight_tensors(nodes: dict, source: str) -> dict[tuple[str, str], str]:
    """(keras layer name, kernel|scale|offset|bias) -> the graph tensor holding that weight.

    Each layer ends in Relu6 over (conv [* scale]) + offset: batch norm folded by the export.
    """

    def producer(name: str):
        return nodes[name.split(":")[0].lstrip("^")]

    wanted: dict[tuple[str, str], str] = {}
    for scope, keras_name in _keras_layer_names():
        node = nodes.get(f"{SCOPE}/{scope}/Relu6")
        if node is None:
            raise WeightsError(f"{source} lacks layer {scope}; it is not a complete MobileNet v1.")
        add = producer(node.input[0])
        if add.op not in ("Add", "AddV2", "BiasAdd"):
            raise WeightsError(f"{source}: unexpected {add.op} before {scope}/Relu6.")
        x, offset = add.input[0], add.input[1]
        wanted[(keras_name, "offset")] = offset
        inner = producer(x)
        if inner.op == "Mul":
            wanted[(keras_name, "scale")] = inner.input[1]
            inner = producer(inner.input[0])
        if inner.op not in ("Conv2D", "DepthwiseConv2dNative"):
            raise WeightsError(f"{source}: expected a convolution in {scope}, found {inner.op}.")
        wanted[(keras_name, "kernel")] = inner.input[1]
    logits = nodes.get("MobilenetV1/Logits/Conv2d_1c_1x1/BiasAdd")
    if logits is not None:
        wanted[("logits", "kernel")] = producer(logits.input[0]).input[1]
        wanted[("logits", "bias")] = logits.input[1]
    return wanted


def _evaluate_constants(graph_def, wanted: dict, source: str) -> dict:
    """Runs the graph for just the weight tensors (quantized graphs dequantize on the way)."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    names = list(wanted)
    tensors = [wanted[k] if ":" in wanted[k] else wanted[k] + ":0" for k in names]
    try:
        with tf.compat.v1.Session(graph=graph) as session:
            return dict(zip(names, session.run(tensors)))
    except Exception as e:  # noqa: BLE001 - any failure means the weights are not constants
        raise WeightsError(f"{source}: the MobileNet weights could not be evaluated ({e}).") from e


def _input_size(placeholder) -> int | None:
    """The square input size the graph's `input` placeholder fixes, if it fixes one."""
    if placeholder is None or "shape" not in placeholder.attr:
        return None
    dims = [d.size for d in placeholder.attr["shape"].shape.dim]
    return dims[1] if len(dims) == 4 and dims[1] > 0 and dims[1] == dims[2] else None


def apply_to_keras(weights: MobilenetGraphWeights, model) -> None:
    """Sets a Keras MobileNet (of the same alpha) to the graph's weights."""
    for keras_name, kernel in weights.kernels.items():
        conv = model.get_layer(keras_name)
        if tuple(conv.kernel.shape) != kernel.shape:
            raise WeightsError(
                f"Layer {keras_name} has kernel shape {tuple(conv.kernel.shape)}, "
                f"the graph has {kernel.shape}."
            )
        conv.kernel.assign(kernel)
        bn = model.get_layer(keras_name + "_bn")
        n = kernel.shape[-2] if keras_name.startswith("conv_dw") else kernel.shape[-1]
        bn.gamma.assign(np.asarray(weights.scales[keras_name], np.float32).reshape(n))
        bn.beta.assign(np.asarray(weights.offsets[keras_name], np.float32).reshape(n))
        bn.moving_mean.assign(np.zeros(n, np.float32))
        # (x - 0) / sqrt(var + eps) with var = 1 - eps is x: the graph's folded affine, exactly.
        bn.moving_variance.assign(np.full(n, 1.0 - bn.epsilon, np.float32))


def to_npz_bytes(weights: MobilenetGraphWeights) -> bytes:
    """Serialises the imported arrays (the converted-weights cache)."""
    arrays = {"alpha": np.float32(weights.alpha), "input_size": np.int64(weights.input_size or 0)}
    for kind in ("kernels", "scales", "offsets"):
        for k, v in getattr(weights, kind).items():
            arrays[f"{kind}/{k}"] = np.asarray(v, np.float32)
    if weights.logits_weights is not None:
        arrays["logits/weights"] = weights.logits_weights
        arrays["logits/biases"] = weights.logits_biases
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def from_npz_bytes(data: bytes) -> MobilenetGraphWeights:
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        parts: dict[str, dict[str, np.ndarray]] = {"kernels": {}, "scales": {}, "offsets": {}}
        for key in z.files:
            kind, _, name = key.partition("/")
            if kind in parts:
                parts[kind][name] = z[key]
        return MobilenetGraphWeights(
            alpha=float(z["alpha"]),
            input_size=int(z["input_size"]) or None,
            **parts,
            logits_weights=z["logits/weights"] if "logits/weights" in z.files else None,
            logits_biases=z["logits/biases"] if "logits/biases" in z.files else None,
        )
