"""`check --report DIR`: one HTML page a person reads, worst first, each finding shown as
pictures beside the pictures that explain it (its copies, its nearest images, images of the
class the data suggests). Offline and self-contained: index.html, its thumbnails in thumbs/ and
findings.csv, linked relatively, so the folder can be zipped, mailed or opened from anywhere."""

from __future__ import annotations

import html
import io
from pathlib import Path

import numpy as np

from poetslearn.check.findings import KINDS, Finding, by_kind
from poetslearn.check.outputs import findings_csv, summary_lines
from poetslearn.data.sources import SPLITS
from poetslearn.outputs import write_atomic

THUMB_SIDE = 160
CARDS_PER_KIND = 60

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 80em; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 2em; border-bottom: 2px solid #ddd; }
.meaning { color: #555; margin-top: -0.5em; }
.summary { background: #f6f6f6; padding: 0.8em 1.2em; border-radius: 6px; }
.summary li { margin: 0.2em 0; }
.card { display: flex; flex-wrap: wrap; gap: 10px; align-items: flex-start;
        border: 1px solid #ddd; border-radius: 6px; padding: 10px; margin: 10px 0; }
.card .why { flex-basis: 100%; font-size: 0.9em; color: #444; }
figure { margin: 0; width: 170px; font-size: 0.78em; overflow-wrap: anywhere; }
figure img { width: 160px; height: 160px; object-fit: contain; background: #eee;
             image-rendering: pixelated; border: 3px solid transparent; }
figure.main img { border-color: #d33; }
.tag { display: inline-block; padding: 0 4px; border-radius: 3px; background: #eee; }
.tag.test { background: #fdd; } .tag.validation { background: #ffe7c2; }
.tag.train { background: #dfd; }
table { border-collapse: collapse; } td, th { border: 1px solid #ddd; padding: 2px 8px; }
.more { color: #555; font-style: italic; }
"""


def _thumbnail(result, row: int) -> bytes | None:
    from PIL import Image

    try:
        pixels = result.table.read_original(row, THUMB_SIDE)
    except Exception:  # noqa: BLE001 - a picture that cannot be made is left out, not fatal
        return None
    image = Image.fromarray(np.asarray(pixels, np.uint8))
    image.thumbnail((THUMB_SIDE, THUMB_SIDE))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


class _Pictures:
    """Thumbnails written once each into thumbs/, named by row."""

    def __init__(self, result, folder: Path) -> None:
        self.result, self.folder, self.done = result, folder, {}

    def src(self, row: int) -> str | None:
        if row not in self.done:
            data = _thumbnail(self.result, row)
            name = f"thumbs/{row}.jpg"
            if data is not None:
                write_atomic(self.folder / name, data)
            self.done[row] = name if data is not None else None
        return self.done[row]


def _figure(pictures: _Pictures, row: int, caption: str, main: bool = False) -> str:
    table = pictures.result.table
    split = table.split_of[row]
    src = pictures.src(row)
    name = html.escape(table.name(row))
    picture = f'<img src="{src}" alt="{name}">' if src else "<div>(no picture)</div>"
    return (
        f'<figure class="{"main" if main else ""}">{picture}<figcaption>'
        f'<span class="tag {split}">{split}</span> <b>{html.escape(table.label_text(row))}</b>'
        f"<br>{name}{'<br>' + html.escape(caption) if caption else ''}</figcaption></figure>"
    )


def _group_cards(pictures, findings: list[Finding]) -> list[str]:
    """A card per group, up to CARDS_PER_KIND (pictures are made only for those shown)."""
    cards, seen = [], set()
    for f in findings:
        if f.group in seen:
            continue
        seen.add(f.group)
        if len(seen) > CARDS_PER_KIND:
            cards.append("")  # counted, not drawn
            continue
        members = [f.row, *f.related]
        figures = "".join(_figure(pictures, r, "", main=i == 0) for i, r in enumerate(members))
        why = f"Group {f.group}: {f.detail}" + (
            f" (thumbnails alike {f.score:.3f})" if f.kind == "near_copy" else ""
        )
        cards.append(f'<div class="card"><div class="why">{html.escape(why)}</div>{figures}</div>')
    return cards


def _image_cards(pictures, findings: list[Finding], related_caption) -> list[str]:
    """A card per finding: its image, then its related images captioned `related_caption(f)`."""
    cards = [""] * max(0, len(findings) - CARDS_PER_KIND)  # counted, not drawn
    for f in findings[:CARDS_PER_KIND]:
        figures = _figure(pictures, f.row, f"score {f.score:.3f}", main=True)
        figures += "".join(_figure(pictures, r, related_caption(f)) for r in f.related)
        cards.append(
            f'<div class="card"><div class="why">{html.escape(f.detail)}</div>{figures}</div>'
        )
    return cards


def _listing(findings: list[Finding]) -> list[str]:
    rows = "".join(
        f"<tr><td>{html.escape(f.path or f.class_name or '')}</td>"
        f"<td>{html.escape(f.detail)}</td></tr>"
        for f in findings
    )
    return [f"<table><tr><th>file or class</th><th>why</th></tr>{rows}</table>"]


def _section(pictures, kind: str, findings: list[Finding]) -> str:
    if kind in ("unreadable", "tiny_class"):
        cards = _listing(findings)
    elif findings[0].group is not None:
        cards = _group_cards(pictures, findings)
    elif kind == "label_error":
        cards = _image_cards(pictures, findings, lambda f: f"near it, {f.suggested}")
    else:
        cards = _image_cards(pictures, findings, lambda f: "one of its nearest images")
    shown = [card for card in cards if card]
    rest = len(cards) - len(shown)
    more = f'<p class="more">{rest:,} more in findings.csv.</p>' if rest > 0 else ""
    return (
        f'<h2 id="{kind}">{html.escape(KINDS[kind].title)} ({len(findings):,})</h2>'
        f'<p class="meaning">{html.escape(KINDS[kind].meaning)}.</p>' + "".join(shown) + more
    )


def _balance(result) -> str:
    """Images per class and split: a table at the end of the page (the class balance)."""
    table, names = result.table, result.table.dataset.class_names
    per_split = {}
    for split in SPLITS:
        labels = table.splits[split].labels
        counts = (
            labels.sum(axis=0)
            if table.dataset.multi_label
            else np.bincount(labels, minlength=len(names))
        )
        per_split[split] = [int(c) for c in counts]
    head = "".join(f"<th>{s}</th>" for s in SPLITS)
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td>"
        + "".join(f"<td>{per_split[s][i]:,}</td>" for s in SPLITS)
        + f"<td><b>{result.counts[name]:,}</b></td></tr>"
        for i, name in enumerate(names)
    )
    return (
        '<h2 id="balance">Images per class</h2>'
        f"<table><tr><th>class</th>{head}<th>all</th></tr>{rows}</table>"
    )


def write_report(result, folder: Path) -> Path:
    """Writes the page and its pictures into `folder`; returns the page's path."""
    folder = Path(folder)
    (folder / "thumbs").mkdir(parents=True, exist_ok=True)
    pictures = _Pictures(result, folder)
    summary = "".join(f"<li>{html.escape(line.strip())}</li>" for line in summary_lines(result))
    grouped = by_kind(result.findings)
    sections = "".join(_section(pictures, k, fs) for k, fs in grouped.items())
    contents = (
        " &middot; ".join(
            f'<a href="#{k}">{html.escape(KINDS[k].title)} ({len(fs):,})</a>'
            for k, fs in grouped.items()
        )
        + ' &middot; <a href="#balance">Images per class</a>'
    )
    source = html.escape(result.table.dataset.source)
    page = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>poetslearn check: {source}</title><style>{STYLE}</style></head><body>"
        f"<h1>What is wrong with {source}</h1>"
        f'<ul class="summary">{summary}</ul><p>{contents}</p>'
        '<p>Every finding, with its score, is in <a href="findings.csv">findings.csv</a>.</p>'
        f"{sections}{_balance(result)}</body></html>"
    )
    write_atomic(folder / "findings.csv", findings_csv(result))
    write_atomic(folder / "index.html", page.encode("utf-8"))
    return folder / "index.html"
