"""Fans a sweep's shards out over a Ray cluster and streams their events back to the runner.

Each shard is one Ray task (a streaming generator) asking for ``execution.cpus_per_shard`` CPUs and
``execution.gpus_per_shard`` GPUs. The task trains the shard with the engine and yields the engine's own
events, checkpoints included; the runner, on the driver, stays the only writer of the run directory. When
a task's worker dies, this module (not Ray: a retry must start from a state Ray does not know of) submits
the shard again, up to ``execution.max_retries`` times, with the latest checkpoint the dead one streamed
back; training is deterministic, so the events it repeats carry the same numbers.

Ray is an optional dependency, imported only when a sweep asks for it.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from scaletui.config import Config, ConfigError
from scaletui.engine import (
    Checkpointed,
    Event,
    Shard,
    ShardFailed,
    State,
    prepare_problem,
    resolve_device,
    train_shard,
)
from scaletui.environment import environment_facts

INSTALL_HINT = "pip install 'scaletui[ray]'"
POLL_SECONDS = 0.25  # how often the driver looks at the stop flag while no shard reports
# Called in the worker with every event of a shard before it is sent: what a caller injects there (the tests inject
# faults: a worker that kills itself or raises at a chosen step) reaches the training as a crash would.
EventHook = Callable[[Event], None]


@dataclass
class ShardPlaced:
    """A worker took a shard: where it runs, and the facts the run's environment record needs."""

    shard: Shard
    host: str
    facts: dict[str, Any]


@dataclass
class ShardRetried:
    """A shard's worker died and the shard was submitted again; ``reason`` says so in words."""

    shard: Shard
    reason: str


def import_ray() -> ModuleType:
    """Ray, or a ConfigError naming the field that asked for it and how to install it."""
    try:
        import ray  # lazy: an optional dependency, and seconds to import
    except ImportError:
        raise ConfigError("execution.executor", f"ray is not installed; install it with {INSTALL_HINT}") from None
    return ray


def shard_device(cfg: Config) -> str:
    """The device a Ray shard trains on: a GPU exactly when the shard reserved one.

    Ray leaves every GPU visible to a task that asked for none, so "auto" alone would crowd them all
    onto GPU 0 behind Ray's back.
    """
    return "cuda" if cfg.execution.gpus_per_shard > 0 else "cpu"


def train_on_worker(
    cfg: Config, shard: Shard, resume: State | None, on_event: EventHook | None = None
) -> Iterator[ShardPlaced | Event]:
    """The body of a shard's Ray task: from the start, or from ``resume``, a checkpoint of the shard."""
    device = resolve_device(shard_device(cfg))
    yield ShardPlaced(shard, socket.gethostname(), environment_facts(str(device), cfg.training.dtype))
    problem = prepare_problem(cfg.cell(*shard.cell), device)
    for event in train_shard(problem, shard, resume=resume):
        if on_event is not None:
            on_event(event)
        yield event


def connect(address: str) -> str:
    """Join the cluster at ``address`` and say, in a few words, where the shards will train.

    ``auto`` joins the cluster this machine belongs to and, when none is running, starts a private instance
    for the run (what a bare ``ray.init()`` does); ``local`` always starts a private one; an explicit
    ``HOST:PORT`` that does not answer fails at once, where Ray itself would retry for minutes. The runner's
    SIGTERM handler is kept: ``ray.init`` installs its own, which would turn a graceful stop into an exit.
    """
    ray = import_ray()
    if address not in ("auto", "local"):
        check_reachable(address)
    on_main = threading.current_thread() is threading.main_thread()
    handler = signal.getsignal(signal.SIGTERM) if on_main else None
    try:
        if address == "local":
            ray.init(address="local", include_dashboard=False)
            return "a private Ray instance on this machine"
        try:
            ray.init(address=address)
        except ConnectionError:
            if address != "auto":
                raise
            ray.init(address="local", include_dashboard=False)
            return "a private Ray instance on this machine (address = auto found no running cluster)"
        return f"Ray at {address}"
    except ConnectionError as exc:
        raise ConfigError(
            "execution.address",
            f"no Ray cluster at {address!r} ({exc}); start one with `ray start --head`, or use address = local",
        ) from None
    finally:
        if on_main and handler is not None:
            signal.signal(signal.SIGTERM, handler)


