"""The `ray` extraction backend: bottlenecks computed by an actor pool on a Ray cluster.

The driver plans the batches from the cache and stores what comes back (`bottlenecks._store`),
exactly as in a local run; only the computing moves. Ray Data runs `map_batches` over a pool of
actors, one extractor each, built from the picklable `ExtractorSpec` with as many engine threads
as CPUs the actor holds. Each batch travels as its own small image source (an array block for
pixels in memory, paths for files on a shared filesystem) and comes back as a `BatchResult`.

Two things measured with Ray 2.60 on 1-CPU nodes shape this:
- The batches enter as `ray.data.from_items` blocks made on the driver, so no read task ever
  waits for a CPU that the actors hold (`ray.data.range` + a pool of every CPU deadlocks).
- The weights reach the actors through the object store from a small named actor; the
  extraction actors' constructor takes only that name, so Ray can restart a killed actor from
  nothing (Ray Data restarts actors and retries their batches by default).
"""

from __future__ import annotations

import logging
import os
import pickle
import socket
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np

from poetslearn.data.resize import use_compiled_resize
from poetslearn.data.sources import Split
from poetslearn.errors import PoetslearnError
from poetslearn.extract.backends.base import Batch, BatchResult

INSTALL_HINT = 'pip install "poetslearn[ray]"'
# On a single machine Ray keeps every node, driver and worker on 127.0.0.1 with this set to 0
# (Ray's own default on macOS and Windows); without it, Linux nodes advertise the network address.
LOOPBACK_VARIABLE = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
# Beyond this many threads one extractor stops speeding up; bigger nodes get several actors.
MAX_THREADS_PER_WORKER = 8
_joined: str | None = None  # the address `connect` joined in this process
ACTOR_START_LIMIT_S = 600  # how long the pool may take to start before the run fails


def import_ray():
    try:
        import ray
    except ImportError:
        raise PoetslearnError(
            f"--ray needs Ray, which is not installed here. Install it with "
            f"{INSTALL_HINT} (on every machine of the cluster)."
        ) from None
    return ray


def _check_reachable(address: str) -> None:
    """Ray retries an unreachable head for minutes; a plain connection attempt says it at once."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=10):
            return
    except (OSError, ValueError) as e:
        reason = getattr(e, "strerror", None) or str(e)
        raise PoetslearnError(
            f"Cannot reach a Ray cluster at {address} ({reason}). Start one there with `ray start "
            f"--head --port {port or 6379}`, give the head's host:port, or use --ray local to "
            f"run Ray on this machine alone."
        ) from None


def connect(address: str) -> None:
    """Joins the cluster at `address` ('auto': the one this machine belongs to; 'local': a new
    Ray on this machine alone), before any work; a clear error when that cannot be done."""
    if address == "local":
        os.environ.setdefault(LOOPBACK_VARIABLE, "0")  # read when Ray is imported
    global _joined
    ray = import_ray()
    if ray.is_initialized():
        if _joined in (None, address):  # joined already (by us, or by the library's caller)
            return
        ray.shutdown()  # another cluster than the one asked for now
    if address not in ("auto", "local") and not address.startswith("ray://"):
        _check_reachable(address)
    extra = {"include_dashboard": False} if address == "local" else {}
    try:
        ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False, **extra)
    except (ConnectionError, RuntimeError, ValueError) as e:
        reason = (str(e).splitlines() or [type(e).__name__])[0].rstrip(".")
        raise PoetslearnError(
            f"Cannot join the Ray cluster {address!r}: {reason}. Start one "
            f"with `ray start --head` on its head machine, or use --ray "
            f"local."
        ) from None
    import ray.data  # configures its loggers when first imported: quietened after that

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # poetslearn shows its own
    # The whole pool starts before the first batch is handed out; otherwise the first actor up
    # can take every batch of a small job while the others still import TensorFlow.
    context.wait_for_min_actors_s = ACTOR_START_LIMIT_S
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    _joined = address


def pool_shape(nodes: list[dict], worker_cpus: int | None = None) -> tuple[int, int]:
    """(CPUs per actor, actors): by default as many CPUs per actor as the smallest node has (at
    most MAX_THREADS_PER_WORKER), and as many actors as fit on all nodes together."""
    cpus = [int(n["Resources"].get("CPU", 0)) for n in nodes if n.get("Alive", True)]
    cpus = [c for c in cpus if c >= 1]
    if not cpus:
        raise PoetslearnError(
            "The Ray cluster has no node with a CPU to compute bottlenecks on; "
            "start one with `ray start --address HEAD:PORT --num-cpus N`."
        )
    per_worker = worker_cpus or min(min(cpus), MAX_THREADS_PER_WORKER)
    actors = sum(c // per_worker for c in cpus)
    if actors == 0:
        raise PoetslearnError(
            f"--ray_worker_cpus {per_worker} is more than any node of the Ray "
            f"cluster has (largest: {max(cpus)} CPUs); give at most {max(cpus)}."
        )
    return per_worker, actors


class WeightsHolder:
    """Holds the pickled (spec, weights bytes, file name) for the extraction actors (made a
    Ray actor at run time, so importing this module does not need Ray)."""

    def __init__(self, package: bytes) -> None:
        self.package = package

    def get(self) -> bytes:
        return self.package


def _weights_package(spec) -> bytes:
    """The spec and its weights file's bytes (None for random weights or TF Hub modules)."""
    weights = Path(spec.weights) if spec.weights != "none" else None
    data = weights.read_bytes() if weights is not None else None
    return pickle.dumps((spec, data, weights.name if weights is not None else None))


