"""`poetslearn check` on a data set with problems put in on purpose, beside cleanlab and
CleanVision on the same data, and what the problems do to the accuracy `retrain` reports.

The data set: CIFAR-10 training images (--per_class of each class) written as PNG files and
listed in a CSV file (path, labels, split: 80/10/10), then spoiled as a user's folder is:

- leaked: training images copied, byte for byte, into the test split;
- across classes: training images copied into training again under another class;
- near-copies in the test split of training images: re-encoded as JPEG q60, cropped to 85%,
  mirrored, brightened, made grey, desaturated, halved in size;
- label noise: --label_noise of the other training images given another class;
- off-topic images (scikit-image's page, coins, moon, camera, brick...), blank frames, noise;
- unreadable files (truncated PNGs, text named .png).

Then, each timed: `check_data` (cold: bottlenecks computed), cleanlab's `find_label_issues` and
`Datalab` on the same out-of-fold probabilities and bottlenecks, CleanVision's `Imagelab` on the
image folder (its own hashes and statistics), and `retrain` on the spoiled CSV and on the one
`--write_csv` writes. Prints recall and precision per problem for each tool, the times, and
the test accuracy of both runs; last, one JSON line. The peers are optional: pip install
"poetslearn[peers]".

    python scripts/check_benchmark.py --architecture mobilenet_0.50_224 --per_class 300
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import shutil
import sys
import time
from pathlib import Path

import click
import numpy as np
from PIL import Image, ImageEnhance, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cifar10_options  # noqa: E402
from host import host_line, measure_host  # noqa: E402

TRANSFORMS = {
    "jpeg60": lambda im: _jpeg(im, 60),
    "crop85": lambda im: _crop(im, 0.85),
    "mirror": ImageOps.mirror,
    "brighter": lambda im: ImageEnhance.Brightness(im).enhance(1.3),
    "grey": lambda im: ImageOps.grayscale(im).convert("RGB"),
    "desaturated": lambda im: ImageEnhance.Color(im).enhance(0.5),
    "half_size": lambda im: im.resize((im.width // 2, im.height // 2), Image.BILINEAR),
}
OFF_TOPIC = ("page", "coins", "moon", "camera", "brick", "gravel", "text", "clock")


def _jpeg(im: Image.Image, quality: int) -> Image.Image:
    data = io.BytesIO()
    im.save(data, "JPEG", quality=quality)
    return Image.open(io.BytesIO(data.getvalue())).convert("RGB")


def _crop(im: Image.Image, share: float) -> Image.Image:
    w, h = im.size
    cw, ch = round(w * share), round(h * share)
    return im.crop(((w - cw) // 2, (h - ch) // 2, (w - cw) // 2 + cw, (h - ch) // 2 + ch))


def _off_topic(count: int, rng) -> list[np.ndarray]:
    """Photos of other things (scikit-image's), blank frames and noise, at CIFAR-10's size."""
    from skimage import data

    images = []
    for name in OFF_TOPIC:
        pixels = np.asarray(getattr(data, name)())
        pixels = np.stack([pixels] * 3, axis=-1) if pixels.ndim == 2 else pixels[..., :3]
        images.append(np.asarray(Image.fromarray(pixels.astype(np.uint8)).resize((32, 32))))
    while len(images) < count:
        kind = len(images) % 2
        blank = np.full((32, 32, 3), rng.integers(0, 256, 3), np.uint8)
        noise = rng.integers(0, 256, (32, 32, 3)).astype(np.uint8)
        images.append(blank if kind else noise)
    return images[:count]


def make_spoiled(folder: Path, data, per_class: int, noise: float, seed: int = 0):
    """The spoiled CSV data set and the truth: {problem: {file name: detail}}."""
    rng = np.random.default_rng(seed)
    images = folder / "images"
    shutil.rmtree(folder, ignore_errors=True)
    images.mkdir(parents=True)
    train = data.splits["train"]
    # Each class's images 80/10/10 into train, validation and test, by their place in it.
    chosen = [
        (index, k)
        for c in range(len(data.class_names))
        for k, index in enumerate(np.flatnonzero(train.labels == c)[:per_class].tolist())
    ]
    rows, truth = [], {k: {} for k in ("leaked", "across_classes", "near", "flipped", "odd", "bad")}
    names = data.class_names
    for index, k in chosen:
        split = "train" if k % 10 < 8 else ("validation" if k % 10 == 8 else "test")
        Image.fromarray(train.images.pixels[index]).save(images / f"{index}.png")
        rows.append([f"images/{index}.png", int(train.labels[index]), split])
    train_rows = [r for r in rows if r[2] == "train"]
    per_kind = max(1, len(rows) // 100)  # about 1% of the images each
    order = rng.permutation(len(train_rows)).tolist()
    used = {train_rows[i][0] for i in order[: per_kind * (4 + len(TRANSFORMS))]}
    picks = iter(order)
    for i in range(per_kind * 3):
        path, label, _ = train_rows[next(picks)]
        shutil.copy(folder / path, images / f"leak_{i}.png")
        rows.append([f"images/leak_{i}.png", label, "test"])
        truth["leaked"][f"leak_{i}.png"] = Path(path).name
    for i in range(per_kind):
        path, label, _ = train_rows[next(picks)]
        shutil.copy(folder / path, images / f"cross_{i}.png")
        rows.append([f"images/cross_{i}.png", (label + 1) % len(names), "train"])
        truth["across_classes"][f"cross_{i}.png"] = Path(path).name
    for name, transform in TRANSFORMS.items():
        for i in range(per_kind):
            path, label, _ = train_rows[next(picks)]
            copy = f"near_{name}_{i}.{'jpg' if name == 'jpeg60' else 'png'}"
            transform(Image.open(folder / path).convert("RGB")).save(images / copy)
            rows.append([f"images/{copy}", label, "test"])
            truth["near"][copy] = (Path(path).name, name)
    base = len(chosen)
    for n in rng.choice(base, int(noise * base), replace=False).tolist():
        if rows[n][0] in used or rows[n][2] != "train":  # copied, or held out (a class's
            continue  # few validation and test images stay, so every split keeps each class)
        rows[n][1] = (rows[n][1] + int(rng.integers(1, len(names)))) % len(names)
        truth["flipped"][Path(rows[n][0]).name] = names[rows[n][1]]
    for i, pixels in enumerate(_off_topic(2 * per_kind, rng)):
        Image.fromarray(pixels).save(images / f"odd_{i}.png")
        rows.append([f"images/odd_{i}.png", int(rng.integers(len(names))), "train"])
        truth["odd"][f"odd_{i}.png"] = ""
    for i in range(per_kind):
        bad = images / f"bad_{i}.png"
        if i % 2:
            bad.write_text("not an image")
        else:
            bad.write_bytes((images / Path(rows[i][0]).name).read_bytes()[:60])
        rows.append([f"images/bad_{i}.png", int(rows[i][1]), "train"])
        truth["bad"][bad.name] = ""
    with open(folder / "spoiled.csv", "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["path", "labels", "split"])
        writer.writerows([p, names[label], split] for p, label, split in rows)
    return folder / "spoiled.csv", truth


def _name(result, finding) -> str:
    """The file a finding is about (a class's name for a finding about a class)."""
    if finding.row is not None:
        return Path(result.table.path(finding.row)).name
    return Path(finding.path).name if finding.path else finding.class_name


def poetslearn_found(result) -> dict:
    """{kind: set of file names}, and near-copy groups as sets of names."""
    found: dict[str, set] = {}
    groups: dict[int, set] = {}
    for f in result.findings:
        found.setdefault(f.kind, set()).add(_name(result, f))
        if f.kind == "near_copy":
            groups.setdefault(f.group, set()).add(_name(result, f))
    found["near_groups"] = list(groups.values())
    return found


def _recall(truth: dict, found: set) -> float:
    return len(set(truth) & found) / max(1, len(truth))


def _label_scores(truth, flagged: set, base: set) -> tuple[float, float, int]:
    """(recall, precision among the unspoiled CIFAR-10 images, how many flagged there)."""
    among = flagged & base
    hits = len(among & set(truth))
    return hits / max(1, len(truth)), hits / max(1, len(among)), len(among)


def _near_recall(truth: dict, groups: list[set]) -> dict[str, float]:
    """Per transform: the share of copies found in one group with their original."""
    out = {}
    for transform in TRANSFORMS:
        mine = {c: o for c, (o, t) in truth.items() if t == transform}
        hit = sum(any(c in g and o in g for g in groups) for c, o in mine.items())
        out[transform] = hit / max(1, len(mine))
    return out


def cleanlab_found(result) -> tuple[dict, float] | None:
    """cleanlab on poetslearn's out-of-fold probabilities and bottlenecks: its label filter
    alone, and Datalab's label, outlier and near-duplicate issues."""
    try:
        from cleanlab import Datalab
        from cleanlab.filter import find_label_issues
    except ImportError:
        return None
    table = result.table
    names = [Path(table.path(r)).name for r in range(len(table))]
    start = time.perf_counter()
    flagged = find_label_issues(table.labels, result.probabilities)
    lab = Datalab(data={"label": table.labels.tolist()}, label_name="label")
    with contextlib.redirect_stdout(io.StringIO()):  # its progress lines
        lab.find_issues(
            features=table.vectors,
            pred_probs=result.probabilities,
            issue_types={"label": {}, "outlier": {}, "near_duplicate": {}},
        )
    seconds = time.perf_counter() - start
    issues = lab.get_issues()
    pick = lambda column: {names[i] for i in np.flatnonzero(issues[column].to_numpy())}  # noqa: E731
    sets = lab.get_info("near_duplicate")["near_duplicate_sets"]
    groups = [{names[i], *(names[j] for j in s)} for i, s in enumerate(sets) if len(s)]
    found = {
        "label_error": {names[i] for i in np.flatnonzero(flagged)},
        "datalab_label": pick("is_label_issue"),
        "outlier": pick("is_outlier_issue"),
        "near_copy": pick("is_near_duplicate_issue"),
        "near_groups": groups,
    }
    return found, seconds


def cleanvision_found(images: Path, readable: list[Path]) -> tuple[dict, float] | None:
    """CleanVision's own scan of the image folder (hashes, image statistics). On the folder as
    it is, it stops at the first unreadable file; it is then given the readable files only."""
    try:
        from cleanvision import Imagelab
    except ImportError:
        return None

    def scan(**where):
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            lab = Imagelab(verbose=False, **where)
            lab.find_issues(verbose=False)
        return lab

    start = time.perf_counter()
    try:
        lab, note = scan(data_path=str(images)), ""
    except Exception as e:  # noqa: BLE001 - what it raises on a bad file is its own
        note = f"the folder as it is: {type(e).__name__}; given the readable files only"
        start = time.perf_counter()
        lab = scan(filepaths=[str(p) for p in readable])
    seconds = time.perf_counter() - start
    issues = lab.issues
    groups = [{Path(p).name for p in s} for s in lab.info["near_duplicates"]["sets"]]
    exact = [{Path(p).name for p in s} for s in lab.info["exact_duplicates"]["sets"]]
    odd_columns = [c for c in issues.columns if c.startswith("is_") and "duplicates" not in c]
    odd = {Path(p).name for p in issues.index[issues[odd_columns].any(axis=1)]}
    found = {
        "copies": set().union(*exact) if exact else set(),
        "near_groups": groups + exact,
        "outlier": odd,
        "note": note,
    }
    return found, seconds


def retrain_accuracy(csv_path: Path, settings: dict, work: Path, clean_test: set) -> tuple:
    """retrain's reported test accuracy on `csv_path`, and its accuracy on the test images that
    are neither copies nor relabelled (the same images in every run)."""
    from poetslearn.config import RetrainConfig
    from poetslearn.pipeline import retrain

    config = RetrainConfig(
        data_csv=csv_path,
        output_graph=work / "graph.pb",
        output_labels=work / "labels.txt",
        summaries_dir="",
        show_progress=False,
        **settings,
    )
    result = retrain(config, log=lambda line: None, warn=lambda line: None)
    wrong = {Path(name).name for name, _, _ in result.misclassified}
    tested = {Path(n).name for n in result.score.evaluation.names} & clean_test
    return result.score.accuracy, 1 - len(wrong & tested) / max(1, len(tested))


def hnsw_recall(vectors: np.ndarray, k: int = 10) -> tuple[float, float, float]:
    """(recall of faiss_hnsw against exact search, exact seconds, HNSW seconds)."""
    from poetslearn.check.neighbours import nearest_neighbours

    start = time.perf_counter()
    exact = nearest_neighbours(vectors, k, "faiss_exact").indices
    middle = time.perf_counter()
    approximate = nearest_neighbours(vectors, k, "faiss_hnsw").indices
    end = time.perf_counter()
    recall = np.mean([len(set(a) & set(e)) / k for a, e in zip(approximate, exact)])
    return float(recall), middle - start, end - middle


def score_table(truth: dict, base: set, found: dict) -> dict:
    """Recall (and precision for labels) of one tool's findings against what was put in."""
    scores = {}
    if "label_error" in found:
        recall, precision, flagged = _label_scores(truth["flipped"], found["label_error"], base)
        scores.update(label_recall=recall, label_precision=precision, label_flagged=flagged)
    if "datalab_label" in found:
        recall, precision, flagged = _label_scores(truth["flipped"], found["datalab_label"], base)
        scores.update(
            datalab_label_recall=recall, datalab_label_precision=precision, datalab_flagged=flagged
        )
    copies = found.get("copies") or found.get("copy_across_splits", set())
    if copies or "copy_across_splits" in found or "copies" in found:
        scores["leaked_recall"] = _recall(truth["leaked"], copies)
        cross = found.get("copies") or found.get("copy_across_classes", set())
        scores["across_classes_recall"] = _recall(truth["across_classes"], cross)
    if "near_groups" in found:
        scores["near_recall"] = _near_recall(truth["near"], found["near_groups"])
        # groups of unspoilt images only: CIFAR-10's own near-duplicates, or mistakes
        scores["near_groups_unplanned"] = sum(g <= base for g in found["near_groups"])
    if "outlier" in found:
        scores["odd_recall"] = _recall(truth["odd"], found["outlier"])
        scores["outliers_flagged"] = len(found["outlier"])
    if "unreadable" in found:
        scores["unreadable_recall"] = _recall(truth["bad"], found["unreadable"])
    return scores


def _print_scores(tool: str, scores: dict, seconds: float, note: str = "") -> None:
    print(f"\n{tool} ({seconds:.1f} s)" + (f"; {note}" if note else ""))
    for key, value in scores.items():
        if isinstance(value, dict):
            shown = ", ".join(f"{t} {v:.0%}" for t, v in value.items())
            print(f"  {key:24s} {shown}")
        else:
            print(
                f"  {key:24s} {value:.1%}" if isinstance(value, float) else f"  {key:24s} {value}"
            )


@click.command()
@cifar10_options
@click.option("--per_class", type=int, default=300, help="CIFAR-10 training images per class")
@click.option("--label_noise", type=float, default=0.05)
@click.option("--work_dir", type=click.Path(path_type=Path), default=Path("tf_files/check_bench"))
@click.option("--peers/--no-peers", default=True, help="also run cleanlab and CleanVision")
@click.option("--retrain/--no-retrain", "with_retrain", default=True)
@click.option("--near_copy_similarity", type=float, default=None, help="default: check's own")
@click.option(
    "--cifar_neighbours/--no-cifar_neighbours",
    default=False,
    help="also HNSW's recall against exact search on all 60,000 CIFAR-10 bottlenecks (cached "
    "in --bottleneck_dir, computed there if missing)",
)
def main(
    architecture,
    weights,
    model_dir,
    data_dir,
    bottleneck_dir,
    per_class,
    label_noise,
    work_dir,
    peers,
    with_retrain,
    near_copy_similarity,
    cifar_neighbours,
):
    from poetslearn.check import CheckSettings, check_data
    from poetslearn.check.outputs import DropRule, cleaned_csv
    from poetslearn.config import RetrainConfig
    from poetslearn.data.cifar10 import load_cifar10

    host = measure_host()
    print(host_line(host))
    data = load_cifar10(data_dir, download=False, show_progress=False)
    spoiled, truth = make_spoiled(work_dir, data, per_class, label_noise)
    settings = dict(
        architecture=architecture,
        weights=weights,
        model_dir=model_dir,
        bottleneck_dir=work_dir / "bottlenecks",
    )
    start = time.perf_counter()
    result = check_data(
        RetrainConfig(data_csv=spoiled, show_progress=False, **settings),
        CheckSettings(
            near_copy_similarity=near_copy_similarity or CheckSettings.near_copy_similarity
        ),
        log=lambda line: None,
        warn=lambda line: None,
    )
    check_seconds = time.perf_counter() - start
    names = {Path(result.table.path(r)).name for r in range(len(result.table))}
    spoilt = set().union(*(set(t) for k, t in truth.items() if k != "flipped"))
    base = names - spoilt
    print(
        f"{len(result.table):,} images read, {sum(map(len, truth.values())):,} spoilt on "
        f"purpose ({', '.join(f'{k} {len(v)}' for k, v in truth.items())}); {architecture}"
    )
    report = {
        "host": host,
        "architecture": architecture,
        "images": len(names),
        "truth": {k: len(v) for k, v in truth.items()},
        "tools": {},
    }
    tools = {"poetslearn check": (poetslearn_found(result), check_seconds)}
    if peers:
        for tool, found in (
            ("cleanlab (on poetslearn's probabilities and bottlenecks)", cleanlab_found(result)),
            (
                "CleanVision (its own scan of the folder)",
                cleanvision_found(
                    work_dir / "images",
                    [result.table.path(r) for r in range(len(result.table))],
                ),
            ),
        ):
            if found is None:
                print(f"\n{tool}: not installed (pip install 'poetslearn[peers]')")
            else:
                tools[tool] = found
    for tool, (found, seconds) in tools.items():
        scores = score_table(truth, base, found)
        _print_scores(tool, scores, seconds, found.get("note", ""))
        report["tools"][tool] = {"seconds": round(seconds, 2), **scores}
    print(
        "\npoetslearn check stages: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in result.timings.items())
    )
    recall, exact_s, hnsw_s = hnsw_recall(result.table.vectors)
    print(
        f"Neighbours: faiss_hnsw recall@10 {recall:.3f} of exact search "
        f"(exact {exact_s:.2f} s, HNSW {hnsw_s:.2f} s on {len(result.table):,} images)"
    )
    report["hnsw_recall_at_10"] = recall
    if cifar_neighbours:
        from _common import cifar10_bottlenecks

        vectors, *_ = cifar10_bottlenecks(
            architecture, weights, model_dir, data_dir, bottleneck_dir
        )
        everything = np.concatenate([vectors[s] for s in ("train", "validation", "test")])
        recall, exact_s, hnsw_s = hnsw_recall(everything)
        print(
            f"Neighbours on all of CIFAR-10: faiss_hnsw recall@10 {recall:.3f} (exact "
            f"{exact_s:.1f} s, HNSW {hnsw_s:.1f} s on {len(everything):,} images)"
        )
        report["cifar_hnsw_recall_at_10"] = recall
    if with_retrain:
        clean_test = {n for n in base if n not in truth["flipped"]}
        runs = {"spoiled CSV": spoiled}
        for label, rules in (
            ("leaks left out", []),
            (
                "leaks, near-copies, label errors >= 0.9 left out",
                [DropRule("near_copy"), DropRule("label_error", 0.9)],
            ),
        ):
            path = work_dir / f"clean_{len(runs)}.csv"
            cleaned_csv(result, path, rules, [spoiled])
            runs[label] = path
        print("\nretrain (new layer) | reported test accuracy | on the unspoilt test images")
        report["retrain"] = {}
        for label, path in runs.items():
            reported, honest = retrain_accuracy(path, settings, work_dir, clean_test)
            print(f"  {label:50s} {reported:.1%} | {honest:.1%}")
            report["retrain"][label] = {"reported": reported, "unspoilt": honest}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
