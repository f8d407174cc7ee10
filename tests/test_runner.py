"""The runner process: what it stores, graceful stops, kills, resume, concurrent readers."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import torch

from scaletui.analysis import FitOptions, analyze_run
from scaletui.engine import Shard, ShardFinished, prepare_problem, train_shard
from scaletui.runner import create_run, execute, start_runner
from scaletui.store import Run, StoreError
from tests.conftest import smoke_config, wait_for

# Long enough that a signal lands mid-run, short enough for CI: a few seconds of training.
# Seconds long even on the fused kernel (about 4 s here), so a signal sent after the first width lands mid-run.
SLOW = ("training.steps=16000", "training.eval_every=400", "seeds.count=8", "model.widths=[2,4,8,16,32]")


def test_a_run_stores_what_the_engine_computes(runs_dir):
    cfg = smoke_config()
    run_dir = create_run(runs_dir, cfg)
    assert execute(run_dir, threading.Event()) == "finished"
    run = Run(run_dir)
    st = run.status()
    assert st.status == "finished" and st.pid == os.getpid() and st.duration > 0
    models = run.models()
    assert len(models) == len(cfg.model.widths) * cfg.seeds.count
    assert set(models.n_params.tolist()) == {3 * w + 1 for w in cfg.model.widths}
    problem = prepare_problem(cfg, torch.device("cpu"))
    direct = list(train_shard(problem, Shard(8, (0, 1, 2, 3))))[-1]
    assert isinstance(direct, ShardFinished)
    np.testing.assert_allclose(models.test_loss[models.width == 8], direct.test_loss, rtol=1e-6)
    _seeds, outputs = run.outputs(8)
    np.testing.assert_allclose(outputs, direct.outputs, rtol=1e-6)
    curves = run.curves(width=8)
    assert sorted(set(curves.step.tolist())) == list(range(0, 301, 50))
    env = run.meta["environment"]
    assert env["torch"] == torch.__version__ and env["device"] == "cpu" and env["dtype"] == "float32"
    messages = [m for _, _, _, m in run.events()]
    assert messages[0].startswith("started on cpu") and messages[-1] == "run finished"
    assert sum("finished: median test loss" in m for m in messages) == len(cfg.model.widths)


def _started(run_dir, models: int = 1):
    """The runner has trained at least this many models, or has begun writing curves when models=0."""
    try:
        run = Run(run_dir)
        return len(run.models()) >= models and len(run.curves().step) > 0
    except StoreError:
        return False


def test_sigterm_stops_gracefully_and_resume_reproduces_an_uninterrupted_run(runs_dir):
    cfg = smoke_config(*SLOW)
    run_dir = create_run(runs_dir, cfg)
    proc = start_runner(run_dir)
    wait_for(lambda: _started(run_dir, models=8))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 130
    run = Run(run_dir)
    assert run.status().status == "stopped"
    kept = run.models()
    assert 8 <= len(kept) < 40

    resumed = start_runner(run_dir, resume=True)
    assert resumed.wait(timeout=120) == 0
    assert run.status().status == "finished"
    final = run.models()
    assert len(final) == 40
    # Models finished before the stop were not retrained: their rows are unchanged.
    done_before = set(zip(kept.width.tolist(), kept.seed.tolist(), strict=True))
    for w, s, loss, wall in zip(final.width, final.seed, final.test_loss, final.wall_seconds, strict=True):
        if (w, s) in done_before:
            i = np.nonzero((kept.width == w) & (kept.seed == s))[0][0]
            assert kept.test_loss[i] == loss and kept.wall_seconds[i] == wall

    reference_dir = create_run(runs_dir, cfg)
    assert execute(reference_dir, threading.Event()) == "finished"
    reference = Run(reference_dir).models()
    np.testing.assert_allclose(final.test_loss, reference.test_loss, rtol=1e-6)


def test_sigkill_leaves_a_readable_run_reported_dead(runs_dir):
    run_dir = create_run(runs_dir, smoke_config(*SLOW))
    proc = start_runner(run_dir)
    wait_for(lambda: _started(run_dir, models=0))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    run = Run(run_dir)
    st = run.status()
    assert st.status == "dead" and st.finished is None
    assert len(run.curves().step) > 0
    models = run.models()
    for w in set(models.width.tolist()):
        seeds, outputs = run.outputs(w)
        assert outputs.shape[0] == len(seeds)


def test_readers_see_a_consistent_growing_run_while_it_is_written(runs_dir):
    run_dir = create_run(runs_dir, smoke_config(*SLOW))
    proc = start_runner(run_dir)
    seen_models = seen_curves = reads = 0
    statuses = set()
    while proc.poll() is None:
        run = Run(run_dir)
        statuses.add(run.status().status)
        models, curves = run.models(), run.curves()
        assert len(models) >= seen_models and len(curves.step) >= seen_curves
        for w in set(models.width.tolist()):
            seeds, outputs = run.outputs(w)
            assert len(seeds) == int((models.width == w).sum()) and outputs.shape[0] == len(seeds)
        seen_models, seen_curves = len(models), len(curves.step)
        reads += 1
        time.sleep(0.02)  # pacing only: leave the runner some CPU on a 2-core machine
    assert proc.returncode == 0
    assert reads > 10
    assert "running" in statuses
    assert len(Run(run_dir).models()) == 40


def test_the_event_log_names_the_models_still_falling_as_the_analysis_counts_them(tmp_path):
    cfg = smoke_config(
        'training.optimizer="lm"', 'training.dtype="float64"', "training.steps=40", "training.eval_every=2"
    )
    run_dir = create_run(tmp_path / "runs", cfg)
    assert execute(run_dir, threading.Event()) == "finished"
    run = Run(run_dir)
    counted = {s.width: s.unconverged for s in analyze_run(run, FitOptions(resamples=0), with_outputs=False).widths}
    assert sum(counted.values()) > 0  # 40 Levenberg–Marquardt steps leave most models still improving
    for width, unconverged in counted.items():
        [line] = [m for _, _, _, m in run.events() if m.startswith(f"width {width} finished")]
        assert (f"{unconverged} still falling at the end" in line) == (unconverged > 0), line
