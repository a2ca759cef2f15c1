"""The seams fine-tuning needs: where each architecture is cut for K trained blocks, the two
halves of the split backbone, and the compact storage of the activations at the cut."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import randomise_batch_norm
from poetslearn.backbone.architectures import ARCHITECTURES, get_architecture
from poetslearn.backbone.cut import ActivationCodec, cut_backbone, cut_layer, valid_block_counts
from poetslearn.backbone.weights import build_backbone
from poetslearn.budget.costs import activation_bytes, is_mobilenet
from poetslearn.errors import PoetslearnError


@pytest.mark.big_network
def test_every_architecture_names_its_blocks_and_they_exist():
    for name in ("mobilenet_0.25_128", "mobilenet_1.0_224", "inception_v3", "test_tiny"):
        arch = get_architecture(name)
        model = arch.build_backbone()
        assert all(model.get_layer(layer) for layer in arch.block_outputs), name
    assert valid_block_counts(get_architecture("mobilenet_0.50_224")) == list(range(1, 14))
    assert valid_block_counts(get_architecture("inception_v3")) == list(range(1, 11))
    assert all(a.block_outputs for a in ARCHITECTURES.values())
    assert cut_layer(get_architecture("mobilenet_0.50_224"), 2) == "conv_pw_11_relu"
    assert cut_layer(get_architecture("mobilenet_0.50_224"), 13) == "conv1_relu"
    assert cut_layer(get_architecture("inception_v3"), 1) == "mixed9"
    with pytest.raises(PoetslearnError, match="mobilenet_0.50_224; it can train the top 1 to 13"):
        cut_layer(get_architecture("mobilenet_0.50_224"), 14)


@pytest.mark.parametrize(
    "name, blocks, shape",
    [
        ("mobilenet_0.25_128", 1, (4, 4, 256)),
        ("mobilenet_0.25_128", 2, (8, 8, 128)),
        ("mobilenet_0.25_128", 13, (64, 64, 8)),
        ("inception_v3", 3, (17, 17, 768)),
        ("test_tiny", 1, (32, 32, 3)),
    ],
)
def test_top_of_bottom_is_the_whole_backbone(name, blocks, shape):
    arch = get_architecture(name)
    backbone, _ = build_backbone(arch, "none")
    randomise_batch_norm(backbone)
    split = cut_backbone(arch, backbone, blocks)
    assert split.activation_shape == shape
    if is_mobilenet(arch):  # what --time_budget costs is what the cache will hold
        codec = ActivationCodec.for_architecture(arch)
        assert activation_bytes(arch, blocks) == codec.bytes_per_image(shape)
    x = np.random.default_rng(1).uniform(-1, 1, (2, arch.input_size, arch.input_size, 3))
    whole = backbone(x.astype(np.float32), training=False).numpy()
    halves = split.top(split.bottom(x.astype(np.float32), training=False), training=False)
    np.testing.assert_allclose(halves.numpy(), whole, rtol=1e-5, atol=1e-5)
    # The halves share the backbone's layers: what training changes in `top` is the backbone.
    top_weights = {id(w) for w in split.top.weights}
    assert top_weights and top_weights <= {id(w) for w in backbone.weights}
    assert not top_weights & {id(w) for w in split.bottom.weights}


def test_activations_are_stored_in_one_byte_within_the_stated_error():
    codec = ActivationCodec.for_architecture(get_architecture("mobilenet_0.50_224"))
    relu6 = np.clip(np.random.default_rng(2).normal(1.5, 2.0, (3, 7, 7, 16)), 0, 6)
    stored = codec.encode(relu6)
    assert stored.dtype == np.uint8 and codec.bytes_per_image((7, 7, 16)) == 7 * 7 * 16
    error = np.abs(codec.decode(stored) - relu6).max()
    assert error <= codec.max_error + 1e-6 and codec.max_error == pytest.approx(6 / 255 / 2)
    assert codec.decode(codec.encode(np.array([0.0, 6.0]))).tolist() == [0.0, 6.0]
    unbounded = ActivationCodec.for_architecture(get_architecture("inception_v3"))
    values = np.random.default_rng(3).gamma(2.0, 3.0, (50,)).astype(np.float32)
    assert unbounded.encode(values).dtype == np.float16 and unbounded.max_error is None
    np.testing.assert_allclose(unbounded.decode(unbounded.encode(values)), values, rtol=1e-3)
