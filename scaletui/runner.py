"""Runs a sweep in its own OS process, writing the run directory as it goes.

The CLI and the TUI both start runs through :func:`start_runner`, which launches
``python -m scaletui.runner RUN_DIR``; the faces then only read the store. SIGINT, SIGTERM and SIGHUP
stop a runner gracefully: every shard in training saves its state at its current step (a checkpoint, the
event log's ``stopped: width 4 saved at step 2,692,250``), so a resume continues from exactly there, and the
run is marked ``stopped``. That holds for shards in the runner's process and in local workers; on Ray the
stop cancels the tasks and their shards keep their last timed checkpoints. A kill -9 loses what each shard
trained since its last timed checkpoint (``execution.checkpoint_seconds``).

The shards train on this machine (scaletui/local_executor.py: here, or side by side in worker processes)
or on a Ray cluster (``execution.executor = "ray"``); either way their events come back to this process,
the run directory's only writer.

It imports the analysis on purpose, for one rule: each finished width's event-log line counts the models
still falling by :func:`scaletui.analysis.fell_too_much`, the rule the tables use, so the log and the
tables never disagree. The analysis is numpy and scipy only, and imports nothing of the runner's.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Generator, Mapping
from pathlib import Path

import numpy as np

from scaletui.analysis import CONVERGENCE_WINDOW, fell_too_much
from scaletui.config import (
    Config,
    ConfigError,
    Group,
    parameter_count,
    seeds_label,
    shard_label,
    training_fingerprint,
)
from scaletui.engine import (
    Checkpointed,
    Evaluated,
    Event,
    Progressed,
    Resumed,
    Shard,
    ShardFailed,
    ShardFinished,
    State,
    available_memory,
    engine_notice,
    plan_shards,
    prepare_problem,
    prepare_problems,
    resolve_device,
)
from scaletui.environment import environment_facts
from scaletui.local_executor import configure_process, plan_workers, run_locally
from scaletui.present import resume_points_text
from scaletui.ray_executor import (
    ShardPlaced,
    ShardRetried,
    check_reachable,
    import_ray,
    run_on_ray,
    shard_device,
)
from scaletui.ray_executor import connect as connect_ray
from scaletui.store import (
    HEARTBEAT_SECONDS,
    CheckpointRefused,
    Run,
    RunLocked,
    RunWriter,
    StoreError,
    acquire_runner_lock,
    checkpoint_name,
    resume_refusal,
)
from scaletui.targets import build_target

LOCKED_EXIT_CODE = 3  # another runner holds the run: this one wrote nothing
FLUSH_SECONDS = 1.0
PROGRESS_SECONDS = 0.5
# After a stop, how long the shards' events are still recorded: the stopping checkpoints arrive within a
# trainer call (local workers: within local_executor.SAVE_SECONDS); an executor that goes on past this is
# closed, whatever it was doing.
STOPPING_SECONDS = 60.0
MEMORY_SHARE = 0.8  # of what the device has free when the run starts


def create_run(runs_dir: Path, cfg: Config) -> Path:
    """A new run directory for the config; nothing trains until :func:`start_runner` is called."""
    writer = RunWriter.create(runs_dir, cfg)
    writer.close()
    return writer.dir


def runner_environment(base: Mapping[str, str]) -> dict[str, str]:
    """The runner's environment: ``base`` with OpenMP threads that sleep, not spin, while they wait.

    PyTorch's OpenMP threads spin at every operation's barrier by default. When another process wants a
    core, a spinning thread holds it while its partner waits to be scheduled: the general path's width-2
    step went from 0.65 ms alone to 4-5.6 ms beside one busy process, against 0.68 ms with passive waiting
    (which costs 0.95 ms alone: worth it for a process that runs at nice 10 to yield to others). It must be
    set before torch loads, hence here and not in the runner. A value the user set is kept.
    """
    return {**base, "OMP_WAIT_POLICY": base.get("OMP_WAIT_POLICY", "PASSIVE")}


def start_runner(run_dir: Path, *, detach: bool = False, resume: bool = False) -> subprocess.Popen[bytes]:
    """Launch the runner process for a run directory. ``detach`` puts it in a session of its own."""
    if resume and (refusal := resume_refusal(Run(run_dir))) is not None:
        raise StoreError(refusal)
    cmd = [sys.executable, "-m", "scaletui.runner", str(run_dir)]
    if resume:
        cmd.append("--resume")
    with open(run_dir / "runner.log", "ab") as log:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=detach,
            env=runner_environment(os.environ),
        )
    writer = RunWriter(run_dir)
    try:
        writer.record_launch(proc.pid)
    finally:
        writer.conn.close()
    return proc


def preflight(cfg: Config) -> None:
    """What can be checked before a runner starts: a formula finite on its domain, Ray, the device, memory."""
    build_target(cfg.target)
    if cfg.execution.executor == "ray":
        import_ray()  # the devices and memory are the cluster's: the runner checks what it can once it joins
        if cfg.execution.address not in ("auto", "local"):
            check_reachable(cfg.execution.address)
        return
    device = resolve_device(cfg.device)
    plan_shards(cfg, int(MEMORY_SHARE * available_memory(device)))


def launch(cfg: Config, runs_dir: Path, *, detach: bool = False) -> tuple[Path, subprocess.Popen[bytes]]:
    """The one way a face starts a sweep: check it, create its run directory, start its runner."""
    preflight(cfg)
    run_dir = create_run(runs_dir, cfg)
    return run_dir, start_runner(run_dir, detach=detach)


def request_stop(run: Run) -> bool:
    """Ask a live runner on this host to stop gracefully; False when there is none to ask."""
    st = run.status()
    if st.status != "running" or st.pid is None or st.host != socket.gethostname():
        return False
    try:
        os.kill(st.pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    return True


class _Heartbeat(threading.Thread):
    """Beats on its own connection, so a busy training step never makes a live run look dead."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__(daemon=True, name="heartbeat")
        self.run_dir = run_dir
        self.halt = threading.Event()

    def run(self) -> None:
        writer = RunWriter(self.run_dir)
        try:
            while not self.halt.wait(HEARTBEAT_SECONDS):
                writer.heartbeat()
        except Exception:  # a failing disk is reported by the main loop; a missed beat only looks stale
            pass
        finally:
            writer.conn.close()


