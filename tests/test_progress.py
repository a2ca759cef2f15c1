"""Progress lines without a terminal: each tenth once, with rate and ETA, from any thread."""

from __future__ import annotations


def test_progress_without_a_terminal_prints_tenths_with_rate_and_eta(capsys):
    from poetslearn.progress import progress

    with progress(100, "Work", "img") as bar:
        for _ in range(100):
            bar.update(1)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 10 and lines[0].startswith("Work: 10% (10/100), ")
    assert "img/s" in lines[0] and "s left" in lines[0] and "left" not in lines[-1]
    with progress(100, "Quiet", "img", enabled=False) as bar:
        bar.update(100)
    assert capsys.readouterr().err == ""


def test_line_progress_prints_each_tenth_once_when_threads_update_it(capsys):
    from concurrent.futures import ThreadPoolExecutor

    from poetslearn.progress import _LineProgress

    bar = _LineProgress(1000, "Scanning images", "file")
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: bar.update(1), range(1000)))
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(":")[1].split("%")[0].strip() for line in lines] == [
        str(p) for p in range(10, 101, 10)
    ]
