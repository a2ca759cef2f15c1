"""Metadata inside a `.tflite` file, where MediaPipe Tasks, Android Studio and the TFLite Support
library look for it: the ModelMetadata flatbuffer in a model buffer named "TFLITE_METADATA",
and the associated files (labels, ...) in a zip archive appended to the model, as TFLite's own
metadata populator writes them. `embed` needs TensorFlow (the converter's own model schema, so
no field the converter wrote is lost); `read_embedded` needs only LiteRT and the standard
library, so labelling never imports TensorFlow.
"""

from __future__ import annotations

import functools
import io
import struct
import zipfile
import zlib

import numpy as np

from poetslearn.artifacts.tflite_metadata_schema import decode_model_metadata
from poetslearn.errors import GraphError

METADATA_NAME = "TFLITE_METADATA"
TFLITE_IDENTIFIER = b"TFL3"
BUFFER_ALIGNMENT = 16  # the schema's force_align for buffer data; kernels read weights in place


def embed(model: bytes, metadata: bytes, files: dict[str, bytes]) -> bytes:
    """`model` with `metadata` (a ModelMetadata flatbuffer) as its TFLITE_METADATA buffer, an
    earlier one replaced, and `files` appended as a zip archive."""
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as schema

    tree = schema.ModelT.InitFromPackedBuf(bytearray(model), 0)
    tree.buffers = [_aligned(schema, buffer) for buffer in tree.buffers or []]
    _set_metadata_buffer(schema, tree, np.frombuffer(metadata, np.uint8))
    builder = flatbuffers.Builder(len(model) + len(metadata) + 1024)
    builder.Finish(tree.Pack(builder), file_identifier=TFLITE_IDENTIFIER)
    out = io.BytesIO()
    out.write(builder.Output())
    # Stored, not deflated: the readers on phones map the labels straight from the file.
    with zipfile.ZipFile(out, "a", compression=zipfile.ZIP_STORED) as archive:
        for name, data in files.items():
            archive.writestr(_member(name), data)
    return out.getvalue()


def _member(name: str) -> zipfile.ZipInfo:
    """A zip entry with a fixed date (the same model gives the same bytes), readable by all."""
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.external_attr = 0o644 << 16
    return info


def _set_metadata_buffer(schema, tree, data: np.ndarray) -> None:
    for entry in tree.metadata or []:
        if _text(entry.name) == METADATA_NAME:
            tree.buffers[entry.buffer].data = data
            return
    buffer = _aligned(schema, schema.BufferT())
    buffer.data = data
    tree.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = METADATA_NAME, len(tree.buffers) - 1
    tree.metadata = [*(tree.metadata or []), entry]


def _aligned(schema, buffer):
    """`buffer` as a BufferT whose bytes are written 16-byte aligned."""
    aligned = _aligned_buffer_class(schema)()
    aligned.__dict__.update(vars(buffer))
    return aligned


@functools.cache
def _aligned_buffer_class(schema):
    """BufferT packed with its data 16-byte aligned: the generated Pack aligns it to 1 byte,
    which the schema's force_align does not allow and kernels reading weights in place dislike."""

    class AlignedBuffer(schema.BufferT):
        def Pack(self, builder):  # noqa: N802 - the generated API's name
            if self.data is None or len(self.data) == 0:
                return super().Pack(builder)
            payload = np.asarray(self.data, np.uint8).tobytes()
            builder.StartVector(1, len(payload), BUFFER_ALIGNMENT)
            builder.head -= len(payload)
            builder.Bytes[builder.head : builder.head + len(payload)] = payload
            builder.vectorNumElems = len(payload)
            vector = builder.EndVector()
            schema.BufferStart(builder)
            schema.BufferAddData(builder, vector)
            schema.BufferAddOffset(builder, self.offset)
            schema.BufferAddSize(builder, self.size)
            return schema.BufferEnd(builder)

    return AlignedBuffer


def _text(name) -> str:
    return name.decode("utf-8") if isinstance(name, bytes) else str(name or "")


def read_embedded(model: bytes) -> tuple[dict | None, dict[str, bytes]]:
    """(the decoded ModelMetadata, {associated file name: bytes}) of a .tflite file's contents:
    (None, {}) for a model without metadata."""
    from ai_edge_litert import schema_py_generated as schema

    try:  # read in place: no copy of the weights
        tree = schema.Model.GetRootAs(model, 0)
        raw = _metadata_buffer(tree, model)
        metadata = decode_model_metadata(raw) if raw is not None else None
    except (IndexError, ValueError, TypeError, AttributeError, struct.error) as e:  # damaged
        raise GraphError(f"its flatbuffer or its metadata is damaged ({e})") from e
    return metadata, _associated_files(model)


def _metadata_buffer(tree, data: bytes) -> bytes | None:
    for i in range(tree.MetadataLength()):
        entry = tree.Metadata(i)
        if _text(entry.Name()) != METADATA_NAME:
            continue
        buffer = tree.Buffers(entry.Buffer())
        if buffer.Offset() > 1:  # models over 2 GB keep buffers after the flatbuffer
            return bytes(data[buffer.Offset() : buffer.Offset() + buffer.Size()])
        return buffer.DataAsNumpy().tobytes()
    return None


def _associated_files(model: bytes) -> dict[str, bytes]:
    try:
        with zipfile.ZipFile(io.BytesIO(model)) as archive:
            return {name: archive.read(name) for name in archive.namelist()}
    # A damaged archive fails in many ways: a bad header, a field that runs past the end of
    # the model (EOFError), a file marked encrypted (RuntimeError), bytes that do not
    # inflate (zlib.error).
    except (
        zipfile.BadZipFile, ValueError, NotImplementedError, OSError, EOFError, RuntimeError,
        zlib.error,
    ):  # fmt: skip
        return {}  # no archive, or a damaged one: the labels are then asked for by name