def _describe_failure(exc: BaseException) -> str:
    """One line a user can act on."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
    full = isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
    if full or "disk is full" in text or "No space left" in text:
        return f"disk full (or file size limit reached) while writing the run ({text})"
    if "disk I/O error" in text:  # how SQLite reports a write refused for space or by the disk
        return f"disk full or failing while writing the run ({text})"
    if "out of memory" in text.lower():
        return f"out of memory on the device ({text}); use fewer seeds or smaller widths"
    return f"{exc.__class__.__name__}: {text}"


def _group(shard: Shard) -> Group:
    return Group(shard.width, shard.n_train, shard.depth)


def _cell_label(shard: Shard, cfg: Config) -> str:
    """``, 1000 samples, depth 2`` in a sweep over data size or depth; nothing in a sweep over width alone."""
    if not cfg.is_grid:
        return ""
    sizes = f", {shard.n_train} samples" if len(cfg.data_sizes) > 1 else ""
    return sizes + (f", depth {shard.depth}" if len(cfg.depths) > 1 else "")


def _describe_shard(shard: Shard, cfg: Config) -> str:
    return f"width {shard.width}{_cell_label(shard, cfg)}, {seeds_label(shard.seeds)}"


def _shard_label(shard: Shard, cfg: Config) -> str:
    label = shard_label(shard.width, shard.seeds, cfg.seeds.count)
    head, comma, seeds = label.partition(",")
    return head + _cell_label(shard, cfg) + comma + seeds


def _take_up_checkpoints(writer: RunWriter, cfg: Config, shards: list[Shard]) -> dict[Shard, State]:
    """On resume: the saved state each unfinished shard continues from. A checkpoint that is damaged, from
    another config, shard or schema version is refused in one line of the event log and its shard starts
    over; the curve rows past each kept checkpoint's step, and every other trace of unfinished work, go."""
    fingerprint = training_fingerprint(cfg)
    states: dict[Shard, State] = {}
    for shard in shards:
        try:
            state = writer.read_checkpoint(_group(shard), list(shard.seeds), fingerprint)
        except CheckpointRefused as exc:
            writer.log_event("warning", f"{_shard_label(shard, cfg)}: {exc}; training from step 0")
            continue
        if state is not None:
            states[shard] = state
    writer.forget_unfinished({(_group(s), s.seeds[0], len(s.seeds)): int(state["step"]) for s, state in states.items()})
    for shard, state in states.items():
        writer.set_progress(_group(shard), shard.seeds[0], len(shard.seeds), int(state["step"]), cfg.training.steps)
    return states