def check_reachable(address: str, timeout: float = 3.0) -> None:
    """Fail in one line naming ``execution.address`` when nothing listens at an explicit HOST:PORT."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError("execution.address", f"expected auto, local or HOST:PORT, got {address!r}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ConfigError(
            "execution.address", f"no Ray cluster answers at {address} ({exc.strerror or exc}); is `ray start` running?"
        ) from None


def _check_resources(ray: ModuleType, cfg: Config) -> None:
    """Fail now rather than wait forever for a shard that no node of the cluster could ever take."""
    nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
    for field, resource, wanted in (
        ("cpus_per_shard", "CPU", cfg.execution.cpus_per_shard),
        ("gpus_per_shard", "GPU", cfg.execution.gpus_per_shard),
    ):
        largest = max((node.get(resource, 0.0) for node in nodes), default=0.0)
        if wanted > largest:
            raise ConfigError(
                f"execution.{field}",
                f"a shard asks for {wanted:g} {resource}s but no node of the Ray cluster has more than {largest:g}",
            )


def _failure_reason(ray: ModuleType, exc: BaseException, attempts: int) -> str:
    if isinstance(exc, ray.exceptions.RayTaskError):  # the training code raised: Ray does not retry that
        cause = exc.cause if exc.cause is not None else exc
        lines = str(cause).strip().splitlines()
        return f"{type(cause).__name__}: {lines[0]}" if lines else type(cause).__name__
    return f"its worker died on all {attempts} attempts ({type(exc).__name__})"


def run_on_ray(
    cfg: Config,
    shards: list[Shard],
    stop: threading.Event,
    checkpoints: dict[Shard, State],
    on_event: EventHook | None = None,
) -> Generator[ShardPlaced | Event | ShardRetried | ShardFailed]:
    """Submit every shard (from its checkpoint, where ``checkpoints`` has one) and yield their events as
    they arrive, until all are done or ``stop`` is set. A shard whose worker died is submitted again from the
    latest checkpoint it sent. ``on_event`` (pickled to the workers) sees each event in the worker first.

    Closing the iterator cancels what is still running and leaves the cluster.
    """
    ray = import_ray()
    execution = cfg.execution
    attempts = execution.max_retries + 1
    if not ray.is_initialized():  # the runner normally joined already, to say where the shards train
        connect(execution.address)
    latest = dict(checkpoints)
    tried: dict[Shard, int] = {}
    running: dict[Any, Shard] = {}
    try:
        _check_resources(ray, cfg)
        task = ray.remote(train_on_worker)

        def submit(shard: Shard) -> None:
            stream = task.options(
                name=f"scaletui w{shard.width} s{shard.seeds[0]}-{shard.seeds[-1]}",
                num_cpus=execution.cpus_per_shard,
                num_gpus=execution.gpus_per_shard,
                max_retries=0,
                num_returns="streaming",
            ).remote(cfg, shard, latest.get(shard), on_event)
            running[stream] = shard
            tried[shard] = tried.get(shard, 0) + 1

        for shard in shards:
            submit(shard)
        while running and not stop.is_set():
            streams = list(running)
            ray.wait(streams, num_returns=1, timeout=POLL_SECONDS)
            # Then one event from every shard that has one, so that a chatty shard cannot starve the others.
            ready, _ = ray.wait(streams, num_returns=len(streams), timeout=0)
            for stream in ready:
                shard = running[stream]
                try:
                    event = ray.get(next(stream))
                except StopIteration:
                    del running[stream]
                    latest.pop(shard, None)
                    continue
                except ray.exceptions.RayError as exc:
                    del running[stream]
                    if isinstance(exc, ray.exceptions.RayTaskError) or tried[shard] == attempts:
                        yield ShardFailed(shard, _failure_reason(ray, exc, attempts))
                        continue
                    submit(shard)
                    step = int(latest[shard]["step"]) if shard in latest else 0
                    yield ShardRetried(
                        shard,
                        f"its worker died ({type(exc).__name__}); attempt {tried[shard]} of {attempts} "
                        f"starts from step {step:,}",
                    )
                    continue
                if isinstance(event, Checkpointed):
                    latest[shard] = event.state
                yield event
    finally:
        for stream in running:
            with contextlib.suppress(Exception):
                ray.cancel(stream)
        ray.shutdown()
