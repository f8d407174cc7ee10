"""The local executor: trains a sweep's shards on this machine, in the runner's process or side by side in
worker processes, and streams the engine's events back to the runner, the run directory's only writer.

By default (``execution.workers = 1``) the shards train one after another in the runner's process, a thread
per available core. That was measured the faster way on this project's 2-core machine, quiet and beside a
busy process, on the fused kernel and on the general path (the README's performance section): the fused
kernel hands models to its threads one at a time and the runner's OpenMP threads wait passively, so a core
taken by another process already costs its share and no more, and a worker costs a second or more to start
(a fresh interpreter importing torch) while the largest shard, alone in one worker, may leave the other
cores idle. Workers are there for what was not measured here: many cores, and shards kept apart (a crash
in one fails that shard, not the run).

Each worker is a fresh interpreter (multiprocessing's "spawn": torch's thread pools do not survive a
fork) with its own thread count. The runner hands it one shard at a time, the largest first, so that the
last shard to finish is a small one; the worker sends every event over its pipe as it happens. A model's
generators depend only on its coordinates, so a worker trains it to the same numbers the runner would.
A worker that dies is reported as its shard failing (:class:`~scaletui.engine.ShardFailed`) and the other
shards go on.

A stop (the runner's ``stop`` set) saves every shard in training at its current step, on both ways: in the
runner's process :func:`~scaletui.engine.train_shard` sees the same flag; workers share a
:func:`multiprocessing.Event` that the runner sets, each yields its shard's state at the next step boundary
(a :class:`~scaletui.engine.Checkpointed` marked ``stopping``) and the stream ends once all have, or after
SAVE_SECONDS, when the workers that have not are ended as they are (their shards keep their last timed
checkpoints). Closing the stream ends the workers at once: they hold nothing of the run.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import platform
import signal
import threading
import time
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.context import SpawnProcess

import torch

from scaletui.config import Config, parameter_count
from scaletui.engine import (
    Checkpointed,
    Event,
    Problem,
    Shard,
    ShardFailed,
    ShardFinished,
    State,
    StopFlag,
    estimate_shard_bytes,
    prepare_problem,
    train_shard,
)

POLL_SECONDS = 0.25  # how often the runner looks at the stop flag while no worker reports
END_SECONDS = 5.0  # a worker asked to end (SIGTERM) is killed when it has not within this
# After a stop, how long the runner waits for its workers' checkpoints: each sends one within a trainer call
# (a step, or at most FUSED_CALL_SECONDS of the fused kernel's) and the pickling of its state.
SAVE_SECONDS = 30.0

# glibc's mallopt parameters (malloc.h).
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3


@dataclass(frozen=True)
class WorkerPlan:
    """How the local executor trains: ``workers`` processes of ``threads`` threads each; one worker means in
    the runner's own process."""

    workers: int
    threads: int

    def describe(self) -> str:
        threads = f"{self.threads} thread{'s' * (self.threads != 1)}"
        if self.workers == 1:
            return f"in the runner's process, {threads}"
        return f"in {self.workers} worker processes, {threads} each"