def _shard_summary(result: ShardFinished, earlier_train: np.ndarray | None, cfg: Config) -> tuple[str, str]:
    """The event-log line for a finished shard: its median, and the models that diverged or were still
    falling (the analysis's convergence rule, applied to the last evaluation before the final tenth)."""
    losses = result.test_loss
    finite = losses[np.isfinite(losses)]
    median = f"{np.median(finite):.3e}" if finite.size else "n/a"
    diverged = int((result.diverged_step >= 0).sum())
    where = f"width {result.shard.width}{_cell_label(result.shard, cfg)}"
    message = f"{where} finished: median test loss {median} over {len(losses)} seeds"
    problems = [f"{diverged} diverged (NaN/inf)"] if diverged else []
    if earlier_train is not None:
        with np.errstate(invalid="ignore"):
            falling = int(np.sum(fell_too_much(earlier_train, result.train_loss)))
        if falling:
            problems.append(f"{falling} still falling at the end (unconverged: train longer or change the schedule)")
    return ("warning", f"{message}; {'; '.join(problems)}") if problems else ("info", message)


def execute(run_dir: Path, stop: threading.Event, resume: bool = False) -> str:
    """Train every unfinished shard of the run, recording as we go; returns the final status.

    The run's writer lock is taken before anything is written and held until the end, so a second runner on
    the same run (two resumes at once, a resume beside a stopped-but-alive runner) raises :class:`RunLocked`
    having written nothing.
    """
    lock = acquire_runner_lock(run_dir)
    try:
        return _execute_locked(run_dir, stop, resume)
    finally:
        os.close(lock)


