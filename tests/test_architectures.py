"""The architectures registry: every network gives its penultimate features; all 16 MobileNets;
unknown names refused."""

from __future__ import annotations

import numpy as np
import pytest

from poetslearn.backbone.architectures import get_architecture
from poetslearn.backbone.weights import build_backbone
from poetslearn.extract.extractor import FeatureExtractor


@pytest.mark.parametrize(
    "name",
    [
        "mobilenet_1.0_224",
        "mobilenet_0.75_192",
        "mobilenet_0.50_160",
        "mobilenet_0.25_128",
        "inception_v3",
    ],
)
def test_architectures_give_their_penultimate_features(name):
    arch = get_architecture(name)
    backbone, info = build_backbone(arch, "none")
    extractor = FeatureExtractor(arch, backbone)
    # Raw pixels of an arbitrary size: the extractor resizes them itself.
    features = extractor(np.random.default_rng(0).uniform(0, 255, (2, 50, 70, 3)).astype("f4"))
    expected = 2048 if name == "inception_v3" else int(1024 * float(name.split("_")[1]))
    assert features.shape == (2, expected) == (2, arch.feature_dim)
    assert info.kind == "random"


def test_registry_has_all_16_mobilenets_and_rejects_unknown_names():
    from poetslearn.backbone.architectures import architecture_names

    names = architecture_names(include_tests=False)
    assert len([n for n in names if n.startswith("mobilenet_")]) == 16
    with pytest.raises(ValueError, match="Valid names: mobilenet_1.0_224"):
        get_architecture("mobilenet_2.0_224")
