"""The one shard store under both caches: opening reads keys only, verification happens when a
shard's rows are first used, every shard is written with the same fsync, and the formats of the
caches written by 0.1 are read as they are."""

from __future__ import annotations

import builtins
import hashlib
import io

import numpy as np
import pytest

from poetslearn import outputs
from poetslearn.backbone.architectures import get_architecture
from poetslearn.backbone.cut import ActivationCodec
from poetslearn.data.sources import KEY_BYTES
from poetslearn.extract.activation_cache import ActivationCache
from poetslearn.extract.bottleneck_cache import BottleneckCache

SHAPE = (4, 4, 8)


def keys(n: int, offset: int = 0) -> list[bytes]:
    return [hashlib.sha256(str(offset + i).encode()).digest()[:KEY_BYTES] for i in range(n)]


def codec_error() -> float:
    """How far one stored value may be from what was given (test_tiny: at most 1 / 255 / 2)."""
    error = ActivationCodec.for_architecture(get_architecture("test_tiny")).max_error
    return 1e-3 if error is None else error + 1e-6


def activation_cache(root, warn=print) -> ActivationCache:
    codec = ActivationCodec.for_architecture(get_architecture("test_tiny"))
    return ActivationCache(root, "test_tiny", "f" * 64, SHAPE, codec, warn)


def filled_activation_cache(root, n: int = 40) -> tuple[ActivationCache, list[bytes]]:
    cache = activation_cache(root)
    rows = np.random.default_rng(0).uniform(0, 1, (n, *SHAPE)).astype(np.float32)
    cache.add(keys(n), rows)
    cache.flush()
    return cache, keys(n)


def test_opening_an_activation_cache_reads_no_segment(tmp_path, monkeypatch):
    filled_activation_cache(tmp_path)
    opened = []
    real_open = builtins.open

    def spy(file, *args, **kwargs):
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy)
    monkeypatch.setattr(io, "open", spy)  # what Path.read_bytes opens with
    cache = activation_cache(tmp_path)
    assert all(key in cache for key in keys(40))
    assert opened and all(name.endswith(".keys.npy") for name in opened), opened


def test_a_damaged_segment_is_found_when_first_used_and_removed(tmp_path):
    _, stored = filled_activation_cache(tmp_path)
    rows = next(tmp_path.rglob("*.rows"))
    data = bytearray(rows.read_bytes())
    data[5] ^= 0xFF  # same size: only the checksum can tell
    rows.write_bytes(bytes(data))
    warnings = []
    cache = activation_cache(tmp_path, warnings.append)
    assert all(key in cache for key in stored) and not warnings  # opening reads no rows
    assert cache.verify(stored) == 1
    assert warnings == [
        f"Activation cache segment {rows} is damaged (checksum mismatch); "
        f"removing it, its activations will be recomputed."
    ]
    assert not any(key in cache for key in stored) and not list(tmp_path.rglob("seg-*"))


def test_a_sound_segment_is_verified_once_and_read_back(tmp_path, monkeypatch):
    _, stored = filled_activation_cache(tmp_path)
    cache = activation_cache(tmp_path)
    assert cache.verify(stored) == 0
    hashed = []
    monkeypatch.setattr(cache.layout, "verify", hashed.append)
    assert cache.verify(stored) == 0 and not hashed  # once per store
    expected = np.random.default_rng(0).uniform(0, 1, (40, *SHAPE)).astype(np.float32)
    reader = cache.reader(stored)
    np.testing.assert_allclose(reader.read([3, 0, 39]), expected[[3, 0, 39]], atol=codec_error())
    reader.close()