def _execute_locked(run_dir: Path, stop: threading.Event, resume: bool) -> str:
    writer = RunWriter(run_dir)
    heartbeat = _Heartbeat(run_dir)
    try:
        cfg = Run(run_dir).config
        on_ray = cfg.execution.executor == "ray"
        if on_ray:  # this process only draws the test set; the shards train where Ray puts them
            here, device = resolve_device("cpu"), shard_device(cfg)
        else:
            here = resolve_device(cfg.device)
            device = str(here)
        writer.mark_running(device)
        heartbeat.start()
        done = writer.finished_models() if resume else set()
        budget = None if on_ray else int(MEMORY_SHARE * available_memory(here))
        shards = [s for s in plan_shards(cfg, budget) if not all((*_group(s), seed) in done for seed in s.seeds)]
        plan = None if on_ray else plan_workers(cfg, here, shards, budget)
        if plan is not None:  # under Ray, the first worker to take a shard reports the environment it trains in
            writer.write_environment({**environment_facts(device, cfg.training.dtype), "torch_threads": plan.threads})
        # Under Ray, and in local workers, each worker draws its cell's problem; here only the test set is needed.
        problems = prepare_problems(cfg, here) if plan is not None and plan.workers == 1 else {}
        test = next(iter(problems.values()), None) or prepare_problem(cfg.cell(*cfg.cells[0]), here)
        writer.write_test_set(test.x_test.double().cpu().numpy(), test.y_test.double().cpu().numpy())
        where = f"{connect_ray(cfg.execution.address)} ({device})" if plan is None else device
        widths = len({s.width for s in shards})
        cells = len({s.cell for s in shards})
        grid = f" at {cells} data sizes × depths" if cfg.is_grid else ""
        how = "" if plan is None else f" {plan.describe()}"
        checkpoints = _take_up_checkpoints(writer, cfg, shards) if resume else {}
        line = f"on {where}: {widths} widths{grid} to train in {len(shards)} shards{how}"
        if resume:
            points = [(_shard_label(s, cfg), int(checkpoints[s]["step"]) if s in checkpoints else 0) for s in shards]
            writer.log_event("info", f"resumed {line}; {resume_points_text(points)}")
        else:
            writer.log_event("info", f"started {line}")
        if not on_ray and (notice := engine_notice(cfg, here)) is not None:
            writer.log_event("warning", notice)
        events = (
            run_on_ray(cfg, shards, stop, checkpoints)
            if plan is None
            else run_locally(cfg, shards, stop, checkpoints, plan, problems)
        )
        resumed_from = {shard: int(state["step"]) for shard, state in checkpoints.items()}
        failures = _record(writer, cfg, events, stop, resumed_from if resume else None)
        if failures:
            first = f"{_describe_shard(failures[0].shard, cfg)} failed: {failures[0].reason}"
            more = f"{len(failures)} shards failed, the first: " if len(failures) > 1 else ""
            writer.mark_ended("failed", f"{more}{first}; the shards that finished are kept")
            return "failed"
        status = "stopped" if stop.is_set() else "finished"
        writer.log_event("info", f"run {status}")
        writer.mark_ended(status)
        return status
    except (ConfigError, StoreError) as exc:
        writer.mark_ended("failed", str(exc))
        return "failed"
    except Exception as exc:
        traceback.print_exc()
        message = _describe_failure(exc)
        writer.discard_pending()  # rows that could not be written must not block the status update
        try:
            writer.log_event("error", message)
            writer.mark_ended("failed", message)
        except Exception:
            traceback.print_exc()
            try:  # the database cannot take a write: leave the reason in a small file readers look for
                writer.write_failure_note(message)
            except Exception:
                traceback.print_exc()  # nothing can be written; readers will see the runner is gone ('dead')
        return "failed"
    finally:
        heartbeat.halt.set()
        if heartbeat.is_alive():
            heartbeat.join()
        with contextlib.suppress(Exception):
            writer.close()


