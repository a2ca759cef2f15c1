"""The codelab's `label_image.py`, step for step (our own TF1-style implementation), as a
baseline for `scripts/label_speed.py`: import TensorFlow, load the graph, decode the image with
the decoder its name calls for, TF1's resize_bilinear, (x - mean) / std, run, print the top 5.

    python scripts/codelab_label_image.py --graph g.pb --labels l.txt --image cat.jpg
"""

from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--graph", required=True)
    parser.add_argument("--labels", required=True)
    parser.add_argument("--image", required=True)
    parser.add_argument("--input_size", type=int, default=224)
    parser.add_argument("--input_mean", type=float, default=128)
    parser.add_argument("--input_std", type=float, default=128)
    args = parser.parse_args()

    import tensorflow as tf

    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        v1.import_graph_def(v1.GraphDef.FromString(open(args.graph, "rb").read()), name="")
    with tf.Graph().as_default(), v1.Session() as session:
        data = v1.read_file(args.image)
        if args.image.endswith(".png"):
            image = v1.image.decode_png(data, channels=3)
        elif args.image.endswith(".gif"):
            image = v1.squeeze(v1.image.decode_gif(data))
        elif args.image.endswith(".bmp"):
            image = v1.image.decode_bmp(data)
        else:
            image = v1.image.decode_jpeg(data, channels=3)
        resized = v1.image.resize_bilinear(
            v1.expand_dims(v1.cast(image, tf.float32), 0), [args.input_size, args.input_size]
        )
        pixels = session.run((resized - args.input_mean) / args.input_std)
    with v1.Session(graph=graph) as session:
        scores = session.run("final_result:0", {"input:0": pixels})[0]
    labels = [line.strip() for line in open(args.labels, encoding="utf-8")]
    for i in np.argsort(-scores)[:5]:
        print(f"{labels[i]} (score={scores[i]:.5f})")


if __name__ == "__main__":
    main()
