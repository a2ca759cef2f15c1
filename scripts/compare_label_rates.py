"""`label` and `evaluate` of many photos under two or more versions of poetslearn, interleaved
round by round, with retrain's extraction rate on the whole folder measured in the same rounds
as the ruler: the before/after of a change to the labelling pipeline, on the photos and models
of an earlier `benchmark_photos.py` run (its `--work` folder).

    git archive HEAD src | tar -x -C /tmp/before
    python scripts/compare_label_rates.py --work tf_files/photo_bench \\
        --src before=/tmp/before/src --src after=src --rounds 3

Each `--src NAME=PATH` is put first on PYTHONPATH of every command it runs. Prints the host, each
version's median rates after start-up (the time for 12 photos subtracted, as benchmark_photos.py
does) and their share of extraction; last, one JSON line.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from benchmark_photos import _rates, measure_in_subprocess, subset  # noqa: E402
from host import host_line, measure_host  # noqa: E402


def _photo_folder(work: Path) -> Path:
    """The work folder's largest folder of photos (benchmark_photos.py's first size)."""
    folders = [p for p in work.glob("photos_*_*") if p.is_dir() and "_first_" not in p.name]
    if not folders:
        raise click.ClickException(f"No photos_* folder in {work}: run benchmark_photos.py first.")
    return max(folders, key=lambda p: int(p.name.split("_")[1]))


@click.command()
@click.option("--work", type=click.Path(path_type=Path, exists=True), required=True)
@click.option("--src", "sources", multiple=True, required=True, help="NAME=PATH of a src tree.")
@click.option("--models", default="pb,tflite", help="Which of the work folder's models.")
@click.option("--count", default=400, help="Photos labelled and evaluated.")
@click.option("--rounds", default=3)
@click.option("--architecture", default="mobilenet_0.50_224")
@click.option("--weights", default="imagenet")
@click.option("--model_dir", type=click.Path(path_type=Path), default=ROOT / "../shared/models")
@click.option("--matmul_seconds", default=2.0, help="Per reading of TensorFlow's matmul rate.")
def main(work, sources, models, count, rounds, architecture, weights, model_dir, matmul_seconds):
    trees = dict(source.split("=", 1) for source in sources)
    models = {kind: work / f"{architecture}.{kind}" for kind in models.split(",")}
    photos = _photo_folder(work)
    many, few = subset(photos, work, count), subset(photos, work, 12)
    host = measure_host(matmul_seconds)
    cache = work / "converted_graphs"  # one cache for every version: the same steady state
    extraction, readings = [], {name: {} for name in trees}
    for _ in range(rounds):
        extraction.append(
            measure_in_subprocess("poetslearn", photos, architecture, weights, model_dir)
        )
        for name, tree in trees.items():
            env = {"POETSLEARN_CACHE_DIR": str(cache), "PYTHONPATH": str(Path(tree).resolve())}
            for key, values in _rates(models, many, few, 1, env).items():
                readings[name].setdefault(key, []).extend(values)
    ruler = statistics.median(r["img_per_s"] for r in extraction)
    print(host_line(host))
    print(f"extraction ({photos.name}): {ruler:.1f} img/s, readings "
          f"{[round(r['img_per_s'], 1) for r in extraction]}")  # fmt: skip
    report = {"host": host, "extraction_img_per_s": ruler, "versions": {}}
    for name, rates in readings.items():
        report["versions"][name] = {}
        for key, values in rates.items():
            rate = statistics.median(values)
            report["versions"][name][key] = {"img_per_s": rate, "readings": values}
            print(f"  {name:10s} {key:16s} {rate:7.1f} img/s ({rate / ruler:4.0%} of extraction)"
                  f"  readings {[round(v, 1) for v in values]}")  # fmt: skip
    print(json.dumps(report))


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
