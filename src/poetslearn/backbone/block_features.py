"""Bottlenecks made from several blocks: the average-pooled output of each of the network's top N
blocks, side by side (--bottleneck_blocks N), in the manner of Head2Toe (Evci et al., 2022).

The codelab's bottleneck is the pooled output of the last block alone (N = 1). Lower blocks see
textures and parts that the last block has already folded into ImageNet's categories; pooled and
handed to the same linear layer, they lift accuracy on other data sets at no extra extraction
cost (every block runs anyway) and with a wider vector to cache and train on. Measured on
CIFAR-10: BENCHMARKS.md, "Bottlenecks from several blocks".
"""

from __future__ import annotations

from poetslearn.backbone.architectures import Architecture
from poetslearn.errors import PoetslearnError


def valid_bottleneck_blocks(arch: Architecture) -> list[int]:
    """The N `arch` can pool: 1 (the bottleneck) up to every block, stem included."""
    return list(range(1, max(len(arch.block_outputs), 1) + 1))


def resolve_bottleneck_blocks(arch: Architecture, blocks: int | str) -> int:
    """`blocks` ("all" or a number) as a number of blocks, checked against `arch`."""
    valid = valid_bottleneck_blocks(arch)
    if blocks == "all":
        return valid[-1]
    if blocks not in valid:
        raise PoetslearnError(
            f"--bottleneck_blocks {blocks} is not possible for {arch.name}; "
            f"it can pool the top 1 to {valid[-1]} blocks (or 'all')."
        )
    return blocks


def pooled_layers(arch: Architecture, blocks: int) -> tuple[str, ...]:
    """The layers whose pooled outputs make the bottleneck, bottom to top (the last one's is the
    codelab's bottleneck itself)."""
    return arch.block_outputs[-blocks:] if blocks > 1 else ()


def with_block_features(arch: Architecture, backbone, blocks: int):
    """`backbone` giving the pooled outputs of its top `blocks` blocks (a number that
    `resolve_bottleneck_blocks` gave), concatenated: the lower blocks' first, then the backbone's
    own output (its bottleneck). One block: `backbone`."""
    if blocks == 1:
        return backbone
    import keras

    pooled = [
        keras.layers.GlobalAveragePooling2D(name=f"pooled_{name}")(backbone.get_layer(name).output)
        for name in pooled_layers(arch, blocks)[:-1]
    ]
    features = keras.layers.Concatenate(name="block_features")([*pooled, backbone.output])
    return keras.Model(backbone.input, features, name=f"{backbone.name}_{blocks}_blocks")
