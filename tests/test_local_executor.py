"""The local executor's worker processes: how many the runner picks, the same numbers as training in the
runner's process, a worker killed or raising, a stop, and resume after it."""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from scaletui import local_executor
from scaletui.engine import ShardFailed, ShardFinished, estimate_shard_bytes, plan_shards
from scaletui.local_executor import WorkerPlan, plan_workers, run_locally, shard_work
from scaletui.runner import create_run, execute, request_stop, start_runner
from scaletui.store import Run
from tests.conftest import assert_same_results, checkpointed_unfinished, report_reliability, smoke_config, wait_for

CPU = torch.device("cpu")
# Each shard trains for a second or more on one thread, so a signal or a kill lands while workers train.
LONG = (
    'training.dtype="float64"', "training.steps=8000", "training.eval_every=500", "model.widths=[4, 8, 16, 32, 64]",
    "execution.checkpoint_seconds=0.05",
)  # fmt: skip
TWO_WORKERS = "execution.workers=2"


def worker_pids(runner_pid: int) -> list[int]:
    """The runner's worker processes (multiprocessing's resource tracker is a child too, and not one)."""
    from scaletui.system import process_tree

    pids = []
    for pid in process_tree(runner_pid)[1:]:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline:
            pids.append(pid)
    return pids


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def messages(run_dir: Path) -> list[str]:
    return [message for _, _, _, message in Run(run_dir).events()]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """LONG trained in this process, one shard after another: what every worker run of it must equal."""
    run_dir = create_run(tmp_path_factory.mktemp("reference"), smoke_config(*LONG, "execution.workers=1"))
    assert execute(run_dir, threading.Event()) == "finished"
    assert "in the runner's process" in messages(run_dir)[0]
    return run_dir


# --- how many workers --------------------------------------------------------------------------------------


def cores(monkeypatch, count: int) -> None:
    monkeypatch.setattr(local_executor, "available_cores", lambda: count)


# 16 seeds of width 32 in 4 shards of equal work, long enough that workers would pay for their start.
EVEN = ("training.steps=400000", "seeds.count=16", "model.widths=[32]", "execution.seeds_per_shard=4")


def test_by_default_even_a_big_sweep_trains_in_the_runners_process_a_thread_per_core(monkeypatch):
    cores(monkeypatch, 4)
    assert plan_workers(smoke_config(*EVEN), CPU, plan_shards(smoke_config(*EVEN)), None) == WorkerPlan(1, 4)


def test_workers_share_out_the_cores_never_outnumber_the_shards_nor_what_memory_holds(monkeypatch):
    cores(monkeypatch, 4)
    cfg = smoke_config(*EVEN, TWO_WORKERS)
    shards = plan_shards(cfg)
    assert plan_workers(cfg, CPU, shards, None) == WorkerPlan(2, 2)
    assert plan_workers(smoke_config(*EVEN, "execution.workers=4"), CPU, shards, None) == WorkerPlan(4, 1)
    assert plan_workers(smoke_config(*EVEN, "execution.workers=8"), CPU, shards, None) == WorkerPlan(4, 1)
    many = smoke_config(*EVEN, "execution.workers=4")
    largest = estimate_shard_bytes(many.cell(*shards[0].cell), 32, 4)
    assert plan_workers(many, CPU, shards, 2 * largest + 1) == WorkerPlan(2, 2)
    assert plan_workers(many, CPU, shards, largest // 2) == WorkerPlan(1, 4)


def test_cuda_and_a_single_shard_train_in_the_runner_whatever_the_config_says(monkeypatch):
    cores(monkeypatch, 4)
    cfg = smoke_config(*EVEN, TWO_WORKERS)
    assert plan_workers(cfg, torch.device("cuda"), plan_shards(cfg), None).workers == 1
    one = smoke_config(*EVEN[:-1], TWO_WORKERS)
    assert len(plan_shards(one)) == 1 and plan_workers(one, CPU, plan_shards(one), None).workers == 1


def test_workers_take_the_largest_shards_first():
    cfg = smoke_config()
    shards = plan_shards(cfg)
    assert [s.width for s in sorted(shards, key=lambda s: shard_work(cfg, s), reverse=True)] == [16, 8, 4, 2]


# --- through worker processes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [('training.dtype="float64"',), ("model.hidden_layers=2", 'training.dtype="float64"')],
    ids=["fused-kernel", "general-path"],
)
def test_two_workers_give_the_numbers_of_one_process_bit_for_bit(overrides, runs_dir):
    runs = {}
    for workers in (1, 2):
        cfg = smoke_config(*overrides, "seeds.count=5", "training.steps=600", f"execution.workers={workers}")
        runs[workers] = create_run(runs_dir, cfg)
        assert execute(runs[workers], threading.Event()) == "finished"
    assert messages(runs[2])[0] == "started on cpu: 4 widths to train in 4 shards in 2 worker processes, 1 thread each"
    assert Run(runs[2]).meta["environment"]["torch_threads"] == 1
    assert_same_results(runs[1], runs[2])


def test_an_error_in_a_workers_training_fails_that_shard_alone():
    cfg = smoke_config()
    broken, good = plan_shards(cfg)[:2]
    garbage = {broken: {"step": np.array("not a step")}}  # the worker's train_shard raises taking it up
    events = list(run_locally(cfg, [broken, good], threading.Event(), garbage, WorkerPlan(2, 1), {}))
    [failed] = [e for e in events if isinstance(e, ShardFailed)]
    assert failed.shard == broken and failed.reason.startswith("TypeError: can't convert np.ndarray"), failed
    assert "\n" not in failed.reason
    [finished] = [e for e in events if isinstance(e, ShardFinished)]
    assert finished.shard == good


