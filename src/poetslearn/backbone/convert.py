"""The one way a network becomes a file: a traced tf.function frozen into constants, and a frozen
function converted to TFLite (float32, or int8 calibrated on representative inputs).

Freezing first matters: converting an unfrozen Keras 3 function silently drops the weights. The
engines (`extract.engines`), the frozen graph and the `.tflite` export all come through here.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterable

import numpy as np

from poetslearn.quiet import native_stderr_silenced


def freeze(function):
    """A tf.function with an input signature -> its concrete function with every variable folded
    into a constant."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    return convert_variables_to_constants_v2(function.get_concrete_function())


def frozen_graph_def(function):
    """A tf.function with an input signature -> a GraphDef holding no variables."""
    return freeze(function).graph.as_graph_def()


def to_tflite(
    function, representative: Callable[[], Iterable[list[np.ndarray]]] | None = None
) -> bytes:
    """A tf.function with a fixed input signature -> a TFLite model.

    With `representative` (a callable yielding [input batch] lists, as TFLite's converter
    expects) weights and activations become int8, their ranges calibrated on those inputs; the
    model's input and output stay float32.
    """
    import tensorflow as tf

    frozen = freeze(function)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen], frozen.graph)
    if representative is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.representative_dataset = representative
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("absl").setLevel(logging.ERROR)
        with native_stderr_silenced():
            return converter.convert()