def test_both_caches_write_through_the_same_fsync(tmp_path, monkeypatch):
    synced = []
    real_fsync = outputs.os.fsync
    monkeypatch.setattr(outputs.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    filled_activation_cache(tmp_path / "a")
    assert len(synced) == 3  # rows, keys, checksum
    cache = BottleneckCache(tmp_path / "b", "test_tiny", "e" * 64, 5)
    cache.add(keys(3), np.ones((3, 5), np.float32))
    cache.flush()
    assert len(synced) == 4  # and the one .npz


def test_a_bottleneck_shard_in_the_0_1_format_is_read(tmp_path):
    """0.1 wrote shard-*.npz with `keys`, `vectors` and a blake2b `checksum` of both."""
    folder = tmp_path / f"test_tiny_{'d' * 16}"
    folder.mkdir()
    k = np.frombuffer(b"".join(keys(4)), np.uint8).reshape(-1, KEY_BYTES)
    vectors = np.arange(20, dtype=np.float32).reshape(4, 5)
    digest = hashlib.blake2b(digest_size=16)
    digest.update(k.tobytes())
    digest.update(vectors.tobytes())
    np.savez(
        folder / "shard-20260101000000-abcdef012345.npz",
        keys=k,
        vectors=vectors,
        checksum=np.frombuffer(digest.digest(), np.uint8),
    )
    cache = BottleneckCache(tmp_path, "test_tiny", "d" * 64, 5)
    out = np.zeros((4, 5), np.float32)
    (found,) = cache.fill([(keys(4)[::-1], out)])
    assert found.all()
    np.testing.assert_array_equal(out, vectors[::-1])


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_a_damaged_bottleneck_shard_is_removed_when_read(tmp_path, damage):
    cache = BottleneckCache(tmp_path, "test_tiny", "c" * 64, 5)
    cache.add(keys(6), np.ones((6, 5), np.float32))
    cache.flush()
    shard = next(tmp_path.rglob("shard-*.npz"))
    data = shard.read_bytes()
    shard.write_bytes(
        data[: len(data) // 2]
        if damage == "truncate"
        else data.replace(np.ones(1, np.float32).tobytes(), np.full(1, 2, np.float32).tobytes(), 1)
    )
    warnings = []
    reopened = BottleneckCache(tmp_path, "test_tiny", "c" * 64, 5, warnings.append)
    (found,) = reopened.fill([(keys(6), np.zeros((6, 5), np.float32))])
    assert not found.any() and not shard.exists()
    assert len(warnings) == 1 and f"Bottleneck cache file {shard} is damaged" in warnings[0]


@pytest.mark.parametrize(
    "header, offset, value",
    [
        # A member marked encrypted in the archive's directory (zipfile: RuntimeError).
        (b"PK\x01\x02", 8, 0x01),
        # A member's "extra field" grown past the end of the file (zipfile: EOFError).
        (b"PK\x03\x04", 29, 0xFF),
        # A stored member said to be deflated (a bad CRC, or zlib.error where the bytes do not
        # inflate) or packed some unknown way (NotImplementedError).
        (b"PK\x01\x02", 10, 8),
        (b"PK\x01\x02", 10, 99),
    ],
    ids=["marked-encrypted", "extra-field-past-the-end", "said-deflated", "unknown-method"],
)
def test_a_shard_with_a_damaged_zip_header_is_removed_not_a_traceback(
    tmp_path, header, offset, value
):
    # The same kinds of damage the .tflite reader met: each raised zipfile's own exception.
    cache = BottleneckCache(tmp_path, "test_tiny", "c" * 64, 5)
    cache.add(keys(6), np.ones((6, 5), np.float32))
    cache.flush()
    shard = next(tmp_path.rglob("shard-*.npz"))
    damaged = bytearray(shard.read_bytes())
    damaged[damaged.rindex(header) + offset] = value  # in the last member's header
    shard.write_bytes(bytes(damaged))
    warnings = []
    reopened = BottleneckCache(tmp_path, "test_tiny", "c" * 64, 5, warnings.append)
    (found,) = reopened.fill([(keys(6), np.zeros((6, 5), np.float32))])
    assert not found.any() and not shard.exists()
    assert len(warnings) == 1 and "is damaged" in warnings[0]