def test_a_killed_worker_fails_its_shard_with_a_reason_and_the_run_keeps_the_rest(reference, runs_dir):
    run_dir = create_run(runs_dir, smoke_config(*LONG, TWO_WORKERS))
    proc = start_runner(run_dir)
    # Both workers are training once the first checkpoint of an unfinished shard is in the store.
    wait_for(lambda: checkpointed_unfinished(run_dir), timeout=120)
    assert proc.poll() is None
    victim = wait_for(lambda: worker_pids(proc.pid))[0]
    os.kill(victim, signal.SIGKILL)
    assert proc.wait(timeout=120) == 1
    st = Run(run_dir).status()
    assert st.status == "failed"
    prefix, _, reason = st.error.partition(" failed: ")
    assert reason == "its worker process was killed by SIGKILL (out of memory, or killed by hand); " + (
        "the shards that finished are kept"
    ), st.error
    failed_width = int(prefix.removeprefix("width ").split(",")[0])
    assert prefix == f"width {failed_width}, seeds 0–3"
    kept = set(Run(run_dir).models().width.tolist())
    assert kept == {4, 8, 16, 32, 64} - {failed_width}  # a fresh worker trained the shards still to do

    assert start_runner(run_dir, resume=True).wait(timeout=120) == 0
    assert Run(run_dir).status().status == "finished"
    assert_same_results(reference, run_dir)
    report_reliability(
        "a local worker process killed (SIGKILL) mid-shard (execution.workers = 2)",
        "1 run, resumed",
        "run failed naming the shard and 'killed by SIGKILL'; a fresh worker trained the rest; resume trained only "
        "it, from its last checkpoint; the run equals one trained in the runner's process bit for bit",
        "the failed shard's steps since its last checkpoint",
    )


def test_sigterm_stops_the_workers_promptly_and_resume_finishes_with_the_same_numbers(reference, runs_dir):
    run_dir = create_run(runs_dir, smoke_config(*LONG, TWO_WORKERS))
    proc = start_runner(run_dir)
    wait_for(lambda: checkpointed_unfinished(run_dir), timeout=120)
    workers = wait_for(lambda: worker_pids(proc.pid))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 130
    assert not any(alive(pid) for pid in workers)
    run = Run(run_dir)
    assert run.status().status == "stopped"
    assert len(run.models()) < 20 and run.checkpoints()

    assert start_runner(run_dir, resume=True).wait(timeout=120) == 0
    assert run.status().status == "finished"
    assert any(m.startswith("resumed on cpu") and "in 2 worker processes" in m for m in messages(run_dir))
    assert any(": from step " in m for m in messages(run_dir))  # a shard continued from its checkpoint
    assert_same_results(reference, run_dir)
    report_reliability(
        "SIGTERM to a runner with 2 local worker processes",
        "1 run, resumed",
        "runner exited 130 within seconds, its workers gone, run 'stopped'; each shard in training saved at its "
        "step; resume continued from there and equals an uninterrupted run bit for bit",
        "0",
    )


def test_a_stop_saves_every_shard_the_workers_train_at_its_step(runs_dir):
    """With no timed checkpoint due for an hour, a stop still loses no step: each worker's shard is saved
    where it was, said in the event log, and the resume continues from there to the numbers of one process."""
    # Two shards of seconds each on one thread (LONG's last a fraction of a second here, less than the half
    # second between progress rows): both are seen training before either ends.
    cfg = smoke_config(*LONG, "model.widths=[128, 256]", "training.steps=16000", "execution.checkpoint_seconds=3600")
    reference = create_run(runs_dir, cfg)
    assert execute(reference, threading.Event()) == "finished"
    run_dir = create_run(runs_dir, replace(cfg, execution=replace(cfg.execution, workers=2)))
    proc = start_runner(run_dir)

    def both_training() -> bool:
        rows = Run(run_dir).progress() if (run_dir / "run.sqlite").exists() else []
        return sum(0 < r["step"] < r["steps"] for r in rows) == 2

    wait_for(both_training, timeout=120)
    assert request_stop(Run(run_dir))
    assert proc.wait(timeout=60) == 130
    run = Run(run_dir)
    saved = {(c["width"], c["step"]) for c in run.checkpoints()}
    in_training = {(r["width"], r["step"]) for r in run.progress() if 0 < r["step"] < r["steps"]}
    assert len(saved) == 2 and saved == in_training
    for width, step in saved:
        assert f"stopped: width {width} saved at step {step:,}" in messages(run_dir)

    assert start_runner(run_dir, resume=True).wait(timeout=120) == 0
    for width, step in saved:
        assert f"width {width}: from step {step:,}" in messages(run_dir)
    assert_same_results(reference, run_dir)


def test_the_workers_of_a_killed_runner_end_on_their_own(runs_dir):
    run_dir = create_run(runs_dir, smoke_config(*LONG, TWO_WORKERS))
    proc = start_runner(run_dir)
    wait_for(lambda: checkpointed_unfinished(run_dir), timeout=120)
    workers = wait_for(lambda: worker_pids(proc.pid))
    proc.kill()
    proc.wait(timeout=30)
    # Their next event finds the pipe closed: within one fused call (at most half a second) and a little.
    wait_for(lambda: not any(alive(pid) for pid in workers), timeout=10)
