"""`--ray`: bottlenecks computed on a real two-node Ray cluster started by these tests.

The cluster is a head node and a second node, one CPU each, started the way Ray's own tests do
(`ray.cluster_utils.Cluster`) on 127.0.0.1 only, and stopped through the processes it started.
Runs compare against the local backend: the same cache keys, the same vectors (1e-5), the same
accuracy and best step. Processes are killed at known points with the gate of `ray_gate.py`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import cifar_folder, make_colour_folder
from poetslearn.config import RetrainConfig
from poetslearn.errors import PoetslearnError
from poetslearn.extract.backends import LocalExtraction
from poetslearn.extract.backends.ray import LOOPBACK_VARIABLE, RayExtraction, pool_shape
from poetslearn.extract.bottleneck_cache import BottleneckCache
from poetslearn.extract.bottlenecks import compute_bottlenecks
from poetslearn.pipeline import retrain
from ray_gate import gated_splits, tiny_extractor

TESTS = Path(__file__).resolve().parent
WORKER_NICENESS = "RAY_worker_niceness"  # Ray's setting, read from the environment
WAIT_S = 300  # a guard only: how long a step may take on a very slow machine before failing


def wait_until(condition, what: str):
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"gave up after {WAIT_S} s waiting for {what}")


@pytest.fixture(scope="module")
def ray_cluster():
    """Two 1-CPU nodes on loopback; their workers find ray_gate.py on the PYTHONPATH."""
    settings = {
        LOOPBACK_VARIABLE: "0",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])),
        # Ray runs its workers at nice 15: beside any busy process (another build, a second
        # test run) they got a few percent of a core and the tests crawled for many minutes.
        # The tests' own workers run at the priority of the tests.
        WORKER_NICENESS: "0",
    }
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)  # read by Ray at import, inherited by the nodes started here
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "node_ip_address": "127.0.0.1"}
    )
    try:
        cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
        cluster.wait_for_nodes()
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def cached_vectors(cache_dir: Path) -> dict[bytes, np.ndarray]:
    """Every vector in a bottleneck cache folder, by key."""
    vectors = {}
    for shard in cache_dir.glob("*/shard-*.npz"):
        with np.load(shard) as data:
            vectors.update(zip(map(bytes, data["keys"]), data["vectors"]))
    return vectors


def assert_same_vectors(ours: dict, reference: dict) -> None:
    assert ours.keys() == reference.keys()
    for key, vector in reference.items():
        np.testing.assert_allclose(ours[key], vector, rtol=1e-5, atol=1e-6)


def tiny_retrain_config(tmp_path: Path, images: Path, name: str, **changes) -> RetrainConfig:
    return RetrainConfig(
        architecture="test_tiny",
        weights="none",
        image_dir=images,
        how_many_training_steps=60,
        eval_step_interval=10,
        summaries_dir="",
        show_progress=False,
        bottleneck_batch_size=4,
        bottleneck_dir=tmp_path / f"bottlenecks_{name}",
        output_graph=tmp_path / f"{name}.pb",
        output_labels=tmp_path / f"{name}.txt",
        **changes,
    )


def test_image_folder_on_two_nodes_equals_a_local_run(ray_cluster, tmp_path):
    images = make_colour_folder(tmp_path / "colours", per_class=16)
    local = retrain(tiny_retrain_config(tmp_path, images, "local"), log=lambda m: None)
    lines = []
    on_ray = retrain(
        tiny_retrain_config(
            tmp_path, images, "ray", extraction="ray", ray_address=ray_cluster.address
        ),
        log=lines.append,
    )

    assert on_ray.extraction.computed == local.extraction.computed == 48
    assert len(on_ray.extraction.by_node) == 2  # both nodes computed vectors
    assert sum(on_ray.extraction.by_node.values()) == 48
    assert any(line.startswith("Vectors computed per node (2): 127.0.0.1") for line in lines)
    assert_same_vectors(
        cached_vectors(tmp_path / "bottlenecks_ray"), cached_vectors(tmp_path / "bottlenecks_local")
    )
    assert on_ray.trained.best_step == local.trained.best_step
    assert on_ray.score.accuracy == local.score.accuracy
    assert on_ray.trained.best_validation_accuracy == local.trained.best_validation_accuracy


def test_check_on_two_nodes_finds_what_a_local_check_finds(ray_cluster, tmp_path):
    from poetslearn.check import check_data

    images = make_colour_folder(tmp_path / "colours", per_class=12)
    shutil.copy(images / "red" / "img_0.png", images / "blue" / "copy_of_red.png")
    local = check_data(
        tiny_retrain_config(tmp_path, images, "local"), log=lambda m: None, warn=lambda m: None
    )
    on_ray = check_data(
        tiny_retrain_config(
            tmp_path, images, "ray", extraction="ray", ray_address=ray_cluster.address
        ),
        log=lambda m: None,
        warn=lambda m: None,
    )
    assert on_ray.extraction.computed == local.extraction.computed == 36  # the copy once
    assert len(on_ray.extraction.by_node) == 2  # both nodes computed vectors
    findings = lambda result: [(f.kind, f.row, f.score) for f in result.findings]  # noqa: E731
    assert findings(on_ray) == findings(local)
    assert ("copy_across_classes", 1.0) in {(k, s) for k, _, s in findings(local)}


def test_a_csv_data_set_on_two_nodes_equals_a_local_folder_run(ray_cluster, tmp_path):
    """... with --test_time_mirror: the mirror images travel to the workers as a split."""
    images = make_colour_folder(tmp_path / "colours", per_class=8)
    rows = [
        f"{p.relative_to(images).as_posix()},{p.parent.name}" for p in sorted(images.rglob("img_*"))
    ]
    table = images / "colours.csv"
    table.write_text("path,labels\n" + "\n".join(rows) + "\n")
    local = retrain(
        tiny_retrain_config(tmp_path, images, "local", test_time_mirror=True), log=lambda m: None
    )
    on_ray = retrain(
        tiny_retrain_config(
            tmp_path,
            None,
            "ray",
            data_csv=table,
            test_time_mirror=True,
            extraction="ray",
            ray_address=ray_cluster.address,
        ),
        log=lambda m: None,
    )
    mirrored = len(local.dataset.splits["validation"]) + len(local.dataset.splits["test"])
    assert on_ray.extraction.computed == local.extraction.computed == 24 + mirrored
    assert len(on_ray.extraction.by_node) == 2
    assert_same_vectors(
        cached_vectors(tmp_path / "bottlenecks_ray"), cached_vectors(tmp_path / "bottlenecks_local")
    )
    assert on_ray.score.accuracy == local.score.accuracy
    assert on_ray.score.evaluation.confidence.tolist() == local.score.evaluation.confidence.tolist()


def test_a_worker_killed_during_extraction_is_replaced_and_every_vector_is_right(
    ray_cluster, tmp_path
):
    images = make_colour_folder(tmp_path / "colours", per_class=12)
    gate = tmp_path / "gate"
    gate.mkdir()
    extractor = tiny_extractor()
    cache = BottleneckCache(
        tmp_path / "bn", "test_tiny", extractor.fingerprint, extractor.feature_dim
    )
    outcome = {}

    def run():
        try:
            outcome["result"] = compute_bottlenecks(
                gated_splits(images, gate, hold_from=0),
                extractor,
                cache,
                3,
                show_progress=False,
                backend=RayExtraction(ray_cluster.address),
            )
        except BaseException as e:  # noqa: BLE001 - reported by the test below
            outcome["error"] = e

    driver = threading.Thread(target=run, daemon=True)
    driver.start()
    # Both actors are inside their first batch, waiting at the gate: kill one of them there.
    held = wait_until(
        lambda: (lambda p: p if len(p) >= 2 else None)(
            {int(f.name.split("-")[1]) for f in gate.glob("started-*")}
        ),
        "both actors to start",
    )
    victim = min(held)
    os.kill(victim, getattr(signal, "SIGKILL", signal.SIGTERM))
    (gate / "open").touch()
    driver.join(WAIT_S)
    assert "error" not in outcome, outcome.get("error")
    vectors, _, stats = outcome["result"]
    assert stats.computed == 36 and stats.failed == 0

    reference, _, _ = compute_bottlenecks(
        gated_splits(images, gate, hold_from=10**9),
        tiny_extractor(),
        BottleneckCache(
            tmp_path / "local", "test_tiny", extractor.fingerprint, extractor.feature_dim
        ),
        3,
        show_progress=False,
        backend=LocalExtraction(),
    )
    np.testing.assert_allclose(vectors["train"], reference["train"], rtol=1e-5, atol=1e-6)
    assert_same_vectors(cached_vectors(tmp_path / "bn"), cached_vectors(tmp_path / "local"))


def test_a_driver_killed_mid_extraction_resumes_from_the_cache(ray_cluster, tmp_path):
    images = make_colour_folder(tmp_path / "colours", per_class=12)  # 36 images, 12 batches
    gate = tmp_path / "gate"
    gate.mkdir()
    # Each batch of 3 becomes its own shard on disk as it arrives.
    env = {**os.environ, "POETSLEARN_SHARD_ROWS": "3"}
    command = [
        sys.executable,
        str(TESTS / "ray_gate.py"),
        ray_cluster.address,
        str(images),
        str(tmp_path / "bn"),
        str(gate),
        "18",
        "3",
    ]
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # The batches of images 0-17 pass the gate and are stored as they arrive (Ray Data may
        # still hold the last one or two of them); the others wait at the gate.
        wait_until(
            lambda: (
                len(list((tmp_path / "bn").glob("*/shard-*.npz"))) >= 4
                and len(list(gate.glob("started-*"))) >= 2
                or first.poll() is not None
            ),
            "four shards on disk and both actors held",
        )
        assert first.poll() is None, first.communicate()[1].decode()[-3000:]
        first.kill()  # SIGKILL: no handler runs, nothing is flushed on the way out
    finally:
        first.kill()
        first.communicate()
    stored = len(cached_vectors(tmp_path / "bn"))
    assert 12 <= stored <= 18

    (gate / "open").touch()
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=WAIT_S)
    assert second.returncode == 0, second.stderr[-3000:]
    # Ray may print its own messages (a worker of the killed driver died) after the JSON line.
    counts = json.loads(
        next(line for line in reversed(second.stdout.splitlines()) if line.startswith("{"))
    )
    assert counts == {"cached": stored, "computed": 36 - stored, "by_node": counts["by_node"]}

    reference, _, _ = compute_bottlenecks(
        gated_splits(images, gate, hold_from=10**9),
        tiny_extractor(),
        BottleneckCache(tmp_path / "local", "test_tiny", tiny_extractor().fingerprint, 16),
        3,
        show_progress=False,
        backend=LocalExtraction(),
    )
    assert_same_vectors(cached_vectors(tmp_path / "bn"), cached_vectors(tmp_path / "local"))


def run_cli(args: list[str], prelude: str = "pass") -> subprocess.CompletedProcess:
    """The command in a fresh process: exactly what a user sees, whatever ran before here."""
    code = f"import sys; {prelude}; from poetslearn.cli.main import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=WAIT_S
    )


def test_an_unreachable_cluster_is_a_one_line_error_before_any_work(tmp_path, colour_dir):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run_cli(
        [
            "retrain",
            "--architecture",
            "test_tiny",
            "--weights",
            "none",
            "--image_dir",
            str(colour_dir),
            "--bottleneck_dir",
            str(tmp_path / "bn"),
            "--output_graph",
            str(tmp_path / "g.pb"),
            "--ray",
            f"127.0.0.1:{port}",
        ]
    )
    assert result.returncode == 1
    assert result.stderr.startswith(f"Error: Cannot reach a Ray cluster at 127.0.0.1:{port}")
    assert "ray start --head" in result.stderr and len(result.stderr.splitlines()) == 1
    assert result.stdout == ""
    assert not (tmp_path / "bn").exists() and not (tmp_path / "g.pb").exists()


def test_ray_missing_is_a_one_line_error_naming_the_extra(tmp_path, colour_dir):
    result = run_cli(
        [
            "retrain",
            "--architecture",
            "test_tiny",
            "--weights",
            "none",
            "--image_dir",
            str(colour_dir),
            "--bottleneck_dir",
            str(tmp_path / "bn"),
            "--output_graph",
            str(tmp_path / "g.pb"),
            "--ray",
            "auto",
        ],
        prelude="sys.modules['ray'] = None",
    )  # `import ray` fails: not installed
    assert result.returncode == 1
    assert 'pip install "poetslearn[ray]"' in result.stderr
    assert len(result.stderr.splitlines()) == 1 and not (tmp_path / "bn").exists()


def test_the_pool_fits_the_nodes():
    node = lambda cpus: {"Alive": True, "Resources": {"CPU": float(cpus)}}  # noqa: E731
    assert pool_shape([node(1), node(1)]) == (1, 2)
    assert pool_shape([node(4), node(16)]) == (4, 5)
    assert pool_shape([node(32)]) == (8, 4)
    assert pool_shape([node(4), node(16)], worker_cpus=16) == (16, 1)
    with pytest.raises(PoetslearnError, match="at most 16"):
        pool_shape([node(4), node(16)], worker_cpus=17)
    with pytest.raises(PoetslearnError, match="no node with a CPU"):
        pool_shape([{"Alive": False, "Resources": {"CPU": 8.0}}])


def test_genuine_mobilenet_on_cifar10_photos_on_two_nodes_equals_a_local_run(
    ray_cluster, shared, tmp_path
):
    """Genuine ImageNet weights on real images (2,000 CIFAR-10 training images in ten class
    folders): the same vectors, the same trained layer. All 60,000 took two minutes here and
    showed nothing more: the path is the same whatever the count."""
    images = cifar_folder(shared, tmp_path / "cifar", classes=range(10), per_class=200)
    settings = dict(
        architecture="mobilenet_0.25_128",
        image_dir=images,
        model_dir=shared / "models",
        how_many_training_steps=600,
        summaries_dir="",
        show_progress=False,
    )
    local = retrain(
        RetrainConfig(
            **settings,
            bottleneck_dir=tmp_path / "bottlenecks_local",
            output_graph=tmp_path / "local.pb",
            output_labels=tmp_path / "local.txt",
        ),
        log=lambda m: None,
    )
    on_ray = retrain(
        RetrainConfig(
            **settings,
            bottleneck_dir=tmp_path / "bottlenecks_ray",
            output_graph=tmp_path / "ray.pb",
            output_labels=tmp_path / "ray.txt",
            extraction="ray",
            ray_address=ray_cluster.address,
        ),
        log=lambda m: None,
    )
    assert on_ray.extraction.computed == local.extraction.computed == 2000
    assert len(on_ray.extraction.by_node) == 2 and min(on_ray.extraction.by_node.values()) > 0
    assert_same_vectors(
        cached_vectors(tmp_path / "bottlenecks_ray"), cached_vectors(tmp_path / "bottlenecks_local")
    )
    assert on_ray.trained.best_step == local.trained.best_step
    assert on_ray.score.accuracy == local.score.accuracy > 0.5  # genuine features: far above 0.1


def test_fine_tuning_activations_on_two_nodes_equal_a_local_run(ray_cluster, tmp_path):
    images = make_colour_folder(tmp_path / "colours", per_class=16)
    tuning = dict(fine_tune_blocks=1, fine_tune_epochs=2)
    local = retrain(tiny_retrain_config(tmp_path, images, "local", **tuning), log=lambda m: None)
    lines = []
    on_ray = retrain(
        tiny_retrain_config(
            tmp_path, images, "ray", extraction="ray", ray_address=ray_cluster.address, **tuning
        ),
        log=lines.append,
    )
    assert any(line.startswith("Activations computed per node (2): 127.0.0.1") for line in lines), (
        lines
    )
    recorded = [
        json.loads((tmp_path / f"{name}.pb.json").read_text())["fine_tuning"]
        for name in ("local", "ray")
    ]
    assert recorded[0] == recorded[1] and recorded[0]["blocks"] == 1
    assert on_ray.score.accuracy == local.score.accuracy
    assert on_ray.trained.best_validation_accuracy == local.trained.best_validation_accuracy


def test_a_pool_that_cannot_start_in_time_is_a_clear_error(ray_cluster, tmp_path):
    import ray
    import ray.data

    images = make_colour_folder(tmp_path / "colours", per_class=4)
    extractor = tiny_extractor()
    cache = BottleneckCache(
        tmp_path / "bn", "test_tiny", extractor.fingerprint, extractor.feature_dim
    )
    backend = RayExtraction(ray_cluster.address)
    # Every CPU of the cluster is taken, so no extraction actor can start, however fast the
    # machine: the pool waits out its limit whatever the timing.
    blocker = ray.remote(num_cpus=1)(type("Blocker", (), {"ready": lambda self: True}))
    blockers = [blocker.remote() for _ in range(int(ray.cluster_resources()["CPU"]))]
    ray.get([b.ready.remote() for b in blockers])
    context = ray.data.DataContext.get_current()
    limit, context.wait_for_min_actors_s = context.wait_for_min_actors_s, 2
    try:
        with pytest.raises(PoetslearnError, match="did not start 2 extraction actor"):
            compute_bottlenecks(
                gated_splits(images, tmp_path, hold_from=10**9),
                extractor,
                cache,
                3,
                show_progress=False,
                backend=backend,
            )
    finally:
        context.wait_for_min_actors_s = limit
        for b in blockers:
            ray.kill(b)
