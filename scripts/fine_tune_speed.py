"""Fine-tuning's training speed as a share of this machine's FP32 peak, measured in one run.

For each K, the top K blocks and the new layer are trained with the very step `retrain
--fine_tune_blocks K` runs (`fine_tuning.make_train_step`: AdamW, batch norm frozen) on batches of
activations of the cut's shape; the step's work is counted as 3 x 2 x the multiply-adds of the
top blocks' convolutions per image (forward, then the gradients for inputs and for weights), and
compared with the FP32 peak measured in the same run the way scripts/benchmark.py measures it
(pure FMA loop when a C compiler exists; TensorFlow's matmul always). Activations come from
memory here; in `retrain` they are read from the cache and decoded too, which the Epoch lines'
steps/s include. Example:

    python scripts/fine_tune_speed.py --architecture mobilenet_0.50_224 --blocks 1,2,4
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).parent))
from benchmark import count_macs  # noqa: E402
from host import host_line, measure_host  # noqa: E402


def steps_per_second(step, x, y, min_seconds: float) -> float:
    step(x, y)  # traces the step
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < min_seconds:
        loss, _ = step(x, y)
        float(loss)
        done += 1
    return done / (time.perf_counter() - start)


@click.command()
@click.option("--architecture", default="mobilenet_0.50_224")
@click.option("--weights", default="imagenet")
@click.option("--model_dir", type=click.Path(path_type=Path), default=Path("../shared/models"))
@click.option(
    "--blocks",
    default="1,2,4",
    help="Values of K, comma-separated ('all': the whole network, as --fine_tune_blocks all).",
)
@click.option("--batch", default=64, show_default=True, help="--fine_tune_batch_size")
@click.option("--seconds", default=10.0, show_default=True, help="Timing per K.")
def main(architecture, weights, model_dir, blocks, batch, seconds) -> None:
    from poetslearn.backbone.cut import cut_backbone, whole_network
    from poetslearn.backbone.load import load_backbone
    from poetslearn.train.fine_tuning.model import step_on_random_activations

    host = measure_host()
    fma, matmul = host["fma_peak_gflops"], host["matmul_peak_gflops"]
    backbone = load_backbone(architecture, weights, model_dir)
    rows = []
    for k in (b if b == "all" else int(b) for b in blocks.split(",")):
        split = (
            whole_network(backbone.model)
            if k == "all"
            else cut_backbone(backbone.arch, backbone.model, k)
        )
        step, x, y = step_on_random_activations(split, 10, batch)
        rate = steps_per_second(step, x, y, seconds) * batch
        gflops = rate * 3 * 2 * count_macs(split.top) / 1e9
        rows.append(
            {
                "blocks": k,
                "cut": split.cut,
                "images_per_s": round(rate, 1),
                "gflops": round(gflops, 1),
                "share_of_fma_peak": round(gflops / fma, 3) if fma else None,
                "share_of_matmul_peak": round(gflops / matmul, 3),
            }
        )
    print(host_line(host))
    print(f"{architecture}, batch {batch}:")
    for r in rows:
        fma_share = f"{r['share_of_fma_peak']:.0%}" if fma else "n/a"
        print(
            f"K={r['blocks']} (cut {r['cut']}): {r['images_per_s']:,.0f} images/s, "
            f"{r['gflops']:.0f} GFLOP/s = {fma_share} of the FMA peak, "
            f"{r['share_of_matmul_peak']:.0%} of the matmul peak"
        )
    print(
        json.dumps(
            {
                "architecture": architecture,
                "host": host,
                "fma_peak_gflops": fma,
                "matmul_peak_gflops": matmul,
                "rows": rows,
            }
        )
    )


if __name__ == "__main__":
    main()
