"""The expert linear probe on cached CIFAR-10 bottlenecks, against poetslearn's default head.

The probe: multinomial logistic regression on standardised features, L2 strength chosen on the
validation split from a grid, fitted to convergence with L-BFGS (what a practitioner would do
with scikit-learn). The head must come within 0.5 points of it; the test set is only reported.

    python scripts/expert_probe.py --architecture mobilenet_0.25_128 --model_dir ../shared/models
"""

from __future__ import annotations

import time

import click
import numpy as np
from _common import cifar10_bottlenecks, cifar10_options
from scipy.optimize import minimize

from poetslearn.config import RetrainConfig
from poetslearn.train.head import HeadParams, train_output_layer
from poetslearn.train.objectives import softmax
from poetslearn.train.schedule import new_layer_steps


def fit_logistic(x: np.ndarray, y: np.ndarray, n_classes: int, l2: float) -> np.ndarray:
    """Weights [dim + 1, classes] minimising mean cross entropy + l2/2 * |W|^2 (bias free)."""
    xb = np.hstack([x, np.ones((len(x), 1), x.dtype)]).astype(np.float64)
    onehot = np.eye(n_classes)[y]

    def loss_grad(flat):
        w = flat.reshape(-1, n_classes)
        p = softmax(xb @ w)
        loss = -np.log(np.maximum(p[np.arange(len(y)), y], 1e-300)).mean()
        loss += 0.5 * l2 * (w[:-1] ** 2).sum()
        grad = xb.T @ (p - onehot) / len(y)
        grad[:-1] += l2 * w[:-1]
        return loss, grad.ravel()

    w0 = np.zeros((xb.shape[1], n_classes))
    result = minimize(loss_grad, w0.ravel(), jac=True, method="L-BFGS-B", options={"maxiter": 1000})
    return result.x.reshape(-1, n_classes)


def accuracy_of(w: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
    return float(((np.hstack([x, np.ones((len(x), 1))]) @ w).argmax(1) == y).mean())


@click.command()
@cifar10_options
def main(architecture, weights, model_dir, data_dir, bottleneck_dir) -> None:
    vectors, splits, arch, info = cifar10_bottlenecks(
        architecture, weights, model_dir, data_dir, bottleneck_dir
    )
    tx, vx, sx = (vectors[s] for s in ("train", "validation", "test"))
    ty, vy, sy = (splits[s].labels for s in ("train", "validation", "test"))
    mean, std = tx.mean(0), tx.std(0) + 1e-6
    tz, vz, sz = ((a - mean) / std for a in (tx, vx, sx))

    print(f"{arch.name} ({info.description})")
    print(f"{'model':34s} {'val':>7s} {'test':>7s} {'0-999':>7s} {'seconds':>8s}")
    best = None
    for l2 in (1e-5, 1e-4, 1e-3, 1e-2):
        t = time.perf_counter()
        w = fit_logistic(tz, ty, 10, l2)
        seconds = time.perf_counter() - t
        row = (accuracy_of(w, vz, vy), accuracy_of(w, sz, sy), accuracy_of(w, sz[:1000], sy[:1000]))
        print(
            f"{'probe, L2 ' + format(l2, 'g'):34s} {row[0]:7.1%} {row[1]:7.1%} {row[2]:7.1%} "
            f"{seconds:8.1f}"
        )
        if best is None or row[0] > best[1][0]:
            best = (l2, row)
    d = RetrainConfig()
    t = time.perf_counter()
    layer = train_output_layer(
        tx,
        ty,
        vx,
        vy,
        10,
        HeadParams.from_config(
            d, new_layer_steps(len(tx), d.train_batch_size), validation_batch_size=-1
        ),
        log=lambda *_: None,
    ).layer
    seconds = time.perf_counter() - t
    head = [
        float((layer.logits(a).argmax(1) == b).mean())
        for a, b in ((vx, vy), (sx, sy), (sx[:1000], sy[:1000]))
    ]
    print(
        f"{'poetslearn default head':34s} {head[0]:7.1%} {head[1]:7.1%} {head[2]:7.1%} "
        f"{seconds:8.1f}"
    )
    print(
        f"expert probe (L2 {best[0]:g}, chosen on validation): test {best[1][1]:.1%}; "
        f"head minus probe on test: {100 * (head[1] - best[1][1]):+.1f} points, "
        f"on validation: {100 * (head[0] - best[1][0]):+.1f} points"
    )


if __name__ == "__main__":
    main()
