"""Fast engines that run the backbone for bottleneck extraction.

TensorFlow's own CPU kernels leave much of a small machine idle on MobileNet's depthwise
convolutions; TFLite (LiteRT) with XNNPACK runs the same frozen network 2-3x faster. On Inception
V3's large dense convolutions ONNX Runtime is fastest (scripts/benchmark.py measures them side by
side; each architecture lists its engines fastest first). An engine takes [B, h, w, 3] float32
pixels (0..255, at most the network's input size; smaller images are enlarged inside the engine)
and returns [B, features]. Engines are interchangeable: their features agree with TensorFlow's to
1e-4 relative, which `FeatureExtractor` checks on the first batch before trusting one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from poetslearn.artifacts.tflite_file import interpreter_class
from poetslearn.backbone.convert import to_tflite
from poetslearn.quiet import native_stderr_silenced

log = logging.getLogger(__name__)

# Images per invocation. The interpreter keeps every activation of a whole batch in its arena
# (112x112x64 floats per image in MobileNet 1.0's largest layer), and smaller batches stay in
# the caches: at 0.50/224 from CIFAR-10 images, batch 8 ran at 600 img/s, 16 at 510-555 and 128
# at 510 (medians of interleaved runs, 2 cores).
ENGINE_BATCH = 8


def convert_to_tflite(
    arch,
    backbone,
    batch_size: int,
    input_hw: tuple[int, int] | None = None,
    int8_calibration: np.ndarray | None = None,
) -> bytes:
    """The backbone with its scaling, frozen, as a float32 TFLite model of a fixed batch size.

    With `int8_calibration` ([N, h, w, 3] pixels of the input size) the weights and activations
    become int8, their ranges calibrated on those images; input and output stay float32.

    With `input_hw` smaller than the network's input (CIFAR-10's 32x32), the model starts by
    enlarging the images itself, so the resize runs on every core inside XNNPACK (20-25% faster
    than resizing outside). Enlarging only: there, plain bilinear equals the antialiased resize
    of the exported graph.
    """
    import tensorflow as tf

    size = arch.input_size
    height, width = input_hw or (size, size)
    if height > size or width > size:
        raise ValueError(f"the TFLite engine only enlarges; got {height}x{width} for {size}")

    @tf.function(input_signature=[tf.TensorSpec([batch_size, height, width, 3], tf.float32)])
    def features(pixels):
        if (height, width) != (size, size):
            pixels = tf.image.resize(pixels, (size, size), method="bilinear")
        return backbone((pixels - arch.input_mean) / arch.input_std, training=False)

    representative = None
    if int8_calibration is not None:
        representative = _calibration_batches(int8_calibration, batch_size, (height, width))
    return to_tflite(features, representative)


def _calibration_batches(images: np.ndarray, batch_size: int, hw: tuple[int, int]):
    """The converter's representative data: whole batches of the calibration images."""
    calibration = np.asarray(images, np.float32)
    if len(calibration) < batch_size:  # the model takes whole batches only
        calibration = np.resize(calibration, (batch_size, *calibration.shape[1:]))
    if calibration.shape[1:3] != hw:
        raise ValueError(
            f"int8 calibration images are {calibration.shape[1:3]}, the model takes {hw}"
        )

    def batches():
        for i in range(0, len(calibration) - batch_size + 1, batch_size):
            yield [calibration[i : i + batch_size]]

    return batches


def _padded_batches(pixels: np.ndarray, batch_size: int):
    """(chunk, n): chunks of exactly batch_size images, the last padded with zeros; n are real."""
    for start in range(0, len(pixels), batch_size):
        chunk = pixels[start : start + batch_size]
        n = len(chunk)
        if n < batch_size:
            pad = np.zeros((batch_size - n, *chunk.shape[1:]), np.float32)
            chunk = np.concatenate([chunk, pad])
        yield np.ascontiguousarray(chunk, np.float32), n


class TFLiteEngine:
    """Runs a TFLite model on every core; pads the last, smaller batch to the fixed size."""

    def __init__(self, model: bytes, threads: int | None = None) -> None:
        with native_stderr_silenced():  # LiteRT announces its XNNPACK delegate
            self.interpreter = interpreter_class()(
                model_content=model, num_threads=threads or os.cpu_count() or 1
            )
            self.interpreter.allocate_tensors()
        inp = self.interpreter.get_input_details()[0]
        self.input_index, self.batch_size = inp["index"], int(inp["shape"][0])
        output = self.interpreter.get_output_details()[0]
        self.output_index, self.outputs = output["index"], int(output["shape"][-1])

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        out = []
        for chunk, n in _padded_batches(pixels, self.batch_size):
            self.interpreter.set_tensor(self.input_index, chunk)
            self.interpreter.invoke()
            out.append(self.interpreter.get_tensor(self.output_index)[:n].copy())
        return np.concatenate(out)


