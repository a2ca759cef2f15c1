"""Bad input, interruptions, full disks, concurrent runs: nothing crashes, nothing is lost."""

from __future__ import annotations

import errno
import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from helpers import REPO_ROOT, make_colour_folder, noisy_colour, retrain_args
from poetslearn.cli.main import cli
from poetslearn.data import images as images_module
from poetslearn.data.images import decode_image
from poetslearn.errors import DataError, ImageError


def add_bad_files(folder: Path) -> dict[str, Path]:
    """One of every kind of bad file, in the class folder `red`."""
    red = folder / "red"
    good_jpeg = io.BytesIO()
    Image.fromarray(noisy_colour((220, 30, 30), size=(64, 64))).save(good_jpeg, "JPEG")
    bad = {
        "truncated": red / "truncated.jpg",
        "text": red / "notes.txt",
        "empty": red / "empty.png",
        "loop": red / "loop.jpg",
    }
    bad["truncated"].write_bytes(good_jpeg.getvalue()[: len(good_jpeg.getvalue()) * 2 // 3])
    bad["text"].write_text("shopping list")
    bad["empty"].write_bytes(b"")
    os.symlink(red / "loop.jpg", red / "loop.jpg")  # a symlink to itself: ELOOP when read
    return bad


def test_bad_files_are_skipped_and_the_run_goes_on(tmp_path):
    folder = make_colour_folder(tmp_path / "data", per_class=8)
    bad = add_bad_files(folder)
    (folder / "blue" / "nested" / "deeper").mkdir(parents=True)
    Image.fromarray(noisy_colour((40, 40, 230), seed=77)).save(
        folder / "blue" / "nested" / "deeper" / "photo.gif"
    )
    result = CliRunner().invoke(cli, retrain_args(tmp_path, "--image_dir", str(folder)))
    assert result.exit_code == 0, result.output
    for path in bad.values():
        assert f"Skipping {path}" in result.stderr, path
    # The truncated JPEG has a valid header: it is found bad only when decoded, and counted.
    assert "Skipped 3 file(s) that are not readable images." in result.stderr
    assert "1 image(s) failed" in result.output
    assert "Final test accuracy" in result.output


def test_strict_stops_before_any_bottleneck(tmp_path):
    folder = make_colour_folder(tmp_path / "data", per_class=8)
    bad = add_bad_files(folder)
    result = CliRunner().invoke(cli, retrain_args(tmp_path, "--image_dir", str(folder), "--strict"))
    assert result.exit_code == 1
    assert "--strict: 4 file(s)" in result.output
    assert all(str(p) in result.output for p in bad.values())
    assert not (tmp_path / "bottlenecks").exists()


def test_empty_class_folder_is_an_error_naming_it(tmp_path):
    folder = make_colour_folder(tmp_path / "data", per_class=5)
    (folder / "yellow").mkdir()
    result = CliRunner().invoke(cli, retrain_args(tmp_path, "--image_dir", str(folder)))
    assert result.exit_code == 1 and "Class 'yellow'" in result.output
    assert "has 0 image(s)" in result.output


def test_unicode_and_space_labels_survive_to_label_json(tmp_path):
    import json

    folder = make_colour_folder(
        tmp_path / "data",
        per_class=6,
        colours={"Pâte brisée": (200, 180, 60), "café noir": (40, 20, 10)},
    )
    result = CliRunner().invoke(cli, retrain_args(tmp_path, "--image_dir", str(folder)))
    assert result.exit_code == 0, result.output
    labels = (tmp_path / "out" / "labels.txt").read_text(encoding="utf-8").splitlines()
    assert labels == ["pâte brisée", "café noir"]
    image = next((folder / "café noir").iterdir())
    out = CliRunner().invoke(
        cli, ["label", "--graph", str(tmp_path / "out" / "graph.pb"), "--json", str(image)]
    )
    assert json.loads(out.stdout)["results"][0]["predictions"][0]["label"] == "café noir"


def test_outputs_in_missing_folders_are_created_and_unwritable_ones_refused(tmp_path, colour_dir):
    deep = tmp_path / "new" / "deeper"
    ok = CliRunner().invoke(
        cli,
        retrain_args(
            tmp_path, "--image_dir", str(colour_dir), "--output_graph", str(deep / "g.pb")
        ),
    )
    assert ok.exit_code == 0 and (deep / "g.pb").is_file()
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    bad = CliRunner().invoke(
        cli,
        retrain_args(
            tmp_path, "--image_dir", str(colour_dir), "--output_graph", str(blocker / "g.pb")
        ),
    )
    assert bad.exit_code == 1 and f"Cannot write {blocker / 'g.pb'}" in bad.output
    assert "Computing" not in bad.output and "Step" not in bad.output


def test_not_a_cifar_pickle_names_the_file(tmp_path, tiny_cifar):
    import pickle
    import tarfile

    archive = tmp_path / "fake" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]:
            data = pickle.dumps(["not", "cifar"])
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    result = CliRunner().invoke(cli, retrain_args(tmp_path, "--data_dir", str(archive.parent)))
    assert result.exit_code == 1
    assert "batches.meta is not a CIFAR-10 python batch" in result.output
    assert "Traceback" not in result.output


# ---------------------------------------------------------------------------------------------
# Full disks


class _FullDisk(io.RawIOBase):
    def __init__(self, real):
        self.real = real

    def write(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.real.close()


def test_disk_full_while_exporting_keeps_the_previous_outputs(tmp_path, colour_dir, monkeypatch):
    first = CliRunner().invoke(cli, retrain_args(tmp_path, "--image_dir", str(colour_dir)))
    assert first.exit_code == 0
    out = tmp_path / "out"
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    from poetslearn import outputs

    real_fdopen = os.fdopen
    monkeypatch.setattr(outputs.os, "fdopen", lambda fd, mode: _FullDisk(real_fdopen(fd, mode)))
    second = CliRunner().invoke(
        cli, retrain_args(tmp_path, "--image_dir", str(colour_dir), "--seed", "9")
    )
    assert second.exit_code == 1
    assert "The disk is full" in second.output and "left intact" in second.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no temp files either


def test_disk_full_on_a_real_tiny_filesystem(tmp_path, colour_dir):
    """A 1 MiB tmpfs: the first export fits; filled up, the second fails and loses nothing."""
    mount = tmp_path / "small"
    mount.mkdir()
    if (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True
        ).returncode
        != 0
    ):
        pytest.skip("cannot mount a tmpfs here; test_disk_full_while_exporting_* simulates it")
    try:
        args = retrain_args(
            tmp_path,
            "--image_dir",
            str(colour_dir),
            "--output_graph",
            str(mount / "g.pb"),
            "--output_labels",
            str(mount / "l.txt"),
        )
        assert CliRunner().invoke(cli, args).exit_code == 0
        before = {p.name: p.read_bytes() for p in mount.iterdir()}
        filler = mount / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError as e:
            assert e.errno == errno.ENOSPC
        finally:
            os.close(fd)
        result = CliRunner().invoke(cli, args + ["--seed", "4"])
        assert result.exit_code == 1 and "The disk is full" in result.output, result.output
        filler.unlink()
        assert {p.name: p.read_bytes() for p in mount.iterdir()} == before
    finally:
        subprocess.run(["umount", str(mount)], check=False)


# ---------------------------------------------------------------------------------------------
# Real processes: signals and a concurrent second run


def retrain_command(tmp_path: Path, folder: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "poetslearn",
        "retrain",
        "--image_dir",
        str(folder),
        "--architecture",
        "mobilenet_0.25_128",
        "--weights",
        "none",
        "--engine",
        "tf",
        "--bottleneck_dir",
        str(tmp_path / "bottlenecks"),
        "--bottleneck_batch_size",
        "16",
        "--output_graph",
        str(tmp_path / "out" / "g.pb"),
        "--output_labels",
        str(tmp_path / "out" / "l.txt"),
        "--how_many_training_steps",
        "50",
        "--quiet",
        *extra,
    ]


def many_images(root: Path, per_class: int) -> Path:
    return make_colour_folder(root, per_class=per_class)


@pytest.mark.processes
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_during_extraction_then_resume(tmp_path, sig):
    # tests/held_run.py holds extraction once 6 batches of 16 have loaded (one 64-row shard is
    # written by then) until the signal has arrived: the signal always lands mid-extraction.
    folder = many_images(tmp_path / "data", per_class=100)
    env = dict(os.environ, POETSLEARN_SHARD_ROWS="64")
    held = tmp_path / "held"
    command = [
        sys.executable,
        str(REPO_ROOT / "tests" / "held_run.py"),
        str(held),
        "6",
        *retrain_command(tmp_path, folder)[3:],
    ]
    process = subprocess.Popen(
        command, env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 600  # a hang guard, not a timing assumption
        while not held.exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "extraction never reached the 7th batch"
            time.sleep(0.05)
        process.send_signal(sig)
        out, err = process.communicate(timeout=300)
    finally:
        process.kill()
    assert process.returncode == 130, (out, err)
    assert "Interrupted" in err and "Traceback" not in err
    assert not list(tmp_path.glob("bottlenecks/*/.*"))  # no temporary shard left behind
    assert not (tmp_path / "out" / "g.pb").exists()

    done = subprocess.run(
        retrain_command(tmp_path, folder),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    found = re.search(r"Computed ([\d,]+) bottlenecks .*; ([\d,]+) were cached", done.stdout)
    computed, cached = (int(g.replace(",", "")) for g in found.groups())
    # At least the 64-row shard and at most the 6 batches loaded before the hold were kept.
    assert 64 <= cached <= 96 and computed + cached == 300


@pytest.mark.processes
def test_two_runs_sharing_a_bottleneck_dir_both_finish(tmp_path):
    folder = many_images(tmp_path / "data", per_class=150)
    runs = [
        subprocess.Popen(
            retrain_command(tmp_path, folder, "--output_graph", str(tmp_path / f"out{i}" / "g.pb")),
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [r.communicate(timeout=300) for r in runs]
    assert [r.returncode for r in runs] == [0, 0], outputs
    accuracies = [o[0].split("Final test accuracy = ")[1].split("%")[0] for o in outputs]
    assert accuracies[0] == accuracies[1]
    third = subprocess.run(
        retrain_command(tmp_path, folder),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "All 450 bottlenecks were cached; computed none." in third.stdout


# ---------------------------------------------------------------------------------------------
# The image decoder: an RGB array or our own error, nothing else


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_random_bytes_decode_or_raise_image_error(data):
    try:
        pixels = decode_image(data, "random.bin")
    except ImageError:
        return
    assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == 3


MODES = ["1", "L", "P", "RGB", "RGBA", "LA", "CMYK", "I;16", "I", "F", "YCbCr"]
FORMATS = ["PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP"]


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(MODES),
    st.sampled_from(FORMATS),
    st.integers(1, 40),
    st.integers(1, 40),
    st.integers(0, 2**32 - 1),
    st.booleans(),
)
def test_odd_valid_images_decode_or_raise_image_error(mode, fmt, width, height, seed, truncate):
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).convert(mode)
    buffer = io.BytesIO()
    try:
        img.save(buffer, format=fmt)
    except (OSError, ValueError, KeyError):
        return  # PIL cannot write this mode in this format: nothing to decode
    data = buffer.getvalue()
    if truncate:
        data = data[: max(1, len(data) // 2)]
    try:
        pixels = decode_image(data, "odd")
    except ImageError:
        assert truncate or fmt in ("TIFF",), (mode, fmt)
        return
    assert pixels.shape == (height, width, 3) and pixels.dtype == np.uint8


def test_huge_images_are_downscaled_on_decode_or_refused(monkeypatch):
    big = Image.fromarray(noisy_colour((10, 120, 200), size=(1200, 1600)))
    jpeg, png = io.BytesIO(), io.BytesIO()
    big.save(jpeg, "JPEG")
    big.save(png, "PNG")
    monkeypatch.setattr(images_module, "MAX_DECODED_PIXELS", 500_000)  # below 1600 x 1200
    small = decode_image(jpeg.getvalue(), "big.jpg", min_side=200)
    assert small.shape == (300, 400, 3)  # decoded at 1/4 scale, never at full size
    with pytest.raises(ImageError, match="1600x1200 pixels, too large to decode safely"):
        decode_image(png.getvalue(), "big.png", min_side=200)


def test_animated_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    pixels = decode_image(buffer.getvalue(), "anim.gif")
    assert tuple(pixels[0, 0]) == (255, 0, 0)


def test_sixteen_bit_png_keeps_its_range():
    img = Image.fromarray(np.full((4, 4), 65535 // 2, dtype=np.uint16))
    buffer = io.BytesIO()
    img.save(buffer, "PNG")
    assert abs(int(decode_image(buffer.getvalue(), "deep.png")[0, 0, 0]) - 128) <= 1


def test_dataset_error_for_missing_folder():
    from poetslearn.data.image_folder import load_image_folder

    with pytest.raises(DataError, match="is not a folder"):
        load_image_folder(Path("/no/such/dir"))


def test_disk_full_while_writing_the_cache_is_a_clear_error(tmp_path, colour_dir, monkeypatch):
    from poetslearn import outputs

    real_fdopen = outputs.os.fdopen  # every shard is written through outputs.write_files_atomic
    monkeypatch.setattr(outputs.os, "fdopen", lambda fd, mode: _FullDisk(real_fdopen(fd, mode)))
    result = CliRunner().invoke(cli, retrain_args(tmp_path, "--image_dir", str(colour_dir)))
    assert result.exit_code == 1 and "The disk is full" in result.output
    assert list(tmp_path.glob("bottlenecks/*"))  # the cache folder was being written
    assert not list(tmp_path.glob("bottlenecks/*/*")) and not list(
        tmp_path.glob("bottlenecks/*/.*")
    )  # no shard, and no temporary file left behind
    assert not (tmp_path / "out" / "graph.pb").exists()


def test_unreadable_file_is_skipped(tmp_path, monkeypatch):
    folder = make_colour_folder(tmp_path / "data", per_class=5)
    locked = folder / "green" / "img_1.jpg"
    real = Path.read_bytes

    def read_bytes(self):
        if self == locked:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)  # root ignores chmod, so simulate it
    result = CliRunner().invoke(cli, retrain_args(tmp_path, "--image_dir", str(folder)))
    assert result.exit_code == 0, result.output
    assert f"Skipping {locked}: it cannot be read (Permission denied)." in result.stderr


def test_disk_full_after_the_graph_was_written_says_what_was_written(
    tmp_path, colour_dir, monkeypatch
):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "m.tflite"))

    monkeypatch.setattr("poetslearn.export.stage.export_tflite", full)
    result = CliRunner().invoke(
        cli,
        retrain_args(
            tmp_path, "--image_dir", str(colour_dir), "--tflite_output", str(tmp_path / "m.tflite")
        ),
    )
    assert result.exit_code == 1
    graph = tmp_path / "out" / "graph.pb"
    assert (
        f"Error: The disk is full (writing {tmp_path / 'm.tflite'}). Free some space and run "
        f"the command again; the new {graph}, "
    ) in result.output
    assert "the later exports were not." in result.output
    assert "left intact" not in result.output  # it was not: the new graph is in place
    assert graph.is_file()


def test_outputs_get_the_mode_a_plain_new_file_gets(tmp_path):
    """Atomic writes go through a temporary file (created 0600): the model must still end up
    readable by whoever could read a file the user saved plainly (a web server, a teammate)."""
    from poetslearn import outputs

    outputs.write_atomic(tmp_path / "model.tflite", b"model")
    (tmp_path / "plain.bin").write_bytes(b"model")
    written = (tmp_path / "model.tflite").stat().st_mode & 0o777
    assert written == (tmp_path / "plain.bin").stat().st_mode & 0o777
