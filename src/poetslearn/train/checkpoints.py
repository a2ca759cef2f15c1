"""Fine-tuning checkpoints: one file per run setting (everything that must be equal for a resumed
run to end as an uninterrupted one), holding the trained variables, the optimizer's state, the
best epoch's weights and the history, written atomically after every epoch."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np

from poetslearn.outputs import write_atomic
from poetslearn.train.head import EvalRecord, OutputLayer


def checkpoint_path(config, extractor, start: OutputLayer, train_keys: list[bytes]) -> Path:
    """One file per run setting: what must be equal for a resumed run to end as this one."""
    facts = {
        "backbone": extractor.fingerprint,
        "blocks": config.fine_tune_blocks,
        "epochs": config.fine_tune_epochs,
        "lr": config.fine_tune_learning_rate,
        "batch": config.fine_tune_batch_size,
        "decay": config.weight_decay,
        "seed": config.seed,
        "flip": config.flip_left_right,
        "recipe": [config.fine_tune_warmup, config.label_smoothing, config.mixup],
        "start": hashlib.sha256(start.weights.tobytes()).hexdigest(),
        "data": hashlib.sha256(b"".join(train_keys)).hexdigest(),
    }
    if config.test_time_mirror:  # validation figures of another kind (old runs keep their file)
        facts["mirror"] = True
    digest = hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:20]
    return Path(config.bottleneck_dir) / "checkpoints" / f"fine-tune-{digest}.npz"


def save_checkpoint(path: Path, epoch: int, model, optimizer, best: tuple, history: list) -> None:
    arrays = {f"v{i}": v.numpy() for i, v in enumerate(model.variables)}
    arrays.update({f"o{i}": v.numpy() for i, v in enumerate(optimizer.variables)})
    arrays.update({f"b{i}": w for i, w in enumerate(best[2])})
    meta = {"epoch": epoch, "best": [best[0], best[1]], "history": [r.__dict__ for r in history]}
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)
    write_atomic(path, buffer.getvalue())


def restore_checkpoint(path: Path, model, optimizer) -> tuple[int, tuple, list]:
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(data["meta"].tobytes())
        for i, v in enumerate(model.variables):
            v.assign(data[f"v{i}"])
        for i, v in enumerate(optimizer.variables):
            v.assign(data[f"o{i}"])
        best_weights = [data[f"b{i}"] for i in range(len(model.variables))]
    history = [EvalRecord(**r) for r in meta["history"]]
    return meta["epoch"], (meta["best"][0], meta["best"][1], best_weights), history