def _materialise(data: bytes, sha256: str | None, name: str) -> Path:
    """The weights as a local file of the same name (its format is told by its name)."""
    folder = Path(tempfile.gettempdir()) / "poetslearn-ray-weights" / (sha256 or uuid.uuid4().hex)
    path = folder / name
    if not path.is_file() or path.stat().st_size != len(data):
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f".{name}.{uuid.uuid4().hex}"
        temporary.write_bytes(data)
        os.replace(temporary, path)
    return path


class ExtractionWorker:
    """One actor of the pool: builds the extractor once, then computes batch after batch."""

    def __init__(self, holder_name: str) -> None:
        import ray

        from poetslearn.quiet import import_tensorflow

        context = ray.get_runtime_context()
        threads = max(1, int(context.get_assigned_resources().get("CPU", 1)))
        tf = import_tensorflow()
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        spec, data, name = pickle.loads(ray.get(ray.get_actor(holder_name).get.remote()))
        if data is not None:
            spec = replace(spec, weights=str(_materialise(data, spec.weights_sha256, name)))
        self.extractor = replace(spec, threads=threads).build()
        use_compiled_resize()  # an actor resizes batch after batch: the fast resize pays
        self.where = f"{ray.util.get_node_ip_address()} (node {context.get_node_id()[:8]})"

    def __call__(self, batch: dict) -> dict:
        results = [pickle.dumps(self.compute(*pickle.loads(task))) for task in batch["task"]]
        return {"result": np.array(results, dtype=object)}

    def compute(self, split: str, indices: list[int], images) -> BatchResult:
        """`images` holds exactly this batch's images, in order."""
        pixels, failed = images.load_batch(
            list(range(len(indices))), self.extractor.arch.input_size
        )
        failures = {indices[i]: reason for i, reason in failed.items()}
        loaded = len(indices) > len(failures)
        vectors = self.extractor(pixels) if loaded else np.zeros((0, 0), np.float32)
        return BatchResult(
            split, indices, vectors, failures, self.where, self.extractor.engine_name
        )


class RayExtraction:
    """Spreads the batches over an actor pool on the cluster joined at construction."""

    def __init__(self, address: str, worker_cpus: int | None = None) -> None:
        connect(address)
        self.ray = import_ray()
        self.worker_cpus, self.actors = pool_shape(self.ray.nodes(), worker_cpus)

    def run(
        self, batches: list[Batch], splits: dict[str, Split], extractor
    ) -> Iterator[BatchResult]:
        ray = self.ray
        tasks = [
            {"task": pickle.dumps((name, indices, splits[name].images.subset(indices)))}
            for name, indices in batches
        ]
        holder_name = f"poetslearn-weights-{uuid.uuid4().hex}"
        holder = (
            ray.remote(num_cpus=0)(WeightsHolder)
            .options(name=holder_name)
            .remote(_weights_package(extractor.description))
        )
        try:
            dataset = ray.data.from_items(tasks, override_num_blocks=len(tasks)).map_batches(
                ExtractionWorker,
                fn_constructor_args=(holder_name,),
                batch_size=1,
                concurrency=min(self.actors, len(tasks)),
                num_cpus=self.worker_cpus,
            )
            for row in dataset.iter_rows():
                yield pickle.loads(row["result"])
        except ray.exceptions.GetTimeoutError:
            raise PoetslearnError(
                f"The Ray cluster did not start {self.actors} extraction actor(s) of "
                f"{self.worker_cpus} CPU(s) within {ACTOR_START_LIMIT_S} s; check `ray status` "
                f"(busy or lost nodes), or ask for fewer CPUs with --ray_worker_cpus."
            ) from None
        finally:
            ray.kill(holder)


def ray_backend(config) -> RayExtraction:
    if not config.ray_address:
        raise PoetslearnError(
            "The ray extraction backend needs a cluster address: --ray ADDRESS "
            "(or POETSLEARN_RAY_ADDRESS), e.g. auto, local or HOST:PORT."
        )
    return RayExtraction(config.ray_address, config.ray_worker_cpus)
