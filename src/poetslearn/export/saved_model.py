"""The SavedModel export: backbone, new layer and labels frozen into one TF2 SavedModel, with a
signature for pixels (`serving_default`) and one for encoded image files (`classify_bytes`), and
a TF Hub image feature-vector `__call__`, so another `retrain --tfhub_module` can start from it.

Every weight is a constant, as in the frozen graph, and the SavedModel holds no variables: that is
what lets TensorFlow Serving and `saved_model_cli run` (a TF1 session restoring variables by name)
run it. A tf.Module tracking a Keras 3 model saves its variables under names such loaders cannot
find (keras-team/keras#19274, tensorflow/serving#2250); with no variables there is nothing to find.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from poetslearn.backbone.convert import freeze
from poetslearn.export.graph import mirror_averaged
from poetslearn.train.head import OutputLayer


def decode_rgb_on_white(data):
    """In-graph: an encoded image -> [h, w, 3] float32 0..255, with alpha composited onto white
    and gray expanded to RGB (as `images.decode_image` does for `label`)."""
    import tensorflow as tf

    img = tf.cast(tf.io.decode_image(data, expand_animations=False), tf.float32)
    channels = tf.shape(img)[-1]
    rgb = tf.cond(
        channels < 3, lambda: tf.image.grayscale_to_rgb(img[..., :1]), lambda: img[..., :3]
    )
    alpha = tf.cond(
        channels % 2 == 0, lambda: img[..., -1:] / 255.0, lambda: tf.ones_like(img[..., :1])
    )
    return tf.round(rgb * alpha + 255.0 * (1.0 - alpha))


def _frozen_network(extractor, layer: OutputLayer, mirror: bool = False):
    """pixels [N, H, W, 3] float32 0..255, any size -> (features [N, dim], probabilities
    [N, classes]), frozen: the one copy of the weights every entry point calls."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    def network(images):
        features = mirror_averaged(extractor.features, mirror)(images)
        logits = tf.matmul(features, layer.weights) + layer.biases
        return features, getattr(tf.nn, layer.activation)(logits)  # softmax, or sigmoid

    frozen = freeze(network)
    return lambda images: tuple(frozen(images))  # a frozen function returns a flat list


def build_frozen_module(
    extractor, layer: OutputLayer, class_names: list[str], mirror: bool = False
):
    """A tf.Module with the serving signatures and TF Hub's `__call__`, around the frozen network
    (decoding, argmax and the label lookup hold no weights)."""
    import tensorflow as tf

    network = _frozen_network(extractor, layer, mirror)
    size = extractor.arch.input_size

    def outputs(probabilities):
        classes = tf.argmax(probabilities, axis=1)
        answer = {
            "probabilities": probabilities,
            "classes": classes,
            "labels": tf.gather(tf.constant(class_names), classes),
        }
        if layer.thresholds is not None:  # multi-label: each label's decision at its threshold
            answer["decisions"] = probabilities >= tf.constant(layer.thresholds, tf.float32)
        return answer

    def decode(data):
        return tf.image.resize(
            decode_rgb_on_white(data)[tf.newaxis], (size, size), method="bilinear", antialias=True
        )[0]

    class Classifier(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32)])
        def __call__(self, images):
            """TF Hub's image feature-vector convention: RGB in [0, 1] -> [N, features]. This
            makes the SavedModel usable as `--tfhub_module` for another retrain."""
            return network(images * 255.0)[0]

        @tf.function(
            input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name="images")]
        )
        def classify_images(self, images):
            """RGB pixels, float32 0..255, any size."""
            return outputs(network(images)[1])

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
        def classify_bytes(self, image_bytes):
            """Encoded images (JPEG, PNG, GIF, BMP), one string each. Decoded as `poetslearn
            label` decodes: gray becomes RGB, transparency is laid on white, the first frame of
            a GIF is used. Unlike `label`, the EXIF orientation of a JPEG is not applied
            (TensorFlow has no in-graph EXIF reader): send such photos upright."""
            images = tf.map_fn(
                decode, image_bytes, fn_output_signature=tf.TensorSpec([size, size, 3], tf.float32)
            )
            return outputs(network(images)[1])

    return Classifier(name="poetslearn_classifier")


def export_saved_model(
    extractor, layer: OutputLayer, class_names: list[str], directory: Path, mirror: bool = False
) -> Path:
    """A SavedModel with signatures `serving_default` (pixels) and `classify_bytes`.

    Written to a temporary folder beside `directory`, then swapped in, so an existing SavedModel
    is only replaced by a complete one.
    """
    import tensorflow as tf

    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    module = build_frozen_module(extractor, layer, class_names, mirror)
    tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}."))
    try:
        tf.saved_model.save(
            module,
            str(tmp),
            signatures={
                "serving_default": module.classify_images,
                "classify_bytes": module.classify_bytes,
            },
        )
        old = directory.with_name(f".{directory.name}.old")
        if directory.exists():
            os.replace(directory, old)
        os.replace(tmp, directory)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory
