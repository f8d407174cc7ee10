"""The run directory: round trips, damaged runs, run references."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
import time

import numpy as np
import pytest

from scaletui.config import load_config
from scaletui.present import duration, started
from scaletui.presets import resolve_preset
from scaletui.runner import create_run, execute, start_runner
from scaletui.store import (
    SCHEMA_VERSION,
    Run,
    RunWriter,
    StoreError,
    estimate_remaining,
    list_runs,
    new_run_id,
    resolve_run,
)
from tests.conftest import run_cli, smoke_config, wait_for


def make_run(runs_dir, name="smoke"):
    cfg = smoke_config(f'name="{name}"')
    writer = RunWriter.create(runs_dir, cfg)
    return writer, cfg


def test_a_written_run_reads_back_exactly(runs_dir):
    writer, cfg = make_run(runs_dir)
    writer.mark_running("cpu")
    writer.write_test_set(np.linspace(-2, 2, 5)[:, None], np.linspace(-2, 2, 5) ** 2)
    writer.add_curve_points(writer.group(4), [0, 1], 10, np.array([0.5, np.nan]), np.array([0.25, np.inf]))
    writer.flush()
    outputs = np.arange(10, dtype=float).reshape(2, 5)
    weights = {"W0": np.ones((2, 1, 4)) * np.array([1, 2])[:, None, None], "b0": np.zeros((2, 1, 4))}
    writer.add_shard_result(
        writer.group(4),
        [0, 1],
        13,
        np.array([0.1, np.nan]),
        np.array([0.2, np.nan]),
        np.array([-1, 7]),
        1.5,
        outputs,
        weights,
    )
    writer.mark_ended("finished")
    writer.close()

    run = Run(writer.dir)
    assert run.config == cfg
    assert run.meta["schema_version"] == SCHEMA_VERSION
    assert run.status().status == "finished"
    models = run.models()
    assert models.width.tolist() == [4, 4] and models.seed.tolist() == [0, 1]
    assert models.test_loss[0] == 0.2 and np.isnan(models.test_loss[1])
    assert models.diverged.tolist() == [False, True]
    curves = run.curves()
    assert curves.step.tolist() == [10, 10]
    assert curves.train_loss[0] == 0.5 and np.isnan(curves.test_loss[1])
    seeds, out = run.outputs(4)
    assert seeds.tolist() == [0, 1] and np.array_equal(out, outputs)
    assert run.weights(4, 1)["W0"].tolist() == [[2.0, 2.0, 2.0, 2.0]]
    x, y = run.test_set()
    assert np.array_equal(y, x[:, 0] ** 2)


def test_a_run_of_schema_1_reads_as_trained_without_teacher_biases(runs_dir):
    # Schema 1 had no target.teacher_bias_std: its teachers had zero biases, whatever today's default is.
    cfg = load_config(resolve_preset("teacher-d2"))
    assert cfg.target.teacher_bias_std > 0
    writer = RunWriter.create(runs_dir, cfg)
    writer.close()
    config_path, meta_path = writer.dir / "config.toml", writer.dir / "meta.json"
    text = config_path.read_text()
    assert "teacher_bias_std" in text  # a new run states it
    assert Run(writer.dir).config == cfg

    config_path.write_text("".join(line for line in text.splitlines(True) if "teacher_bias_std" not in line))
    meta_path.write_text(json.dumps({**json.loads(meta_path.read_text()), "schema_version": 1}))
    old = Run(writer.dir).config
    assert old.target.teacher_bias_std == 0.0
    assert old == dataclasses.replace(cfg, target=dataclasses.replace(cfg.target, teacher_bias_std=0.0))

    # The same file under the current schema means the current default: the version decides, not the file.
    meta_path.write_text(json.dumps({**json.loads(meta_path.read_text()), "schema_version": SCHEMA_VERSION}))
    assert Run(writer.dir).config.target.teacher_bias_std == cfg.target.teacher_bias_std


def test_run_ids_are_safe_directory_names():
    run_id = new_run_id("../../etc/passwd Weird Name!")
    assert "/" not in run_id and ".." not in run_id
    assert run_id.split("-", 2)[2].startswith("etc-passwd-weird-name")


def test_damaged_runs_are_listed_not_raised(runs_dir):
    good, _ = make_run(runs_dir, "good")
    good.close()
    bad, _ = make_run(runs_dir, "bad")
    bad.close()
    (bad.dir / "meta.json").write_text("{ not json")
    future, _ = make_run(runs_dir, "future")
    future.close()
    meta = json.loads((future.dir / "meta.json").read_text())
    (future.dir / "meta.json").write_text(json.dumps({**meta, "schema_version": SCHEMA_VERSION + 1}))
    listing = {item.id: item for item in list_runs(runs_dir)}
    assert listing[good.dir.name].error is None
    assert "meta.json" in listing[bad.dir.name].error
    assert "newer" in listing[future.dir.name].error
    with pytest.raises(StoreError, match="newer"):
        Run(future.dir)


def test_run_references(runs_dir):
    first, _ = make_run(runs_dir, "alpha")
    second, _ = make_run(runs_dir, "beta")
    for w in (first, second):
        w.close()
    assert resolve_run(runs_dir, first.dir.name) == first.dir
    assert resolve_run(runs_dir, str(second.dir)) == second.dir
    assert resolve_run(runs_dir, "latest") == second.dir
    unique_prefix = second.dir.name[: second.dir.name.index("beta") + 2]
    assert resolve_run(runs_dir, unique_prefix) == second.dir
    with pytest.raises(StoreError, match="matches 2 runs"):
        resolve_run(runs_dir, first.dir.name[:8])
    for hostile in ("../etc", "/etc/passwd", "a/../../b"):
        with pytest.raises(StoreError):
            resolve_run(runs_dir, hostile)
    with pytest.raises(StoreError, match="no run"):
        resolve_run(runs_dir, "nonexistent")


def test_a_reader_never_meets_a_half_made_run(runs_dir):
    """Runs appear whole: a listing taken while runs are being created shows none of them damaged."""
    seen_damaged: list[str] = []
    done = threading.Event()

    def keep_listing() -> None:
        while not done.is_set():
            seen_damaged.extend(item.error for item in list_runs(runs_dir) if item.error)

    reader = threading.Thread(target=keep_listing)
    reader.start()
    try:
        for i in range(20):
            make_run(runs_dir, f"r{i}")[0].close()
    finally:
        done.set()
        reader.join()
    assert seen_damaged == []
    assert len(list_runs(runs_dir)) == 20


# --- a run's life over several runner sessions: its start, its duration, the ETA ---------------------------


def _stopped_then_resumed(runs_dir):
    """A real run stopped before its first shard (a stop asked for at once), then, a measured gap later,
    resumed to the end: its status after each session."""
    run_dir = create_run(runs_dir, smoke_config("training.steps=60"))
    stop = threading.Event()
    stop.set()
    assert execute(run_dir, stop) == "stopped"
    first = Run(run_dir).status()
    wait_for(lambda: time.time() > first.finished + 1.5, timeout=5)  # the run waits, stopped, 1.5 s
    assert execute(run_dir, threading.Event(), resume=True) == "finished"
    return run_dir, first, Run(run_dir).status()


def test_a_resume_keeps_the_first_start_and_adds_up_the_sessions(runs_dir):
    run_dir, first, last = _stopped_then_resumed(runs_dir)
    assert last.started == first.started  # the run's first start, not the resume's
    assert last.session_started > first.finished + 1.5
    assert last.ran == pytest.approx(first.finished - first.started)
    session = last.finished - last.session_started
    assert last.duration == pytest.approx(first.duration + session)
    assert last.duration < last.finished - last.started - 1.5  # the time it waited stopped is not counted
    listed = run_cli("ls", "--runs-dir", str(runs_dir))
    assert listed.returncode == 0, listed.stderr
    [line] = [line for line in listed.stdout.splitlines() if run_dir.name in line]
    assert started(first.started) in line and duration(last.duration) in line


def test_a_run_written_before_sessions_were_kept_reads_and_resumes_as_one_session_then_adds_up(runs_dir):
    """An older run's table has no session columns: a reader takes its one recorded session for the whole;
    the runner that resumes it adds the columns and counts that session as the first."""
    run_dir = create_run(runs_dir, smoke_config("training.steps=60"))
    stop = threading.Event()
    stop.set()
    assert execute(run_dir, stop) == "stopped"
    with sqlite3.connect(run_dir / "run.sqlite") as db:
        db.execute("ALTER TABLE run DROP COLUMN session_started")
        db.execute("ALTER TABLE run DROP COLUMN ran")
        db.execute("DROP TABLE session_shards")
    old = Run(run_dir).status()
    assert old.status == "stopped" and old.session_started is None and old.ran == 0.0
    assert old.duration == pytest.approx(old.finished - old.started)
    assert old.duration > 0 and Run(run_dir).progress() == [] and Run(run_dir).remaining_seconds() is None
    assert execute(run_dir, threading.Event(), resume=True) == "finished"
    new = Run(run_dir).status()
    assert new.started == old.started and new.ran == pytest.approx(old.duration)
    assert new.duration == pytest.approx(old.duration + new.finished - new.session_started)
    assert {r["from_step"] for r in Run(run_dir).progress()} == {0}


ETA_CONFIG = ("model.widths=[2, 8, 32]", "seeds.count=4", "training.steps=1000")  # 256 points per step


def _row(width: int, step: int, updated: float, from_step: int | None = None, taken_up: float | None = None):
    cell = {"width": width, "n_train": 256, "depth": 1, "first_seed": 0, "models": 4}
    return {**cell, "step": step, "steps": 1000, "started": taken_up, "updated": updated, "from_step": from_step,
            "taken_up": taken_up}  # fmt: skip


def test_the_eta_prices_the_work_left_at_each_widths_measured_or_fitted_cost():
    """Width 2 took 16 s for its 4 × 1000 model-steps (4 ms each), width 8 10 s for 1000 (10 ms); width 32,
    not begun, costs what the line through those two says at its multiply-adds per model-step, 34 ms. The
    session has run 36 s, 26 of them training: the 30 s left of width 8 and the 136 s of width 32 take
    166 × 36 / 26 s."""
    cfg = smoke_config(*ETA_CONFIG)
    rows = [_row(2, 1000, 116.0, 0, 100.0), _row(8, 250, 126.0, 0, 116.0)]
    assert estimate_remaining(cfg, rows, 90.0, 126.0) == pytest.approx(166 * 36 / 26)
    # Before anything trained in this session there is no rate, and no estimate.
    assert estimate_remaining(cfg, [_row(2, 0, 100.0, 0, 100.0)], 90.0, 100.0) is None
    assert estimate_remaining(cfg, [], 90.0, 100.0) is None


def test_a_resumed_runs_eta_counts_only_the_work_of_this_session():
    """Width 2 finished in an earlier session; width 8 was resumed at step 500 and trained 250 steps in the
    10 s since (10 ms a model-step): its 1000 model-steps left take 10 s, and width 32's 4000 at the cost
    proportional to width 8's (the one size measured), 97/25 × 10 ms, 155.2 s."""
    cfg = smoke_config(*ETA_CONFIG)
    rows = [_row(2, 1000, 50.0), _row(8, 750, 210.0, 500, 200.0)]
    assert estimate_remaining(cfg, rows, 200.0, 210.0) == pytest.approx(10.0 + 4000 * 0.01 * 97 / 25)
    # Counted from step 0, the same 10 s would have been three times the work: a third of the estimate.
    assert estimate_remaining(cfg, [rows[0], {**rows[1], "from_step": 0}], 200.0, 210.0) < 60


def test_a_live_run_has_an_eta_once_its_session_has_trained_and_none_once_it_ends(runs_dir):
    """The real runner records each shard it takes up; a reader of the live run gets an estimate."""
    run_dir = create_run(runs_dir, smoke_config("training.steps=16000", "model.widths=[2, 64]"))
    proc = start_runner(run_dir)
    try:
        eta = wait_for(lambda: _live_eta(run_dir), timeout=120)
        assert 0 < eta < 600
    finally:
        proc.wait(timeout=120)
    assert Run(run_dir).status().status == "finished" and Run(run_dir).remaining_seconds() is None


def _live_eta(run_dir):
    try:
        return Run(run_dir).remaining_seconds()
    except StoreError:
        return None