class OnnxRuntimeEngine:
    """Runs an ONNX model (see `onnx_export`) with ONNX Runtime on every core.

    The batch is fixed too, though ONNX allows any: ONNX Runtime plans memory per shape, and one
    shape keeps that plan (measured at Inception V3: batch 4, 18.9 img/s; batch 16, about the same).
    """

    def __init__(
        self, model: bytes, batch_size: int = ENGINE_BATCH, threads: int | None = None
    ) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        # Planning activation memory from the first run's pattern held 100 MB more at Inception
        # V3 (batch 8) and ran no faster (18.6-18.9 img/s with or without).
        options.enable_mem_pattern = False
        options.log_severity_level = 3  # errors only
        self.session = onnxruntime.InferenceSession(
            model, options, providers=["CPUExecutionProvider"]
        )
        self.batch_size = batch_size

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        return np.concatenate(
            [
                self.session.run(["features"], {"pixels": chunk})[0][:n]
                for chunk, n in _padded_batches(pixels, self.batch_size)
            ]
        )


class TensorFlowEngine:
    """TensorFlow itself: the reference every other engine is checked against, and the fallback.

    `fn` is a tf.function from pixels to features (the extractor passes its own, already traced).
    """

    def __init__(self, fn) -> None:
        self.fn = fn

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        return self.fn(pixels).numpy()


@dataclass(frozen=True)
class EngineKind:
    """An engine's facts: whether its vectors equal TensorFlow's, and how to build it."""

    name: str
    exact: bool  # False: faster, other vectors (never picked by "auto", cached apart)
    # (arch, backbone, batch_size, input (h, w), int8 calibration images or None, threads)
    build: Callable[..., Callable[[np.ndarray], np.ndarray]] = field(repr=False)
    needs_calibration: bool = False


def _build_tflite(arch, backbone, batch_size, input_hw, calibration, threads):
    return TFLiteEngine(convert_to_tflite(arch, backbone, batch_size, input_hw), threads)


def _build_tflite_int8(arch, backbone, batch_size, input_hw, calibration, threads):
    return TFLiteEngine(
        convert_to_tflite(arch, backbone, batch_size, input_hw, calibration), threads
    )


def _build_onnxruntime(arch, backbone, batch_size, input_hw, calibration, threads):
    from poetslearn.backbone.onnx import convert_to_onnx

    return OnnxRuntimeEngine(convert_to_onnx(arch, backbone, input_hw), batch_size, threads)


def _build_tensorflow(arch, backbone, batch_size, input_hw, calibration, threads):
    import tensorflow as tf

    if threads:  # process-wide, and only possible before TensorFlow's first operation
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
        except RuntimeError:
            log.info("TensorFlow has started already; its thread count stays as it is")
    return TensorFlowEngine(
        tf.function(lambda pixels: backbone(arch.preprocess(pixels), training=False))
    )


# Every engine by its --engine name. Which to try first is the architecture's business
# (`Architecture.engines`, fastest first as measured); "auto" walks that list.
ENGINES: dict[str, EngineKind] = {
    kind.name: kind
    for kind in (
        EngineKind("tflite", True, _build_tflite),
        EngineKind("onnxruntime", True, _build_onnxruntime),
        EngineKind("tf", True, _build_tensorflow),
        EngineKind("tflite_int8", False, _build_tflite_int8, needs_calibration=True),
    )
}
AUTO = "auto"
ENGINE_CHOICES = (AUTO, *ENGINES)


def is_exact(engine: str) -> bool:
    """True when the engine's vectors equal TensorFlow's ("auto" only picks such engines)."""
    return engine == AUTO or ENGINES[engine].exact


def build_engine(
    name: str,
    arch,
    backbone,
    batch_size: int,
    input_hw: tuple[int, int],
    int8_calibration: np.ndarray | None = None,
    threads: int | None = None,
):
    """The named engine for this backbone and input size (raises when it cannot be built).

    `threads`: how many cores it may use (default: all of this machine's).
    """
    kind = ENGINES.get(name)
    if kind is None:
        raise ValueError(f"no engine called {name!r}; expected one of {', '.join(ENGINES)}")
    if kind.needs_calibration and int8_calibration is None:
        raise ValueError(f"the {name} engine needs calibration images")
    return kind.build(arch, backbone, batch_size, input_hw, int8_calibration, threads)
