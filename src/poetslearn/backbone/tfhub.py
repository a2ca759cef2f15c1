"""Backbones from TF Hub: any TF2 image feature-vector SavedModel (a URL or a local folder).

Keras 3 cannot hold `hub.KerasLayer`, so the module is loaded with `hub.load` and called from
plain TensorFlow functions through a small tf.Module that looks, to the rest of poetslearn, like a
Keras backbone: `backbone(x, training=False)`, `output_shape`, `weights`. TF Hub's convention for
image modules is RGB floats in [0, 1], so the architecture scales pixels by 1/255.
"""

from __future__ import annotations

from pathlib import Path

from poetslearn.backbone.architectures import Architecture
from poetslearn.backbone.weights import WeightsInfo
from poetslearn.errors import WeightsError


def _load_module(handle: str):
    import tensorflow_hub as hub

    if "://" not in handle and not Path(handle).is_dir():
        raise WeightsError(
            f"--tfhub_module {handle}: no such folder, and not a URL. Give a local "
            f"SavedModel folder (what works offline) or a TF Hub URL."
        )
    try:
        return hub.load(handle)
    except Exception as e:  # noqa: BLE001 - network errors, bad SavedModels, ...
        raise WeightsError(
            f"--tfhub_module {handle} could not be loaded ({e}). Offline, download "
            f"the module on a connected machine and pass its folder."
        ) from e


def module_input_size(module) -> int | None:
    """The square input size the module's __call__ was saved with, if it is fixed."""
    try:
        functions = module.__call__.concrete_functions
    except AttributeError:
        return None
    for function in functions:
        args = function.structured_input_signature[0]
        if args and hasattr(args[0], "shape") and args[0].shape.rank == 4:
            height, width = args[0].shape[1], args[0].shape[2]
            if height and width and height == width:
                return int(height)
    return None


def _backbone_class():
    import tensorflow as tf

    class HubBackbone(tf.Module):
        """A loaded TF Hub module with the interface of our Keras backbones."""

        def __init__(self, module, feature_dim: int) -> None:
            super().__init__(name="tfhub_backbone")
            self.module = module  # tracked, so exports save its variables
            self.output_shape = (None, feature_dim)

        def __call__(self, images, training=False):
            return self.module(images)

        @property
        def weights(self):
            return self.module.variables if hasattr(self.module, "variables") else []

    return HubBackbone


def hub_architecture(
    handle: str, image_size: int | None = None
) -> tuple[Architecture, object, WeightsInfo]:
    """(architecture, backbone, weights info) for a TF Hub image feature-vector module."""
    import tensorflow as tf

    module = _load_module(handle)
    size = image_size or module_input_size(module)
    if size is None:
        raise WeightsError(
            f"--tfhub_module {handle} does not fix its input size; give it with "
            f"--image_size (224 for most image modules)."
        )
    try:
        probe = module(tf.zeros([1, size, size, 3], tf.float32))
    except Exception as e:  # noqa: BLE001
        raise WeightsError(
            f"--tfhub_module {handle} does not take a [N, {size}, {size}, 3] image "
            f"batch ({e}); is it an image feature-vector module?"
        ) from e
    if isinstance(probe, dict) or probe.shape.rank != 2:
        raise WeightsError(
            f"--tfhub_module {handle} returned {type(probe).__name__} of shape "
            f"{getattr(probe, 'shape', '?')}; an image feature-vector module "
            f"returns [N, features]."
        )
    feature_dim = int(probe.shape[-1])
    backbone = _backbone_class()(module, feature_dim)
    name = "tfhub_" + "".join(c if c.isalnum() else "_" for c in handle.rstrip("/"))[-60:]
    arch = Architecture(
        name=name,
        family="tfhub",
        input_size=size,
        feature_dim=feature_dim,
        build_backbone=lambda: backbone,
        input_mean=0.0,
        input_std=255.0,
    )
    info = WeightsInfo("tfhub", f"TF Hub module {handle}", str(handle))
    return arch, backbone, info