def available_cores() -> int:
    """The cores this process may run on (``os.sched_getaffinity``: a container's or ``taskset``'s share), not
    the machine's count."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def configure_process(threads: int | None = None) -> str:
    """Set up this process for training: the allocator, and its threads (one per available core by default).

    glibc serves the general path's multi-MB step temporaries with mmap and hands them back to the kernel
    after every step, a page fault per 4 KiB each time (seconds of system time per sweep); raising the mmap
    and trim thresholds keeps them in the heap for reuse. The fused kernel allocates nothing per step, but a
    run may take either path. Returns what was done, for the log.
    """
    count = threads or available_cores()
    torch.set_num_threads(count)
    allocator = "allocator as found"
    if platform.libc_ver()[0] == "glibc":
        libc = ctypes.CDLL(None)
        if libc.mallopt(M_MMAP_THRESHOLD, 32 << 20) and libc.mallopt(M_TRIM_THRESHOLD, 1 << 30):
            allocator = "glibc mmap threshold 32 MiB, trim threshold 1 GiB"
    return f"{count} threads, {allocator}"


def shard_work(cfg: Config, shard: Shard) -> int:
    """A shard's multiply-adds over its training (parameters × points × steps × models): what orders the
    shards handed to workers. Evaluations and the optimiser add to every shard alike."""
    cell = cfg.cell(*shard.cell)
    points = cell.training.batch_size or cell.data.n_train
    params = parameter_count(cell.target.input_dim, shard.width, shard.depth)
    return params * points * cell.training.steps * len(shard.seeds)


def plan_workers(cfg: Config, device: torch.device, shards: list[Shard], memory_budget: int | None) -> WorkerPlan:
    """How many workers, with how many threads each: ``execution.workers``, never more than there are shards
    nor more than the memory budget holds of the largest shard at once, the available cores shared out among
    them. CUDA runs train in the runner's process (one device), and so does a single shard.
    """
    cores = available_cores()
    if device.type != "cpu" or len(shards) < 2 or cfg.execution.workers == 1:
        return WorkerPlan(1, cores)
    workers = min(cfg.execution.workers, len(shards))
    if memory_budget is not None:
        largest = max(estimate_shard_bytes(cfg.cell(*s.cell), s.width, len(s.seeds)) for s in shards)
        workers = max(1, min(workers, memory_budget // largest))
    return WorkerPlan(workers, max(1, cores // workers))


def run_locally(
    cfg: Config,
    shards: list[Shard],
    stop: threading.Event,
    checkpoints: dict[Shard, State],
    plan: WorkerPlan,
    problems: dict[tuple[int, int], Problem],
) -> Generator[Event | ShardFailed]:
    """Train every shard (from its checkpoint, where ``checkpoints`` has one) as the plan says, yielding the
    events as they come until all are done or ``stop`` is set; a shard in training when it is set yields its
    state at its current step (a :class:`Checkpointed` marked ``stopping``) before the stream ends.
    ``problems`` holds each cell's problem for training in this process (workers draw their own)."""
    if plan.workers == 1:
        for shard in shards:
            if stop.is_set():
                return
            # popped: held no longer
            yield from train_shard(problems[shard.cell], shard, resume=checkpoints.pop(shard, None), stop=stop)
    else:
        yield from _train_in_workers(cfg, shards, stop, checkpoints, plan)


@dataclass
class _Raised:
    """A worker's report that its shard's training raised; ``reason`` is one line."""

    reason: str


class _RunnerGone(Exception):
    """The worker's pipe to the runner is closed: the runner ended (or was killed); so does the worker."""


def _send(conn: Connection, message: object) -> None:
    try:
        conn.send(message)
    except OSError:  # EPIPE, ECONNRESET: nobody reads any more
        raise _RunnerGone from None


def _work(conn: Connection, threads: int, stop: StopFlag) -> None:
    """A worker's life: take a shard, train it, send its events; until the runner closes the pipe or is gone.

    Interrupts are ignored: a Ctrl+C in a terminal reaches the whole process group, and it is the runner
    that decides, on its own stop request, to set ``stop`` (the shard in training then sends its state at
    its current step and ends) and to end its workers.
    """
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    configure_process(threads)
    problems: dict[tuple[int, int], Problem] = {}
    while True:
        try:
            cfg, shard, resume = conn.recv()
        except (EOFError, OSError):
            return
        try:
            try:
                if shard.cell not in problems:
                    problems[shard.cell] = prepare_problem(cfg.cell(*shard.cell), torch.device("cpu"))
                for event in train_shard(problems[shard.cell], shard, resume=resume, stop=stop):
                    _send(conn, event)
            except _RunnerGone:
                raise
            except Exception as exc:
                lines = str(exc).strip().splitlines()
                _send(conn, _Raised(f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__))
        except _RunnerGone:
            return


