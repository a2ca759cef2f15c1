"""The accuracy `retrain --time_budget` expects of each plan: measured on CIFAR-10 and written
into the table the package ships (`src/poetslearn/budget/measured_accuracy.json`).

For each architecture, every block's pooled output is computed once (the cache `retrain
--bottleneck_blocks all` uses); the new layer (N=1) and the pooled top N blocks each train
retrain's head on it, with retrain's defaults. `--fine_tune K,...` also runs retrain's
fine-tuning of the top K blocks at its default length (slow: minutes to an hour each). Each
point replaces the table's earlier point of the same plan; the others are kept.

    python scripts/budget_priors.py --architectures mobilenet_0.25_128,mobilenet_0.50_224 \\
        --bottleneck_dir /tmp/priors --blocks 1,2,4,all
"""

from __future__ import annotations

import datetime
import json
import time
from pathlib import Path

import click
from _common import cifar10_bottlenecks
from bottleneck_blocks import block_widths, head_on_top_blocks
from host import host_line, measure_host

from poetslearn.backbone.block_features import resolve_bottleneck_blocks
from poetslearn.budget.expectations import MEASURED_TABLE, plan_key
from poetslearn.config import RetrainConfig
from poetslearn.train.head import HeadParams, accuracy
from poetslearn.train.schedule import new_layer_steps


def block_points(arch, vectors, splits, blocks: list[str]) -> list[dict]:
    """Validation and rows 0-999 of the head on the top N blocks' pooled outputs, per N."""
    widths = block_widths(arch)
    d = RetrainConfig()
    params = HeadParams.from_config(
        d, new_layer_steps(len(splits["train"]), d.train_batch_size), validation_batch_size=-1
    )
    vy, sy = (splits[s].labels for s in ("validation", "test"))
    points = []
    for text in blocks:
        trained, (_, vx, sx), seconds = head_on_top_blocks(
            arch, widths, vectors, splits, text, params
        )
        layer = trained.layer
        points.append(
            {
                "architecture": arch.name,
                "bottleneck_blocks": resolve_bottleneck_blocks(
                    arch, "all" if text == "all" else int(text)
                ),
                "fine_tune_blocks": 0,
                "validation": round(accuracy(layer, vx, vy), 4),
                "rows_0_999": round(accuracy(layer, sx[:1000], sy[:1000]), 4),
                "head_seconds": round(seconds, 1),
            }
        )
        print(json.dumps(points[-1]), flush=True)
    return points


def fine_tune_points(architecture, weights, model_dir, data_dir, bottleneck_dir, ks) -> list:
    """retrain's own fine-tuning of the top K blocks, at its default length, per K."""
    from poetslearn.context import RunContext
    from poetslearn.pipeline import retrain

    points = []
    for k in ks:
        with_k = RetrainConfig(
            architecture=architecture,
            weights=weights,
            model_dir=model_dir,
            data_dir=data_dir,
            bottleneck_dir=bottleneck_dir,
            fine_tune_blocks=k,
            output_graph=Path(bottleneck_dir) / "priors_graph.pb",
            output_labels=Path(bottleneck_dir) / "priors_labels.txt",
            summaries_dir="",
            show_progress=False,
        )
        result = retrain(with_k, log=lambda *_: None, warn=RunContext.silent().warn)
        points.append(
            {
                "architecture": architecture,
                "bottleneck_blocks": 1,
                "fine_tune_blocks": k,
                "fine_tune_epochs": result.trained.details["epochs"],
                "validation": round(result.trained.best_validation_accuracy, 4),
                "rows_0_999": round(result.score.extra.get("test_accuracy_rows_0_999", 0.0), 4),
            }
        )
        print(json.dumps(points[-1]), flush=True)
    return points


def merged(table: list[dict], points: list[dict]) -> list[dict]:
    """The table with each new point in place of the earlier one of the same plan."""
    new = {plan_key(p): p for p in points}
    kept = [p for p in table if plan_key(p) not in new]
    return sorted(kept + list(new.values()), key=lambda p: (p["architecture"], plan_key(p)))


@click.command()
@click.option("--architectures", required=True, help="Comma-separated registry names.")
@click.option("--blocks", default="1,2,4,all", help="The N of --bottleneck_blocks to measure.")
@click.option("--fine_tune", default="", help="The K of --fine_tune_blocks to measure (slow).")
@click.option("--weights", default="imagenet", help="As retrain's --weights.")
@click.option("--model_dir", type=click.Path(path_type=Path), default=Path("../shared/models"))
@click.option("--data_dir", type=click.Path(path_type=Path), default=Path("../shared/data"))
@click.option("--bottleneck_dir", type=click.Path(path_type=Path), default=Path("/tmp/priors"))
@click.option("--output", type=click.Path(path_type=Path), default=MEASURED_TABLE)
def main(
    architectures, blocks, fine_tune, weights, model_dir, data_dir, bottleneck_dir, output
) -> None:
    host = measure_host(matmul_seconds=1.0)
    print(host_line(host), flush=True)
    points = []
    for name in architectures.split(","):
        start = time.perf_counter()
        vectors, splits, arch, info = cifar10_bottlenecks(
            name, weights, model_dir, data_dir, bottleneck_dir, bottleneck_blocks="all"
        )
        print(f"{name}: {info.description}; {time.perf_counter() - start:.0f} s", flush=True)
        points += block_points(arch, vectors, splits, blocks.split(","))
        del vectors
        ks = [int(k) for k in fine_tune.split(",") if k]
        points += fine_tune_points(name, weights, model_dir, data_dir, bottleneck_dir, ks)
    stamp = {
        "data": "cifar10",
        "source": "scripts/budget_priors.py",
        "measured": datetime.date.today().isoformat(),
        "host": host["cpu"],
    }
    table = json.loads(output.read_text()) if output.is_file() else []
    output.write_text(json.dumps(merged(table, [{**p, **stamp} for p in points]), indent=1) + "\n")
    print(f"{len(points)} points written to {output}")


if __name__ == "__main__":
    main()
