"""The SavedModel export: backbone, new layer and labels in one TF2 module, with a signature for
pixels and one for encoded image files. Also a TF Hub image feature-vector module (its `__call__`),
so another `retrain --tfhub_module` can start from it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from poetslearn.train.head import SoftmaxLayer


def decode_rgb_on_white(data):
    """In-graph: an encoded image -> [h, w, 3] float32 0..255, with alpha composited onto white
    and gray expanded to RGB (as `images.decode_image` does for `label`)."""
    import tensorflow as tf

    img = tf.cast(tf.io.decode_image(data, expand_animations=False), tf.float32)
    channels = tf.shape(img)[-1]
    rgb = tf.cond(channels < 3, lambda: tf.image.grayscale_to_rgb(img[..., :1]),
                  lambda: img[..., :3])
    alpha = tf.cond(channels % 2 == 0, lambda: img[..., -1:] / 255.0,
                    lambda: tf.ones_like(img[..., :1]))
    return tf.round(rgb * alpha + 255.0 * (1.0 - alpha))


def _classifier_module(extractor, layer: SoftmaxLayer, class_names: list[str]):
    """A tf.Module holding backbone, new layer and labels, with two serving signatures."""
    import tensorflow as tf

    size = extractor.arch.input_size

    class Classifier(tf.Module):
        def __init__(self) -> None:
            super().__init__(name="poetslearn_classifier")
            self.backbone = extractor.backbone  # tracked: its variables are saved
            self.final_weights = tf.Variable(layer.weights, name="final_weights")
            self.final_biases = tf.Variable(layer.biases, name="final_biases")
            self.labels = tf.constant(class_names)

        def _outputs(self, images):
            probabilities = tf.nn.softmax(
                tf.matmul(extractor.features(images), self.final_weights) + self.final_biases)
            classes = tf.argmax(probabilities, axis=1)
            return {"probabilities": probabilities, "classes": classes,
                    "labels": tf.gather(self.labels, classes)}

        @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32)])
        def __call__(self, images):
            """TF Hub's image feature-vector convention: RGB in [0, 1] -> [N, features]. This
            makes the SavedModel usable as `--tfhub_module` for another retrain."""
            return extractor.features(images * 255.0)

        @tf.function(input_signature=[
            tf.TensorSpec([None, None, None, 3], tf.float32, name="images")])
        def classify_images(self, images):
            """RGB pixels, float32 0..255, any size."""
            return self._outputs(images)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
        def classify_bytes(self, image_bytes):
            """Encoded images (JPEG, PNG, GIF, BMP), one string each. Decoded as `poetslearn
            label` decodes: gray becomes RGB, transparency is laid on white, the first frame of
            a GIF is used. Unlike `label`, the EXIF orientation of a JPEG is not applied
            (TensorFlow has no in-graph EXIF reader): send such photos upright."""
            def decode(data):
                img = tf.image.resize(decode_rgb_on_white(data)[tf.newaxis], (size, size),
                                      method="bilinear", antialias=True)
                return img[0]

            images = tf.map_fn(decode, image_bytes,
                               fn_output_signature=tf.TensorSpec([size, size, 3], tf.float32))
            return self._outputs(images)

    return Classifier()


def export_saved_model(extractor, layer: SoftmaxLayer, class_names: list[str],
                       directory: Path) -> Path:
    """A SavedModel with signatures `serving_default` (pixels) and `classify_bytes`.

    Written to a temporary folder beside `directory`, then swapped in, so an existing SavedModel
    is only replaced by a complete one.
    """
    import shutil

    import tensorflow as tf

    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    module = _classifier_module(extractor, layer, class_names)
    tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}."))
    try:
        tf.saved_model.save(module, str(tmp), signatures={
            "serving_default": module.classify_images, "classify_bytes": module.classify_bytes})
        old = directory.with_name(f".{directory.name}.old")
        if directory.exists():
            os.replace(directory, old)
        os.replace(tmp, directory)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory
