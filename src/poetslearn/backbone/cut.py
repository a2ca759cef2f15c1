"""Splitting a backbone where its frozen part ends, for fine-tuning on cached activations.

Training the top K blocks of the backbone together with the new layer does not need the whole
network in every step: the bottom part never changes, so its output (the activations at the cut)
can be computed once per image and cached like a bottleneck, and only the top K blocks run while
training. This module finds the cut for a K (from the architecture registry), splits the Keras
backbone there into `bottom` and `top` (top(bottom(x)) == backbone(x)), and stores activations
compactly: one byte per value where the registry bounds them (MobileNet's ReLU6), else float16.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from poetslearn.backbone.architectures import Architecture
from poetslearn.errors import PoetslearnError


def valid_block_counts(arch: Architecture) -> list[int]:
    """The K that `arch` can fine-tune: 1 up to its number of blocks (none if it has none)."""
    return list(range(1, len(arch.block_outputs)))


def cut_layer(arch: Architecture, blocks: int) -> str:
    """The layer whose output feeds the top `blocks` blocks: where the frozen part ends."""
    valid = valid_block_counts(arch)
    if blocks not in valid:
        choices = f"{valid[0]} to {valid[-1]}" if valid else "none (it has no blocks to train)"
        raise PoetslearnError(
            f"--fine_tune_blocks {blocks} is not possible for {arch.name}; "
            f"it can train the top {choices}."
        )
    return arch.block_outputs[-(blocks + 1)]


@dataclass
class CutBackbone:
    bottom: object  # keras.Model: network input -> activations at the cut (frozen, cached)
    top: object  # keras.Model: activations at the cut -> features (trained)
    cut: str

    @property
    def activation_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.bottom.output.shape[1:])


def cut_backbone(arch: Architecture, backbone, blocks: int) -> CutBackbone:
    """`backbone` cut below its top `blocks` blocks. Both halves share its layers (and so its
    weights): training `top` trains the backbone itself, which the export then carries."""
    return cut_at(backbone, cut_layer(arch, blocks))


def whole_network(backbone) -> CutBackbone:
    """Nothing frozen: the cut is the network's input (--fine_tune_blocks all)."""
    return cut_at(backbone, backbone.layers[0].name)


def cut_at(backbone, cut: str) -> CutBackbone:
    """`backbone` cut at the output of the layer named `cut`."""
    import keras

    at_cut = backbone.get_layer(cut).output
    return CutBackbone(
        keras.Model(backbone.input, at_cut, name="frozen_bottom"),
        keras.Model(at_cut, backbone.output, name="trained_top"),
        cut,
    )


@dataclass(frozen=True)
class ActivationCodec:
    """How cached activations are stored: uint8 over a known range (error at most half a
    step: 6 / 255 / 2 = 0.0118 for ReLU6), or float16 when the range is not known."""

    low: float | None = None
    high: float | None = None

    @classmethod
    def for_architecture(cls, arch: Architecture) -> ActivationCodec:
        return cls(*arch.activation_range) if arch.activation_range else cls()

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint8) if self.low is not None else np.dtype(np.float16)

    @property
    def max_error(self) -> float | None:
        """The largest difference a stored value can have from the original (uint8 only)."""
        return None if self.low is None else (self.high - self.low) / 255 / 2

    def encode(self, activations: np.ndarray) -> np.ndarray:
        if self.low is None:
            return activations.astype(np.float16)
        steps = (np.asarray(activations, np.float32) - self.low) * (255 / (self.high - self.low))
        return np.clip(np.rint(steps), 0, 255).astype(np.uint8)

    def decode(self, stored: np.ndarray) -> np.ndarray:
        if self.low is None:
            return stored.astype(np.float32)
        return stored.astype(np.float32) * np.float32((self.high - self.low) / 255) + self.low

    def bytes_per_image(self, shape: tuple[int, ...]) -> int:
        return int(np.prod(shape)) * self.dtype.itemsize