def _record(
    writer: RunWriter,
    cfg: Config,
    events: Generator[Event | ShardPlaced | ShardFailed | ShardRetried],
    stop: threading.Event,
    resumed_from: dict[Shard, int] | None,
) -> list[ShardFailed]:
    """Write the shards' events to the store as they come, from one shard at a time or many at once.

    Every write is keyed by (width, data size, depth, seed[, step]), so an event seen twice changes nothing; a
    shard retried from a checkpoint rewrites the rows past it with the same numbers. On a resume,
    ``resumed_from`` holds the step each checkpointed shard continues from (its :class:`Resumed` event says
    so); a shard without one says ``width 8: from step 0`` when it begins, so the log names every shard's start.

    A stop does not end the recording: the executor ends its stream once its shards have yielded their
    stopping checkpoints, which are written like timed ones (and said in the event log), for at most
    STOPPING_SECONDS after the stop.
    """
    steps = cfg.training.steps
    fingerprint = training_fingerprint(cfg)
    last_flush = time.monotonic()
    last_progress: dict[Shard, float] = {}
    before_last_tenth: dict[Shard, np.ndarray] = {}  # each shard's training loss before the rule's window
    failures: list[ShardFailed] = []
    placed = False
    stopping_until: float | None = None
    try:
        for event in events:
            now = time.monotonic()
            shard = event.shard
            if isinstance(event, ShardFailed):
                failures.append(event)
                writer.log_event("error", f"{_describe_shard(shard, cfg)} failed: {event.reason}")
                continue
            if isinstance(event, ShardRetried):
                writer.log_event("warning", f"{_describe_shard(shard, cfg)}: {event.reason}")
                continue
            group = _group(shard)
            if shard not in last_progress:
                from_step = (resumed_from or {}).get(shard, 0)
                writer.set_progress(group, shard.seeds[0], len(shard.seeds), from_step, steps)
                writer.take_up_shard(group, shard.seeds[0], len(shard.seeds), from_step)
                if resumed_from is not None and shard not in resumed_from:
                    writer.log_event("info", f"{_shard_label(shard, cfg)}: from step 0")
                last_progress[shard] = now
            if isinstance(event, ShardPlaced):
                if not placed:  # the first worker to take a shard describes the environment the run trains in
                    writer.write_environment(event.facts)
                    placed = True
                host = f"{event.host} ({event.facts['device']})"
                writer.log_event("info", f"{_describe_shard(shard, cfg)} training on {host}")
            if isinstance(event, Evaluated):
                writer.add_curve_points(group, shard.seeds, event.step, event.train_loss, event.test_loss)
                if event.step <= steps * (1 - CONVERGENCE_WINDOW):
                    before_last_tenth[shard] = event.train_loss
            if isinstance(event, Resumed):
                _record_resumption(writer, cfg, event, before_last_tenth)
            if isinstance(event, Checkpointed):
                writer.write_checkpoint(group, list(shard.seeds), event.state, fingerprint)
                last_flush = now
                if event.stopping:
                    writer.set_progress(group, shard.seeds[0], len(shard.seeds), event.step, steps)
                    writer.log_event("info", f"stopped: {_shard_label(shard, cfg)} saved at step {event.step:,}")
            if isinstance(event, Evaluated | Progressed) and now - last_progress[shard] >= PROGRESS_SECONDS:
                writer.set_progress(group, shard.seeds[0], len(shard.seeds), event.step, steps)
                last_progress[shard] = now
            if now - last_flush >= FLUSH_SECONDS:
                writer.flush()
                last_flush = now
            if isinstance(event, ShardFinished):
                writer.add_shard_result(
                    group,
                    list(shard.seeds),
                    parameter_count(cfg.target.input_dim, shard.width, shard.depth),
                    event.train_loss,
                    event.test_loss,
                    event.diverged_step,
                    event.wall_seconds,
                    event.outputs,
                    event.weights,
                )
                writer.drop_checkpoint(group, shard.seeds[0])
                writer.set_progress(group, shard.seeds[0], len(shard.seeds), steps, steps)
                writer.log_event(*_shard_summary(event, before_last_tenth.pop(shard, None), cfg))
            if stop.is_set():
                stopping_until = stopping_until or now + STOPPING_SECONDS
                if now > stopping_until:
                    break
    finally:
        events.close()
    return failures


def _record_resumption(
    writer: RunWriter, cfg: Config, event: Resumed, before_last_tenth: dict[Shard, np.ndarray]
) -> None:
    """Say where a shard took up its training again, and recover from the stored curves what the summary
    of its end needs from before that step."""
    shard, steps = event.shard, cfg.training.steps
    label = _shard_label(shard, cfg)
    if event.refused is not None:
        name = checkpoint_name(_group(shard), shard.seeds[0])
        writer.log_event(
            "warning", f"{label}: checkpoint arrays/{name} refused ({event.refused}); training from step 0"
        )
        writer.drop_checkpoint(_group(shard), shard.seeds[0])
        before_last_tenth.pop(shard, None)
    else:
        writer.log_event("info", f"{label}: from step {event.step:,}")
        earlier = writer.train_losses_before(
            _group(shard), list(shard.seeds), min(event.step, steps * (1 - CONVERGENCE_WINDOW))
        )
        if earlier is not None:
            before_last_tenth[shard] = earlier
    writer.set_progress(_group(shard), shard.seeds[0], len(shard.seeds), event.step, steps)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scaletui.runner", description=__doc__)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--resume", action="store_true", help="train only what the run does not have yet")
    args = parser.parse_args(argv)
    # Training yields the CPU to interactive work (the TUI, a shell) and takes all of it when nothing else wants it.
    os.nice(int(os.environ.get("SCALETUI_RUNNER_NICE", "10")))
    print(f"runner: {configure_process()}", flush=True)
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    # Past a file-size limit the kernel would kill us with SIGXFSZ; as an error we can record the failure.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        status = execute(args.run_dir, stop, resume=args.resume)
    except RunLocked as exc:
        print(f"error: {exc}", file=sys.stderr)
        return LOCKED_EXIT_CODE
    return {"finished": 0, "stopped": 130}.get(status, 1)


if __name__ == "__main__":
    sys.exit(main())
