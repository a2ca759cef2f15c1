"""The new output layer, trained on cached bottlenecks: a softmax over classes, or a sigmoid per
label for multi-label data (what it learns is its `objectives.Objective`).

Training is a few thousand small matrix products, so it runs in NumPy: no graph to build, exactly
reproducible from a seed, and done in seconds even for 50,000 x 1,024 features. The layer is
trained on standardised features (which lets one learning rate suit every architecture) with Adam
and L2 weight decay, and the weights that scored best on the validation split are kept. The
standardisation is folded into every step rather than applied to a copy of the features (a
copy would be 370 MB more for Inception V3 on CIFAR-10), and into the exported layer, which takes
raw bottlenecks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from poetslearn.config import RetrainConfig
from poetslearn.train.objectives import SingleLabel, sigmoid, softmax

ACTIVATIONS = {"softmax": softmax, "sigmoid": sigmoid}


@dataclass
class HeadParams:
    steps: int
    learning_rate: float
    batch_size: int
    eval_step_interval: int
    validation_batch_size: int  # -1: the whole validation split at every evaluation
    weight_decay: float
    seed: int
    # True once training must stop, at its next evaluation (a --time_budget run's clock).
    out_of_time: Callable[[], bool] | None = None

    @classmethod
    def from_config(
        cls, config: RetrainConfig, steps: int, eval_step_interval: int | None = None, **changes
    ) -> HeadParams:
        """The settings `config` gives, for `steps` steps (chosen by the training-length rule
        or given), validation every `eval_step_interval` (default: the config's); `changes`
        override any other field by name."""
        return replace(
            cls(
                steps=steps,
                learning_rate=config.learning_rate,
                batch_size=config.train_batch_size,
                eval_step_interval=eval_step_interval or config.eval_step_interval,
                validation_batch_size=config.validation_batch_size,
                weight_decay=config.weight_decay,
                seed=config.seed,
            ),
            **changes,
        )


@dataclass
class OutputLayer:
    """logits = bottlenecks @ weights + biases; weights [dim, classes], biases [classes];
    probabilities = activation(logits).

    `feature_mean` and `feature_std` ([dim]) record the standardisation that training folded
    into the weights. Exports that quantize to 8 bits unfold it again (`standardised`): folded
    weights span a huge range (they are divided by each feature's spread), which one 8-bit
    scale per tensor cannot represent.
    """

    weights: np.ndarray
    biases: np.ndarray
    feature_mean: np.ndarray | None = None
    feature_std: np.ndarray | None = None
    activation: str = "softmax"  # "sigmoid": one independent probability per label
    thresholds: np.ndarray | None = None  # [labels], multi-label: chosen on validation

    def standardised(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(mean, std, w, b) with logits = ((x - mean) / std) @ w + b, equal to `logits(x)`."""
        dim = self.weights.shape[0]
        mean = self.feature_mean if self.feature_mean is not None else np.zeros(dim, np.float32)
        std = self.feature_std if self.feature_std is not None else np.ones(dim, np.float32)
        w = (self.weights * std[:, None]).astype(np.float32)
        b = (self.biases + mean @ self.weights).astype(np.float32)
        return mean.astype(np.float32), std.astype(np.float32), w, b

    def logits(self, x: np.ndarray) -> np.ndarray:
        return x @ self.weights + self.biases

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        return ACTIVATIONS[self.activation](self.logits(x))


@dataclass
class EvalRecord:
    step: int
    train_accuracy: float
    cross_entropy: float
    validation_accuracy: float
    validation_size: int
    validation_cross_entropy: float = float("nan")


@dataclass
class TrainResult:
    layer: OutputLayer
    best_step: int
    best_validation_accuracy: float
    history: list[EvalRecord] = field(default_factory=list)
    # Trainers that change the features themselves (fine-tuning) give the test split's new
    # features, and say what they did (for the metadata).
    test_features: np.ndarray | None = None
    details: dict = field(default_factory=dict)
    steps: int | None = None  # the new layer's training steps, as chosen
    # Seconds of the trainer's parts, when it has several (fine-tuning: the new layer, the
    # activations, the fine-tuning itself), for the closing line and --json.
    stage_seconds: dict[str, float] = field(default_factory=dict)


def accuracy(layer: OutputLayer, x: np.ndarray, y: np.ndarray) -> float:
    return float((layer.logits(x).argmax(axis=1) == y).mean()) if len(y) else float("nan")


# Rows per step when measuring the features' spread: whole-array expressions would hold two or
# three temporary copies of the features (1 GB for Inception V3's 45,000 x 2,048 on CIFAR-10).
_CHUNK_ROWS = 4096


def _column_mean_std(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and standard deviation, in float64, a chunk of rows at a time."""
    mean = x.mean(axis=0, dtype=np.float64)
    squares = np.zeros(x.shape[1], np.float64)
    for start in range(0, len(x), _CHUNK_ROWS):
        squares += np.square(x[start : start + _CHUNK_ROWS] - mean).sum(axis=0)
    return mean.astype(np.float32), np.sqrt(squares / max(len(x), 1)).astype(np.float32)


class _Adam:
    """Adam with bias correction, updating the weights and biases in place."""

    beta1, beta2, eps = 0.9, 0.999, 1e-8

    def __init__(self, w: np.ndarray, b: np.ndarray, learning_rate: float) -> None:
        self.w, self.b, self.learning_rate = w, b, learning_rate
        self.m_w, self.v_w = np.zeros_like(w), np.zeros_like(w)
        self.m_b, self.v_b = np.zeros_like(b), np.zeros_like(b)

    def update(self, step: int, g_w: np.ndarray, g_b: np.ndarray) -> None:
        beta1, beta2 = self.beta1, self.beta2
        self.m_w = beta1 * self.m_w + (1 - beta1) * g_w
        self.v_w = beta2 * self.v_w + (1 - beta2) * g_w * g_w
        self.m_b = beta1 * self.m_b + (1 - beta1) * g_b
        self.v_b = beta2 * self.v_b + (1 - beta2) * g_b * g_b
        lr_t = self.learning_rate * np.sqrt(1 - beta2**step) / (1 - beta1**step)
        self.w -= (lr_t * self.m_w / (np.sqrt(self.v_w) + self.eps)).astype(np.float32)
        self.b -= (lr_t * self.m_b / (np.sqrt(self.v_b) + self.eps)).astype(np.float32)


def _evaluation(
    step: int,
    layer: OutputLayer,
    batch: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray],
    validation_batch_size: int,
    rng: np.random.Generator,
    objective,
) -> EvalRecord:
    """The figures of one evaluation: on the last training batch and on (a sample of) validation;
    "accuracy" is the objective's score (accuracy, or mAP for multi-label data)."""
    (xb, yb), (val_x, val_y) = batch, validation
    batch_probs = objective.probabilities(layer.logits(xb))
    if 0 < validation_batch_size < len(val_x):
        pick = rng.choice(len(val_x), validation_batch_size, replace=False)
        vx, vy = val_x[pick], val_y[pick]
    else:
        vx, vy = val_x, val_y
    val_probs = objective.probabilities(layer.logits(vx))
    return EvalRecord(
        step,
        objective.score(batch_probs, yb),
        objective.loss(batch_probs, yb),
        objective.score(val_probs, vy),
        len(vy),
        objective.loss(val_probs, vy),
    )


def _batch_indices(rng: np.random.Generator, n: int, batch: int):
    """Indices of each step's batch: through a shuffled order, reshuffled for every epoch."""
    order, cursor = rng.permutation(n), 0
    while True:
        if cursor + batch > len(order):  # a new epoch: reshuffle
            order, cursor = rng.permutation(n), 0
        yield order[cursor : cursor + batch]
        cursor += batch


def step_line(record: EvalRecord, objective=None) -> str:
    objective = objective or SingleLabel()
    name, shown = objective.score_name, objective.format_score
    return (
        f"Step {record.step}: Train {name} = {shown(record.train_accuracy)}, Cross entropy = "
        f"{record.cross_entropy:.4f}, Validation {name} = "
        f"{shown(record.validation_accuracy)} (N={record.validation_size})"
    )


def _standardisation(train_x: np.ndarray):
    """(mean, std, inv_std [dim, 1], shift): standardised features are x * inv_std - shift."""
    mean, std = _column_mean_std(train_x)
    std = np.where(std < 1e-6, 1.0, std).astype(np.float32)  # constant features stay constant
    return mean, std, (1.0 / std).astype(np.float32)[:, None], (mean / std).astype(np.float32)


def train_output_layer(
    train_x: np.ndarray,
    train_y: np.ndarray,
    val_x: np.ndarray,
    val_y: np.ndarray,
    n_classes: int,
    params: HeadParams,
    log=print,
    on_eval=None,
    objective=None,
) -> TrainResult:
    """Trains the layer for `objective` (default: one label per image, softmax); `log` receives
    one line per evaluation, `on_eval(record, weights)` the figures themselves (weights [dim,
    classes] on standardised features), e.g. for TensorBoard."""
    objective = objective or SingleLabel()
    rng = np.random.default_rng(params.seed)
    # The layer (w, b) acts on standardised features; on raw features it is
    # x @ (w * inv_std) + (b - shift @ w), and the gradient of w is
    # inv_std * (x.T @ grad) - shift * sum(grad): the features are never copied.
    mean, std, inv_std, shift = _standardisation(train_x)

    def on_raw(w: np.ndarray, b: np.ndarray) -> OutputLayer:
        w_raw, b_raw = (w * inv_std).astype(np.float32), (b - shift @ w).astype(np.float32)
        return OutputLayer(w_raw, b_raw, activation=objective.activation)

    adam = _Adam(
        np.zeros((train_x.shape[1], n_classes), np.float32),
        np.zeros(n_classes, np.float32),
        params.learning_rate,
    )
    w, b = adam.w, adam.b  # updated in place
    batches = _batch_indices(rng, len(train_x), min(params.batch_size, len(train_x)))
    best = ((-np.inf, -np.inf), None, w.copy(), b.copy())
    history: list[EvalRecord] = []
    for step in range(1, params.steps + 1):
        idx = next(batches)
        xb, yb = train_x[idx], train_y[idx]
        grad = objective.logit_gradient(objective.probabilities(on_raw(w, b).logits(xb)), yb)
        g_b = grad.sum(axis=0)
        adam.update(
            step, inv_std * (xb.T @ grad) - shift[:, None] * g_b + params.weight_decay * w, g_b
        )
        if step % params.eval_step_interval == 0 or step == params.steps:
            batch, validation = (xb, yb), (val_x, val_y)
            record = _evaluation(
                step, on_raw(w, b), batch, validation, params.validation_batch_size, rng, objective
            )
            history.append(record)
            if on_eval is not None:
                on_eval(record, w)
            log(step_line(record, objective))
            if ranking(record) > best[0]:
                best = (ranking(record), record, w.copy(), b.copy())
            if params.out_of_time is not None and params.out_of_time():
                log(f"Out of time after step {step:,} of {params.steps:,} (--time_budget).")
                break
    _, kept, w, b = best
    layer = finished_layer(on_raw(w, b), mean, std, objective, (val_x, val_y))
    return TrainResult(layer, kept.step, kept.validation_accuracy, history)


def ranking(record: EvalRecord) -> tuple[float, float]:
    """The best validation score wins (a score that cannot be computed ranks last); among
    equals, the lower validation loss."""
    return (
        float(np.nan_to_num(record.validation_accuracy, nan=-1.0)),
        -record.validation_cross_entropy,
    )


def finished_layer(raw: OutputLayer, mean, std, objective, validation) -> OutputLayer:
    """The kept weights with their standardisation recorded and, for multi-label data, a
    threshold per label chosen on the whole validation split."""
    val_x, val_y = validation
    thresholds = objective.thresholds(lambda: objective.probabilities(raw.logits(val_x)), val_y)
    return OutputLayer(
        raw.weights,
        raw.biases,
        mean.astype(np.float32),
        std,
        objective.activation,
        thresholds,
    )
