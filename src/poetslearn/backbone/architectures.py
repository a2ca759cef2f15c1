"""Registry of the networks `retrain` can use as a frozen feature extractor.

Each name maps to the facts the rest of the program needs (input size, feature size, how pixels
are scaled, where official weights live), so that no other module branches on architecture names.
Callers resolve settings as: explicit argument > architecture's entry > constant.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

KERAS_MOBILENET_URL = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet/"
KERAS_INCEPTION_V3_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"
)
# Where the codelab's retrain.py downloaded MobileNet v1 from (its http:// address, served over
# https at this one).
CODELAB_MOBILENET_URL = "https://storage.googleapis.com/download.tensorflow.org/models/"
# The sha256 of the codelab tarballs we could check against the official files. Google publishes
# none; the other twelve could not be fetched where this was written (no network), so their
# downloads are checked for completeness and by the import, which takes only a whole MobileNet.
CODELAB_TARBALL_SHA256 = {
    "mobilenet_v1_0.25_128_frozen.tgz": "30af63cf9039861bc03f86c7b8092fab754d51b27f042830c456ddbfa2b72fce",  # noqa: E501
    "mobilenet_v1_0.25_160_frozen.tgz": "2b2eb36110bc63f4cf749ef114063f45651be7e9d9eacb315eeedc023ab8a2f5",  # noqa: E501
    "mobilenet_v1_0.25_192_frozen.tgz": "a3872bf6231336e3e66778e95a2b6abf88d26cbaf3e772c6ea6ec2a422b95be6",  # noqa: E501
    "mobilenet_v1_0.25_224_frozen.tgz": "1cddeede49eb35af36061aaa66bf643b81f7ea89abc85f6ffef8f0bf00891756",  # noqa: E501
}


@dataclass(frozen=True)
class WeightsFile:
    """A downloadable weights file: where it is published and the hash it must have (None
    where none is known: Keras publishes an md5 for Inception V3 only)."""

    filename: str
    url: str
    sha256: str | None = None
    md5: str | None = None


@dataclass(frozen=True)
class Architecture:
    name: str
    family: str
    input_size: int
    feature_dim: int
    # Builds the backbone: [N, size, size, 3] scaled floats -> [N, feature_dim] features.
    build_backbone: Callable[[], object] = field(repr=False, compare=False)
    # Pixels in 0..255 become (x - input_mean) / input_std, i.e. [-1, 1] for these networks.
    input_mean: float = 127.5
    input_std: float = 127.5
    alpha: float | None = None
    keras_weights: WeightsFile | None = None  # the official Keras file (no classifier top)
    codelab_tarball: WeightsFile | None = None  # the codelab's frozen graph (MobileNet v1)
    for_tests: bool = False
    # Fast engines to try, fastest first (measured by scripts/benchmark.py on 2 AVX-512 cores):
    # XNNPACK wins on MobileNet's depthwise layers, ONNX Runtime on Inception's dense ones.
    engines: tuple[str, ...] = ("tflite", "onnxruntime")
    # Fine-tuning: the layers that end each block, bottom (the stem) to top. Training the top K
    # blocks cuts the network at block_outputs[-(K + 1)]; what comes out there is cached.
    block_outputs: tuple[str, ...] = ()
    # The range every activation at those cuts lies in (MobileNet: ReLU6, so [0, 6]), which lets
    # the activation cache store one byte per value; None: unbounded, stored as float16.
    activation_range: tuple[float, float] | None = None
    # Published facts that let `--time_budget` compare networks before running any: the
    # multiply-adds of one image (millions; extraction time scales with them) and the ImageNet
    # top-1 accuracy (a prior for transfer accuracy where none was measured).
    million_macs: float | None = None
    imagenet_top1: float | None = None

    def preprocess(self, images):
        """[N, H, W, 3] float32 0..255 -> [N, s, s, 3] network input: an antialiased bilinear
        resize to the input size, then (x - input_mean) / input_std."""
        import tensorflow as tf

        size = (self.input_size, self.input_size)
        resized = tf.image.resize(images, size, method="bilinear", antialias=True)
        return (resized - self.input_mean) / self.input_std

    @property
    def preprocessing(self) -> dict:
        """How raw RGB pixels become network input; stored in caches keys and export metadata."""
        return {
            "resize": "bilinear",
            "antialias": True,
            "height": self.input_size,
            "width": self.input_size,
            "mean": self.input_mean,
            "std": self.input_std,
        }


MOBILENET_ALPHAS = ("1.0", "0.75", "0.50", "0.25")
# The stem, then the 13 depthwise-separable blocks (Keras's layer names).
MOBILENET_BLOCK_OUTPUTS = ("conv1_relu", *(f"conv_pw_{i}_relu" for i in range(1, 14)))
MOBILENET_SIZES = (224, 192, 160, 128)
# tensorflow/models research/slim/nets/mobilenet_v1.md: million multiply-adds and ImageNet top-1
# (%) of each (alpha, size), and Inception V3's from research/slim's table of pre-trained models.
MOBILENET_FACTS = {
    ("1.0", 224): (569, 70.9), ("1.0", 192): (418, 70.0),
    ("1.0", 160): (291, 68.0), ("1.0", 128): (186, 65.2),
    ("0.75", 224): (317, 68.4), ("0.75", 192): (233, 67.2),
    ("0.75", 160): (162, 65.3), ("0.75", 128): (104, 62.1),
    ("0.50", 224): (150, 63.3), ("0.50", 192): (110, 61.7),
    ("0.50", 160): (77, 59.1), ("0.50", 128): (49, 56.3),
    ("0.25", 224): (41, 49.8), ("0.25", 192): (34, 47.7),
    ("0.25", 160): (21, 45.5), ("0.25", 128): (14, 41.5),
}  # fmt: skip
INCEPTION_V3_FACTS = (5713, 78.0)


def _mobilenet_builder(alpha: float, size: int) -> Callable[[], object]:
    def build():
        import keras

        return keras.applications.MobileNet(
            input_shape=(size, size, 3), alpha=alpha, include_top=False, weights=None, pooling="avg"
        )

    return build


def _inception_v3_builder() -> object:
    import keras

    return keras.applications.InceptionV3(
        input_shape=(299, 299, 3), include_top=False, weights=None, pooling="avg"
    )


def _tiny_test_builder() -> object:
    """A few-millisecond network for tests: one strided convolution and global average pooling.

    Its initialiser is seeded, so its "random" weights are the same in every process; that keeps
    the bottleneck cache valid across test runs, exactly as genuine weights would.
    """
    import keras

    inputs = keras.Input((32, 32, 3), name="image")
    x = keras.layers.Conv2D(
        16,
        3,
        strides=2,
        activation="relu",
        name="conv",
        kernel_initializer=keras.initializers.GlorotUniform(seed=7),
        bias_initializer=keras.initializers.RandomUniform(-0.1, 0.1, seed=8),
    )(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, x, name="test_tiny")


def _codelab_tarball(alpha_text: str, size: int) -> WeightsFile:
    name = f"mobilenet_v1_{alpha_text}_{size}_frozen.tgz"
    return WeightsFile(name, CODELAB_MOBILENET_URL + name, CODELAB_TARBALL_SHA256.get(name))


def _build_registry() -> dict[str, Architecture]:
    registry: dict[str, Architecture] = {}
    for alpha_text in MOBILENET_ALPHAS:
        alpha = float(alpha_text)
        keras_alpha = {"1.0": "1_0", "0.75": "7_5", "0.50": "5_0", "0.25": "2_5"}[alpha_text]
        for size in MOBILENET_SIZES:
            name = f"mobilenet_{alpha_text}_{size}"
            filename = f"mobilenet_{keras_alpha}_{size}_tf_no_top.h5"
            registry[name] = Architecture(
                name=name,
                family="mobilenet_v1",
                input_size=size,
                feature_dim=int(1024 * alpha),
                build_backbone=_mobilenet_builder(alpha, size),
                alpha=alpha,
                keras_weights=WeightsFile(filename, KERAS_MOBILENET_URL + filename),
                codelab_tarball=_codelab_tarball(alpha_text, size),
                block_outputs=MOBILENET_BLOCK_OUTPUTS,
                activation_range=(0.0, 6.0),
                million_macs=MOBILENET_FACTS[alpha_text, size][0],
                imagenet_top1=MOBILENET_FACTS[alpha_text, size][1],
            )
    filename = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
    registry["inception_v3"] = Architecture(
        name="inception_v3",
        family="inception_v3",
        input_size=299,
        feature_dim=2048,
        build_backbone=_inception_v3_builder,
        engines=("onnxruntime", "tflite"),
        block_outputs=tuple(f"mixed{i}" for i in range(11)),
        keras_weights=WeightsFile(
            filename, KERAS_INCEPTION_V3_URL + filename, md5="bcbd6486424b2319ff4ef7d526e38f63"
        ),
        million_macs=INCEPTION_V3_FACTS[0],
        imagenet_top1=INCEPTION_V3_FACTS[1],
    )
    registry["test_tiny"] = Architecture(
        name="test_tiny",
        family="test",
        input_size=32,
        feature_dim=16,
        build_backbone=_tiny_test_builder,
        for_tests=True,
        block_outputs=("image", "conv"),
        activation_range=(-1.0, 1.0),
        million_macs=0.1,  # 15x15x16 outputs of a 3x3x3 convolution
    )
    return registry


ARCHITECTURES: dict[str, Architecture] = _build_registry()


def architecture_names(include_tests: bool = True) -> list[str]:
    return [name for name, arch in ARCHITECTURES.items() if include_tests or not arch.for_tests]


def get_architecture(name: str) -> Architecture:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise ValueError(
            f"Unknown architecture {name!r}. Valid names: "
            f"{', '.join(architecture_names(include_tests=False))}."
        ) from None
