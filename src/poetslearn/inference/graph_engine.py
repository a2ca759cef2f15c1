"""A poetslearn frozen graph run by LiteRT, the engine `retrain` extracts with, instead of by
TensorFlow: converted once per graph content, checked against TensorFlow when converted, and
kept under `$POETSLEARN_CACHE_DIR/graph_engines`, so later runs load no TensorFlow at all.

The graph takes pixels of any size and resizes them itself (`Architecture.preprocess`, a
ScaleAndTranslate op, which TFLite's builtin ops lack). `label` and `evaluate` hand it pixels
already resized to its input size, by the same rule, so that op is an identity there: the
converted model starts just after it, at a fixed batch of the input size. A graph that does not
have exactly one such op, or averages with mirror images (its batch doubles before the resize),
keeps TensorFlow.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np

from poetslearn.context import warn_on_stderr
from poetslearn.extract.engines import ENGINE_BATCH, TFLiteEngine
from poetslearn.outputs import cache_dir, write_atomic
from poetslearn.quiet import native_stderr_silenced

log = logging.getLogger(__name__)

# Bump when the conversion changes: the cached models of earlier conversions are then not used.
CONVERSION_VERSION = 1
RESIZE_OP = "ScaleAndTranslate"
# Jobs of at least this many images convert a graph that has no converted model yet: the
# conversion (seconds, once per graph) would slow a one-image `label` more than it saves.
CONVERT_FROM = 200
# How far the converted model's scores may be from TensorFlow's on the check batch.
MAX_SCORE_DIFFERENCE = 1e-4


class NotConvertible(Exception):
    """The graph has no place to cut it at; it keeps TensorFlow."""


def engine_path(graph_bytes: bytes) -> Path:
    digest = hashlib.sha256(graph_bytes).hexdigest()
    name = f"{digest[:32]}-b{ENGINE_BATCH}-v{CONVERSION_VERSION}.tflite"
    return cache_dir() / "graph_engines" / name


def refusal_path(graph_bytes: bytes) -> Path:
    """Where a failed conversion says why, so that later runs keep TensorFlow without trying
    again (a new CONVERSION_VERSION tries every graph again)."""
    return engine_path(graph_bytes).with_suffix(".refused")


def cached_engine(graph_path: Path) -> TFLiteEngine | None:
    """The graph's converted model, loaded, if an earlier run made one; None otherwise (or when
    it cannot be loaded: a damaged cache file is converted again)."""
    try:
        path = engine_path(Path(graph_path).read_bytes())
        if not path.is_file():
            return None
        return TFLiteEngine(path.read_bytes())
    except (OSError, ValueError, RuntimeError) as e:
        log.info("converted model of %s not used (%s)", graph_path, e)
        return None


def converted_engine(
    graph_path: Path, metadata: dict, reference, warn=warn_on_stderr
) -> TFLiteEngine | None:
    """Converts the graph, checks the result against `reference` (TensorFlow's scoring of a
    batch), caches it and returns it loaded; None where the graph cannot be converted or the
    result disagrees, and then TensorFlow goes on scoring."""
    if metadata.get("test_time_mirror"):
        return None
    graph_bytes = Path(graph_path).read_bytes()
    if refusal_path(graph_bytes).is_file():  # tried before: said so then
        log.info("%s keeps TensorFlow (%s)", graph_path, refusal_path(graph_bytes))
        return None
    # Seconds of silence before the first image otherwise: say what it is doing, once per graph.
    warn(f"Converting {graph_path} for LiteRT, once; later runs of it load no TensorFlow.")
    height, width = metadata["input_size"]
    try:
        with native_stderr_silenced():  # the converter's MLIR chatter
            model = convert_pixel_graph(
                graph_bytes, (height, width), metadata["output_tensor"], ENGINE_BATCH
            )
        engine = TFLiteEngine(model)
    # The converter raises its own ConverterError, TensorFlow its OpErrors, LiteRT ValueError or
    # RuntimeError: whatever fails, the graph still runs on TensorFlow, only slower.
    except Exception as e:  # noqa: BLE001
        return _refused(graph_path, graph_bytes, f"{type(e).__name__}: {e}", warn)
    probe = np.random.default_rng(0).uniform(0, 255, (2, height, width, 3)).astype(np.float32)
    difference = float(np.abs(engine(probe) - reference(probe)).max())
    if not difference <= MAX_SCORE_DIFFERENCE:  # also catches NaN
        reason = f"its scores differ from TensorFlow's by {difference:.1e}"
        return _refused(graph_path, graph_bytes, reason, warn)
    try:
        write_atomic(engine_path(graph_bytes), model)
    except OSError as e:  # a read-only cache: this run still uses the engine
        log.info("converted model of %s not cached (%s)", graph_path, e)
    return engine


def _refused(graph_path: Path, graph_bytes: bytes, reason: str, warn) -> None:
    """Records why the conversion failed, says so once, and leaves the graph on TensorFlow."""
    marker = refusal_path(graph_bytes)
    first_line = reason.strip().splitlines()[0] if reason.strip() else "no reason given"
    try:
        write_atomic(marker, reason.encode())
        again = f"; later runs do not try again (remove {marker} to retry)"
    except OSError:  # a read-only cache: the next run tries again
        again = ""
    warn(f"{graph_path} stays on TensorFlow: the conversion failed ({first_line[:200]}){again}.")
    return None


def convert_pixel_graph(
    graph_bytes: bytes, input_hw: tuple[int, int], output_name: str, batch: int
) -> bytes:
    """The graph from just after its resize to its output, as a float32 TFLite model taking
    [batch, height, width, 3] pixels 0..255 at the input size."""
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(graph_bytes)
    resizes = [node for node in graph_def.node if node.op == RESIZE_OP]
    if len(resizes) != 1:
        raise NotConvertible(f"{len(resizes)} {RESIZE_OP} ops where one was expected")
    cut = resizes[0]
    # The resize's output becomes the input: a placeholder of that name, so every op that read
    # the resized pixels reads the placeholder instead.
    cut.op, cut.input[:] = "Placeholder", []
    for key in list(cut.attr):
        del cut.attr[key]
    cut.attr["dtype"].type = tf.float32.as_datatype_enum
    shape = tf.TensorShape([batch, *input_hw, 3]).as_proto()
    cut.attr["shape"].shape.CopyFrom(shape)
    output = output_name.split(":")[0]  # what the resize read is left behind by the prune

    def import_graph():
        tf.compat.v1.import_graph_def(graph_def, name="")

    wrapped = tf.compat.v1.wrap_function(import_graph, [])
    function = wrapped.prune(
        feeds=wrapped.graph.get_tensor_by_name(f"{cut.name}:0"),
        fetches=wrapped.graph.get_tensor_by_name(f"{output}:0"),
    )
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], wrapped)
    return converter.convert()