class _Worker:
    """One worker process, the runner's end of its pipe, and the shard it trains (None while idle)."""

    def __init__(self, context: multiprocessing.context.SpawnContext, threads: int, stop: StopFlag) -> None:
        self.conn, theirs = context.Pipe()
        self.process: SpawnProcess = context.Process(target=_work, args=(theirs, threads, stop), daemon=True)
        self.process.start()
        theirs.close()  # only the worker holds its end: when it dies, this end reads end-of-file
        self.shard: Shard | None = None

    def give(self, cfg: Config, shard: Shard, resume: State | None) -> None:
        self.shard = shard
        with contextlib.suppress(OSError):  # a worker that died idle: its end-of-file reports the shard
            self.conn.send((cfg, shard, resume))

    def death(self) -> str:
        """Why the worker's pipe closed, in one line, once its process has ended."""
        self.process.join(END_SECONDS)
        code = self.process.exitcode
        if code is None:
            return "its worker process closed its pipe and stopped answering"
        if code < 0:
            name = signal.Signals(-code).name
            cause = " (out of memory, or killed by hand)" if -code == signal.SIGKILL else ""
            return f"its worker process was killed by {name}{cause}"
        return f"its worker process exited with code {code}"

    def end(self) -> None:
        """Stop the process now: it holds nothing of the run."""
        self.conn.close()
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(END_SECONDS)
            if self.process.is_alive():
                self.process.kill()
        self.process.join()


def _train_in_workers(
    cfg: Config, shards: list[Shard], stop: threading.Event, checkpoints: dict[Shard, State], plan: WorkerPlan
) -> Generator[Event | ShardFailed]:
    """Hand the shards out to the workers and pass their events on. Once ``stop`` is set no shard is handed
    out; the workers are told (their shared ``saving`` flag) and their messages read until each has sent its
    stopping checkpoint (or its shard's end), for at most SAVE_SECONDS."""
    context = multiprocessing.get_context("spawn")
    todo = deque(sorted(shards, key=lambda s: shard_work(cfg, s), reverse=True))
    saving = context.Event()
    save_by: float | None = None  # once stopping: when the workers that have not saved are given up on
    workers: list[_Worker] = []
    try:
        workers = [_Worker(context, plan.threads, saving) for _ in range(min(plan.workers, len(todo)))]
        while True:
            if stop.is_set() and save_by is None:
                saving.set()
                save_by = time.monotonic() + SAVE_SECONDS
            for worker in workers:
                if save_by is None and worker.shard is None and todo:
                    shard = todo.popleft()
                    worker.give(cfg, shard, checkpoints.pop(shard, None))  # popped: held no longer
            busy = [w for w in workers if w.shard is not None]
            if not busy or (save_by is not None and time.monotonic() > save_by):
                return
            ready = set(wait([w.conn for w in busy], timeout=POLL_SECONDS))
            # One message from every worker that has one, so that a chatty shard cannot starve the others.
            for worker in busy:
                if worker.conn not in ready:
                    continue
                shard = worker.shard
                assert shard is not None
                try:
                    message = worker.conn.recv()
                except (EOFError, OSError):
                    reason = worker.death()
                    workers.remove(worker)
                    worker.end()
                    if save_by is not None:  # a worker that dies while the run stops is part of the stop
                        continue
                    if todo:
                        workers.append(_Worker(context, plan.threads, saving))
                    yield ShardFailed(shard, reason)
                    continue
                if isinstance(message, _Raised):
                    worker.shard = None
                    yield ShardFailed(shard, message.reason)
                    continue
                if isinstance(message, ShardFinished) or (isinstance(message, Checkpointed) and message.stopping):
                    worker.shard = None
                yield message
    finally:
        for worker in workers:
            worker.end()
