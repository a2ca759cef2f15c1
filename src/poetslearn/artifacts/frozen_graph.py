"""Reading a frozen TensorFlow graph (`.pb`) back: the GraphDef imported into a function from
its input tensor to its output tensor. Its metadata, when poetslearn wrote it, is the file beside
it (`artifacts.metadata.read_metadata(path, "frozen_graph")`)."""

from __future__ import annotations

from pathlib import Path

from poetslearn.errors import GraphError


def load_graph_function(graph_path: Path, input_name: str, output_name: str):
    """Imports a frozen GraphDef; returns (function input -> output, input tensor, output
    tensor)."""
    import tensorflow as tf
    from google.protobuf.message import DecodeError

    try:
        data = Path(graph_path).read_bytes()
    except OSError as e:
        raise GraphError(
            f"Cannot read the graph {graph_path} ({e.strerror or e}). Run "
            f"`poetslearn retrain` first or pass --graph."
        ) from e
    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(data)
    except DecodeError as e:
        raise GraphError(f"{graph_path} is not a TensorFlow GraphDef (.pb) file.") from e
    if not graph_def.node:
        raise GraphError(f"{graph_path} holds no graph nodes; it is not a frozen graph.")

    def import_graph():
        tf.compat.v1.import_graph_def(graph_def, name="")

    try:
        wrapped = tf.compat.v1.wrap_function(import_graph, [])
    except Exception as e:  # noqa: BLE001 - TF raises many types for a broken graph
        raise GraphError(f"{graph_path} cannot be imported into TensorFlow ({e}).") from e
    tensors = []
    for name, flag in ((input_name, "--input_layer"), (output_name, "--output_layer")):
        tensor_name = name if ":" in name else f"{name}:0"
        try:
            tensors.append(wrapped.graph.get_tensor_by_name(tensor_name))
        except (KeyError, ValueError) as e:
            raise GraphError(
                f"{graph_path} has no tensor {tensor_name}; name the right one with {flag}."
            ) from e
    return wrapped.prune(feeds=tensors[0], fetches=tensors[1]), tensors[0], tensors[1]
