"""TFLite Model Metadata (schema 1.5, file identifier "M001"): the part of the format image
classifiers use, written and read with the `flatbuffers` runtime TensorFlow already installs.

The schema (`metadata_schema.fbs`, shipped in the mediapipe wheel and in tflite-support) is
described below as data: each table lists its fields in schema order, which is all a flatbuffer
needs (field i lives in vtable slot i; a union takes two slots, its type then its value). One
generic `encode` and one generic `decode` walk that description, so adding a field is one line,
and no generated module of several thousand lines, nor the unmaintained tflite-support with its
native library, is needed. Tables are plain dicts; a union is a `(member name, dict)` pair.
"""

from __future__ import annotations

from dataclasses import dataclass

import flatbuffers
from flatbuffers import encode, number_types, packer
from flatbuffers.table import Table

from poetslearn.errors import GraphError

FILE_IDENTIFIER = b"M001"
SCHEMA_VERSION = "1.0.0"  # every field written below exists since the first schema version

# Enumerations (byte), by name.
ASSOCIATED_FILE_TYPES = ("UNKNOWN", "DESCRIPTIONS", "TENSOR_AXIS_LABELS", "TENSOR_VALUE_LABELS")
COLOR_SPACES = ("UNKNOWN", "RGB", "GRAYSCALE")


@dataclass(frozen=True)
class Union:
    """A flatbuffer union: its members in schema order (member type 1, 2, ...)."""

    members: tuple[str, ...]


# Scalars: (flatbuffers number type, Builder method suffix).
SCALARS = {
    "byte": (number_types.Int8Flags, "Int8"),
    "ubyte": (number_types.Uint8Flags, "Uint8"),
    "int": (number_types.Int32Flags, "Int32"),
    "uint": (number_types.Uint32Flags, "Uint32"),
    "float": (number_types.Float32Flags, "Float32"),
}

STRING = "string"
SCHEMA: dict[str, tuple] = {
    "AssociatedFile": (
        ("name", STRING),
        ("description", STRING),
        ("type", "byte"),
        ("locale", STRING),
        ("version", STRING),
    ),
    "FeatureProperties": (),
    "ImageSize": (("width", "uint"), ("height", "uint")),
    "ImageProperties": (("color_space", "byte"), ("default_size", "ImageSize")),
    "BoundingBoxProperties": (("index", ["uint"]), ("type", "byte"), ("coordinate_type", "byte")),
    "AudioProperties": (("sample_rate", "uint"), ("channels", "uint")),
    "ValueRange": (("min", "int"), ("max", "int")),
    "Content": (
        (
            "content_properties",
            Union(
                ("FeatureProperties", "ImageProperties", "BoundingBoxProperties", "AudioProperties")
            ),
        ),
        ("range", "ValueRange"),
    ),
    "NormalizationOptions": (("mean", ["float"]), ("std", ["float"])),
    "ScoreCalibrationOptions": (("score_transformation", "byte"), ("default_score", "float")),
    "ScoreThresholdingOptions": (("global_score_threshold", "float"),),
    "ProcessUnit": (
        (
            "options",
            Union(
                (
                    "NormalizationOptions",
                    "ScoreCalibrationOptions",
                    "ScoreThresholdingOptions",
                    "BertTokenizerOptions",
                    "SentencePieceTokenizerOptions",
                    "RegexTokenizerOptions",
                )
            ),
        ),
    ),
    "Stats": (("max", ["float"]), ("min", ["float"])),
    "TensorGroup": (("name", STRING), ("tensor_names", [STRING])),
    "TensorMetadata": (
        ("name", STRING),
        ("description", STRING),
        ("dimension_names", [STRING]),
        ("content", "Content"),
        ("process_units", ["ProcessUnit"]),
        ("stats", "Stats"),
        ("associated_files", ["AssociatedFile"]),
    ),
    "CustomMetadata": (("name", STRING), ("data", ["ubyte"])),
    "SubGraphMetadata": (
        ("name", STRING),
        ("description", STRING),
        ("input_tensor_metadata", ["TensorMetadata"]),
        ("output_tensor_metadata", ["TensorMetadata"]),
        ("associated_files", ["AssociatedFile"]),
        ("input_process_units", ["ProcessUnit"]),
        ("output_process_units", ["ProcessUnit"]),
        ("input_tensor_groups", ["TensorGroup"]),
        ("output_tensor_groups", ["TensorGroup"]),
        ("custom_metadata", ["CustomMetadata"]),
    ),
    "ModelMetadata": (
        ("name", STRING),
        ("description", STRING),
        ("version", STRING),
        ("subgraph_metadata", ["SubGraphMetadata"]),
        ("author", STRING),
        ("license", STRING),
        ("associated_files", ["AssociatedFile"]),
        ("min_parser_version", STRING),
    ),
}


def _is_scalar(kind) -> bool:
    return isinstance(kind, str) and kind in SCALARS


def _slots(table: str):
    """(field name, field type, vtable slot) for each field of `table`."""
    slot = 0
    for name, kind in SCHEMA[table]:
        yield name, kind, slot
        slot += 2 if isinstance(kind, Union) else 1


# ---------------------------------------------------------------- writing


def encode_model_metadata(metadata: dict) -> bytes:
    """The ModelMetadata flatbuffer of `metadata` (a dict shaped as the schema above)."""
    builder = flatbuffers.Builder(1024)
    root = _encode_table(builder, "ModelMetadata", metadata)
    builder.Finish(root, file_identifier=FILE_IDENTIFIER)
    return bytes(builder.Output())


def _encode_table(builder, table: str, value: dict) -> int:
    unknown = set(value) - {name for name, _ in SCHEMA[table]}
    if unknown:
        raise ValueError(f"{table} has no field {sorted(unknown)[0]!r}.")
    # Children first: a flatbuffer table can only point at objects already written.
    children = {
        name: _encode_value(builder, kind, value[name])
        for name, kind, _ in _slots(table)
        if value.get(name) is not None and not _is_scalar(kind)
    }
    builder.StartObject(sum(2 if isinstance(k, Union) else 1 for _, k in SCHEMA[table]))
    for name, kind, slot in _slots(table):
        if value.get(name) is None:
            continue
        if isinstance(kind, Union):
            member = value[name][0]
            builder.PrependUint8Slot(slot, kind.members.index(member) + 1, 0)
            builder.PrependUOffsetTRelativeSlot(slot + 1, children[name], 0)
        elif _is_scalar(kind):
            method = getattr(builder, f"Prepend{SCALARS[kind][1]}Slot")
            method(slot, value[name], None)  # None: always written, even when it is 0
        else:
            builder.PrependUOffsetTRelativeSlot(slot, children[name], 0)
    return builder.EndObject()


def _encode_value(builder, kind, value) -> int:
    if kind == STRING:
        return builder.CreateString(value)
    if isinstance(kind, Union):
        member, fields = value
        return _encode_table(builder, member, fields)
    if isinstance(kind, list):
        return _encode_vector(builder, kind[0], value)
    return _encode_table(builder, kind, value)


def _encode_vector(builder, element, values) -> int:
    if element in SCALARS:
        flags, suffix = SCALARS[element]
        builder.StartVector(flags.bytewidth, len(values), flags.bytewidth)
        for item in reversed(values):
            getattr(builder, f"Prepend{suffix}")(item)
        return builder.EndVector()
    offsets = [_encode_value(builder, element, item) for item in values]
    builder.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        builder.PrependUOffsetTRelative(offset)
    return builder.EndVector()


# ---------------------------------------------------------------- reading


def decode_model_metadata(data: bytes) -> dict:
    """The ModelMetadata in `data` as dicts: every scalar (0 when absent), the other fields
    present; fields this description does not know are left out."""
    buf = bytearray(data)
    if len(buf) < 8 or bytes(buf[4:8]) != FILE_IDENTIFIER:
        raise GraphError(
            "The model's TFLITE_METADATA is not TFLite Model Metadata (no M001 identifier)."
        )
    root = encode.Get(packer.uoffset, buf, 0)
    return _decode_table(Table(buf, root), "ModelMetadata")


def _decode_table(tab: Table, table: str) -> dict:
    out = {}
    for name, kind, slot in _slots(table):
        offset = tab.Offset(4 + 2 * slot)
        if not offset:
            if _is_scalar(kind):  # absent scalars read as the schema's default, 0
                out[name] = 0
            continue
        if isinstance(kind, Union):
            member_type = tab.Get(number_types.Uint8Flags, tab.Pos + offset)
            value_offset = tab.Offset(4 + 2 * (slot + 1))
            if 0 < member_type <= len(kind.members) and value_offset:
                member = kind.members[member_type - 1]
                inner = Table(bytearray(), 0)
                tab.Union(inner, value_offset)
                out[name] = (member, _decode_table(inner, member) if member in SCHEMA else {})
        else:
            out[name] = _decode_value(tab, kind, tab.Pos + offset, offset)
    return out


def _decode_value(tab: Table, kind, position: int, offset: int):
    if kind == STRING:
        return tab.String(position).decode("utf-8")
    if _is_scalar(kind):
        return tab.Get(SCALARS[kind][0], position)
    if isinstance(kind, list):
        return _decode_vector(tab, kind[0], offset)
    return _decode_table(Table(tab.Bytes, tab.Indirect(position)), kind)


def _decode_vector(tab: Table, element, offset: int) -> list:
    start, count = tab.Vector(offset), tab.VectorLen(offset)
    if element in SCALARS:
        flags = SCALARS[element][0]
        return [tab.Get(flags, start + i * flags.bytewidth) for i in range(count)]
    items = []
    for i in range(count):
        position = start + 4 * i
        if element == STRING:
            items.append(tab.String(position).decode("utf-8"))
        else:
            items.append(_decode_table(Table(tab.Bytes, tab.Indirect(position)), element))
    return items
