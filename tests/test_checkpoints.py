"""Checkpoints inside a shard: the engine's saved state, the runner's files and rows, resume after a kill,
refused checkpoints, readers, the memory planner."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import threading
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from scaletui.cli import app
from scaletui.config import training_fingerprint
from scaletui.engine import (
    Checkpointed,
    Evaluated,
    Resumed,
    Shard,
    ShardFinished,
    estimate_shard_bytes,
    init_parameters,
    plan_shards,
    prepare_problem,
    train_shard,
)
from scaletui.present import resume_points_text
from scaletui.runner import create_run, execute, request_stop, start_runner
from scaletui.store import SCHEMA_VERSION, Run, RunWriter, StoreError, checkpoint_name
from tests.conftest import assert_same_results, kill_after_a_checkpoint, smoke_config, wait_for

CPU = torch.device("cpu")
OPTIMISERS = {
    "adam-full-batch": (),
    "sgd-momentum-minibatch": ('training.optimizer="sgd"', "training.momentum=0.9", "training.batch_size=64"),
    # batches of 2048 make a chunk of the stream 32 steps long, so a resumed stream draws new chunks too
    "adam-fresh-noisy": ("data.fresh=true", "training.batch_size=2048", "data.noise=0.1"),
    "lm-parameter-space": ('training.optimizer="lm"',),  # 1000 points, at most 49 parameters: a P×P system
    "lm-sample-space": ('training.optimizer="lm"', "data.n_train=40"),  # width 16 has 49 > 40: the n×n system
}
EVERY_STEP = "execution.checkpoint_seconds=1e-9"  # due at every step boundary


def engine_config(*overrides: str):
    return smoke_config('training.dtype="float64"', "training.steps=60", "training.eval_every=7", *overrides)


def assert_same_finish(actual: ShardFinished, expected: ShardFinished) -> None:
    for name in ("train_loss", "test_loss", "diverged_step", "outputs"):
        np.testing.assert_array_equal(getattr(actual, name), getattr(expected, name), err_msg=name)
    assert actual.weights.keys() == expected.weights.keys()
    for name, value in expected.weights.items():
        np.testing.assert_array_equal(actual.weights[name], value, err_msg=name)


@pytest.mark.parametrize("overrides", OPTIMISERS.values(), ids=OPTIMISERS.keys())
def test_a_shard_continued_from_any_checkpoint_ends_bit_for_bit_as_an_uninterrupted_one(overrides):
    cfg = engine_config(EVERY_STEP, *overrides)
    problem = prepare_problem(cfg, CPU)
    shard = Shard(16, (0, 1, 2))
    poisoned = init_parameters(cfg, 16, shard.seeds)
    poisoned[2][1] = 1e300  # model 1 diverges at step 0: its frozen state must survive the checkpoint too
    events = list(train_shard(problem, shard, initial=poisoned))
    uninterrupted = events[-1]
    assert isinstance(uninterrupted, ShardFinished) and uninterrupted.diverged_step.tolist() == [-1, 0, -1]
    checkpoints = [e for e in events if isinstance(e, Checkpointed)]
    assert [c.step for c in checkpoints] == list(range(1, 60))  # every boundary but the last
    for saved in checkpoints[5], checkpoints[39], checkpoints[-1]:  # mid-chunk, between evaluations, last
        assert all(isinstance(v, np.ndarray) for v in saved.state.values())  # readers need no torch
        resumed = list(train_shard(problem, shard, resume=saved.state))
        assert resumed[0] == Resumed(shard, saved.step)
        later = {e.step: e for e in events if isinstance(e, Evaluated) and e.step > saved.step}
        again = {e.step: e for e in resumed if isinstance(e, Evaluated)}
        assert again.keys() == later.keys()
        for step, evaluation in later.items():
            np.testing.assert_array_equal(again[step].train_loss, evaluation.train_loss)
            np.testing.assert_array_equal(again[step].test_loss, evaluation.test_loss)
        assert_same_finish(resumed[-1], uninterrupted)


def test_a_stop_yields_the_state_at_the_next_boundary_and_ends_the_shard_there():
    """The flag is looked at after each call of the trainer: set while the evaluation at step 21 is handled,
    the shard ends at step 21 with its state marked ``stopping``, which continues to the uninterrupted end."""
    cfg = engine_config("execution.checkpoint_seconds=0")
    problem = prepare_problem(cfg, CPU)
    shard = Shard(4, (0, 1))
    uninterrupted = list(train_shard(problem, shard))[-1]
    stop = threading.Event()
    events = []
    for event in train_shard(problem, shard, progress_every=1, stop=stop):
        events.append(event)
        if isinstance(event, Evaluated) and event.step == 21:
            stop.set()
    *_, saved = events
    assert isinstance(saved, Checkpointed) and saved.stopping and saved.step == 21
    assert not any(isinstance(e, ShardFinished) for e in events)
    assert_same_finish(list(train_shard(problem, shard, resume=saved.state))[-1], uninterrupted)


def test_without_checkpoint_seconds_no_state_is_taken():
    events = list(train_shard(prepare_problem(engine_config("execution.checkpoint_seconds=0"), CPU), Shard(4, (0,))))
    assert not any(isinstance(e, Checkpointed) for e in events)


def test_a_state_that_does_not_fit_the_shard_is_refused_by_name_and_the_shard_starts_over():
    cfg = engine_config(EVERY_STEP)
    problem = prepare_problem(cfg, CPU)
    shard = Shard(4, (0, 1))
    events = list(train_shard(problem, shard))
    state = next(e for e in events if isinstance(e, Checkpointed) and e.step == 30).state
    wrong_width = dict(state, params=np.zeros(state["params"].size + 3))
    resumed = list(train_shard(problem, shard, resume=wrong_width))
    assert resumed[0].step == 0 and "'params' is float64 (29,), the shard needs float64 (26,)" in resumed[0].refused
    assert resumed[1].step == 0  # then the first evaluation of a fresh start
    assert_same_finish(resumed[-1], events[-1])
    past_the_end = next(train_shard(problem, shard, resume=dict(state, step=np.array(60))))
    assert past_the_end.refused == "its step 60 is not one of this shard's 0–59"


# --- through the runner and the store ---------------------------------------------------------------------

# One width, long enough on a fast machine for several checkpoints to be caught (0.01 s apart) before it ends.
RUN = ('training.dtype="float64"', "training.steps=1000", "training.eval_every=50", "seeds.count=2", "model.widths=[8]")
SMALL_CHECKPOINTS = "execution.checkpoint_seconds=0.01"
# Due within the first few steps of a 400-step shard: the fused kernel trains one in about 10 ms.
QUICK_CHECKPOINTS = "execution.checkpoint_seconds=0.001"
# The fused kernel trains RUN's width 8 in milliseconds, before a checkpoint of an unfinished shard can be
# caught: these runs are wide and long enough to last seconds (2–4 s here), with checkpoints every 10 ms.
LASTS_SECONDS = ("model.widths=[512]", "training.steps=16000")
RUNNER_OPTIMISERS = {  # Adam on the full batch is killed many times over in tests/test_reliability.py
    "sgd-momentum-minibatch": (*OPTIMISERS["sgd-momentum-minibatch"], *LASTS_SECONDS),
    "adam-fresh-noisy": ("data.fresh=true", "training.batch_size=32", "data.noise=0.1", *LASTS_SECONDS),
    "lm": ('training.optimizer="lm"', "training.steps=400"),
}


def uninterrupted(runs_dir: Path, cfg) -> Path:
    """The config run to the end without checkpoints: saving them must not change a number either."""
    run_dir = create_run(runs_dir, replace(cfg, execution=replace(cfg.execution, checkpoint_seconds=0.0)))
    assert execute(run_dir, threading.Event()) == "finished"
    return run_dir


def event_messages(run_dir: Path) -> list[str]:
    return [message for _, _, _, message in Run(run_dir).events()]


@pytest.mark.parametrize("overrides", RUNNER_OPTIMISERS.values(), ids=RUNNER_OPTIMISERS.keys())
def test_a_runner_killed_mid_width_resumes_from_its_checkpoint_bit_for_bit(tmp_path, overrides):
    cfg = smoke_config(*RUN, SMALL_CHECKPOINTS, *overrides)
    reference = uninterrupted(tmp_path / "reference", cfg)
    run_dir = create_run(tmp_path / "runs", cfg)
    caught = kill_after_a_checkpoint(start_runner(run_dir), run_dir, past=100)  # past two evaluations
    width, step = caught["width"], caught["step"]
    assert (run_dir / "arrays" / checkpoint_name(Run(run_dir).group(width), 0)).is_file()
    stored = Run(run_dir).curves(width=width)
    assert stored.step.size and set(np.unique(stored.step[stored.step <= step])) == set(range(0, step + 1, 50))

    assert execute(run_dir, threading.Event(), resume=True) == "finished"
    assert f"width {width}: from step {step:,}" in event_messages(run_dir)
    assert_same_results(reference, run_dir)
    assert Run(run_dir).checkpoints() == [] and not list((run_dir / "arrays").glob("*checkpoint*"))


def _mid_shard(run_dir: Path, width: int) -> dict | None:
    """The progress row of the width's first shard while it is past its first evaluation and unfinished."""
    try:
        rows = Run(run_dir).progress()
    except StoreError:
        return None
    return next((r for r in rows if r["width"] == width and 50 < r["step"] < r["steps"]), None)


def test_a_stop_asked_for_saves_each_shard_in_training_at_its_step_and_the_resume_goes_on_from_there(tmp_path):
    """request_stop (the TUI's ctrl+t, the CLI's Ctrl-C) with no timed checkpoint due for an hour: the shard in
    training is saved at the step it reached, the shard not yet begun starts over, and the resumed run ends
    bit for bit as one never stopped."""
    cfg = smoke_config(
        *RUN,
        *LASTS_SECONDS,
        "model.widths=[8, 512]",
        "execution.seeds_per_shard=1",
        "execution.checkpoint_seconds=3600",
    )
    reference = uninterrupted(tmp_path / "reference", cfg)
    run_dir = create_run(tmp_path / "runs", cfg)
    proc = start_runner(run_dir)
    wait_for(lambda: _mid_shard(run_dir, 512) and Run(run_dir).status().status == "running", timeout=120)
    assert request_stop(Run(run_dir))
    assert proc.wait(timeout=60) == 130
    run = Run(run_dir)
    assert run.status().status == "stopped"
    [saved] = run.checkpoints()
    [at_stop] = [r for r in run.progress() if (r["width"], r["first_seed"]) == (512, 0)]
    assert (saved["width"], saved["first_seed"]) == (512, 0)
    assert 50 < saved["step"] == at_stop["step"] < cfg.training.steps
    assert f"stopped: width 512, seed 0 saved at step {saved['step']:,}" in event_messages(run_dir)
    # What the explorer's resume toast says: which shard goes on from where, which starts over.
    points = f"width 512, seed 0 from step {saved['step']:,}; width 512, seed 1 from step 0"
    assert resume_points_text(run.resume_points()) == points

    assert execute(run_dir, threading.Event(), resume=True) == "finished"
    messages = event_messages(run_dir)
    [resumed] = [m for m in messages if m.startswith("resumed on cpu")]
    assert resumed.endswith(f"; {points}")
    assert f"width 512, seed 0: from step {saved['step']:,}" in messages
    assert "width 512, seed 1: from step 0" in messages
    # The resumed session took the shard up where the stop left it: the ETA counts only the steps past it.
    taken = {r["first_seed"]: r["from_step"] for r in Run(run_dir).progress() if r["width"] == 512}
    assert taken == {0: saved["step"], 1: 0}
    assert_same_results(reference, run_dir)


@pytest.fixture(scope="module")
def stopped_with_a_checkpoint(tmp_path_factory):
    """An uninterrupted run, and the same config stopped (gracefully, in this process) by its first checkpoint."""
    cfg = smoke_config(*RUN, "training.steps=400", QUICK_CHECKPOINTS)
    base = tmp_path_factory.mktemp("checkpointed")
    reference = uninterrupted(base / "reference", cfg)
    run_dir = create_run(base / "runs", cfg)
    stop = threading.Event()
    write = RunWriter.write_checkpoint

    def write_then_stop(writer, *args) -> None:
        write(writer, *args)
        stop.set()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(RunWriter, "write_checkpoint", write_then_stop)
        assert execute(run_dir, stop) == "stopped"
    assert Run(run_dir).checkpoints() and not len(Run(run_dir).models())
    return reference, run_dir


def test_shards_split_by_seeds_have_checkpoints_of_their_own(tmp_path):
    cfg = smoke_config(*RUN, "training.steps=400", QUICK_CHECKPOINTS, "execution.seeds_per_shard=1")
    reference = uninterrupted(tmp_path / "reference", cfg)
    run_dir = create_run(tmp_path / "runs", cfg)
    stop = threading.Event()
    write = RunWriter.write_checkpoint

    def write_then_stop(writer, width, seeds, *args) -> None:  # seed 0's shard trains first, then seed 1's
        write(writer, width, seeds, *args)
        if seeds == [1]:
            stop.set()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(RunWriter, "write_checkpoint", write_then_stop)
        assert execute(run_dir, stop) == "stopped"
    [saved] = Run(run_dir).checkpoints()
    assert (saved["width"], saved["first_seed"], saved["models"]) == (8, 1, 1)
    assert (run_dir / "arrays" / checkpoint_name(Run(run_dir).group(8), 1)).is_file()
    assert execute(run_dir, threading.Event(), resume=True) == "finished"
    assert f"width 8, seed 1: from step {saved['step']:,}" in event_messages(run_dir)
    assert_same_results(reference, run_dir)


def _rewrite(path: Path, **changes) -> None:
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    np.savez(path, **{**arrays, **changes})


def _damage(path: Path, kind: str) -> None:
    match kind:
        case "truncated":
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        case "garbage":
            path.write_bytes(os.urandom(path.stat().st_size))
        case "flipped-bytes":  # the zip still opens; a member's CRC no longer matches
            with zipfile.ZipFile(path) as archive:  # the weights' numbers, wherever the layout puts them
                member = archive.getinfo("state/params.npy")
            start = member.header_offset + 30 + len(member.filename) + member.compress_size // 2
            data = bytearray(path.read_bytes())
            data[start : start + 8] = bytes(b ^ 0xFF for b in data[start : start + 8])
            path.write_bytes(bytes(data))
        case "another-config":
            other = smoke_config(*RUN, "training.steps=400", "training.lr=0.02")
            _rewrite(path, fingerprint=np.array(training_fingerprint(other)))
        case "another-schema-version":
            _rewrite(path, schema_version=np.array(SCHEMA_VERSION + 1))
        case "another-shard":
            _rewrite(path, seeds=np.array([5, 6]))
        case "unusable-state":
            _rewrite(path, **{"state/moment1": np.zeros(3)})


REFUSALS = {
    "truncated": "is damaged (",
    "garbage": "is damaged (",
    "flipped-bytes": "is damaged (",
    "another-config": "is from another config",
    "another-schema-version": f"is from schema version {SCHEMA_VERSION + 1}, not {SCHEMA_VERSION}",
    "another-shard": "holds width 8, seeds 5–6, not this shard's seeds 0–1",
    "unusable-state": "refused ('moment1' is float64 (3,), the shard needs float64 (50,))",
}


@pytest.mark.parametrize("kind", REFUSALS)
def test_a_checkpoint_that_must_not_be_continued_is_refused_by_name_and_the_shard_starts_over(
    tmp_path, stopped_with_a_checkpoint, kind
):
    reference, stopped = stopped_with_a_checkpoint
    run_dir = tmp_path / stopped.name
    shutil.copytree(stopped, run_dir)
    name = checkpoint_name(Run(run_dir).group(8), 0)
    _damage(run_dir / "arrays" / name, kind)
    assert execute(run_dir, threading.Event(), resume=True) == "finished"
    messages = event_messages(run_dir)
    [refusal] = [m for m in messages if "refused" in m or "arrays/" in m]
    assert refusal.startswith(f"width 8: checkpoint arrays/{name} ") and REFUSALS[kind] in refusal
    assert refusal.endswith("training from step 0")
    assert not any(": from step" in m and not m.endswith(": from step 0") for m in messages)  # none continued
    assert_same_results(reference, run_dir)
    assert Run(run_dir).checkpoints() == [] and not (run_dir / "arrays" / name).exists()


def test_readers_show_the_checkpointed_step_and_the_rows_agree_with_it(stopped_with_a_checkpoint):
    _, run_dir = stopped_with_a_checkpoint
    run = Run(run_dir)
    [row] = run.checkpoints()
    with np.load(run_dir / "arrays" / checkpoint_name(Run(run_dir).group(8), 0)) as saved:
        assert row["step"] == int(saved["state/step"]) > 0 and saved["seeds"].tolist() == [0, 1]
    shown = CliRunner().invoke(app, ["show", str(run_dir), "--no-plots"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert f"checkpoints: width 8 at step {row['step']:,}" in shown.output


def test_a_resume_keeps_the_curve_rows_up_to_each_checkpoint_and_no_others(runs_dir):
    writer = RunWriter.create(runs_dir, smoke_config())
    for width, seeds in ((2, [0, 1]), (4, [0, 1]), (8, [0, 1])):
        for step in range(0, 100, 10):
            writer.add_curve_points(writer.group(width), seeds, step, np.ones(2), np.ones(2))
    writer.add_shard_result(writer.group(2), [0, 1], 7, *np.ones((2, 2)), np.array([-1, -1]), 1.0, np.ones((2, 5)), {})
    (writer.dir / "arrays" / ".w000004_s00000.checkpoint.npz.123.tmp").write_bytes(b"half")  # a kill mid-write
    (writer.dir / "arrays" / checkpoint_name(writer.group(8), 0)).write_bytes(b"not taken up")
    writer.forget_unfinished({(writer.group(4), 0, 2): 40})
    writer.close()
    curves = Run(writer.dir).curves()
    kept = {
        (w, s): sorted(curves.step[(curves.width == w) & (curves.seed == s)].tolist())
        for w in (2, 4, 8)
        for s in (0, 1)
    }
    assert kept[2, 0] == kept[2, 1] == list(range(0, 100, 10))  # finished: untouched
    assert kept[4, 0] == kept[4, 1] == [0, 10, 20, 30, 40]  # up to its checkpoint's step
    assert kept[8, 0] == kept[8, 1] == []  # unfinished without a checkpoint: starts over
    assert [c["step"] for c in Run(writer.dir).checkpoints()] == [40]
    assert sorted(p.name for p in (writer.dir / "arrays").iterdir()) == ["w000002_n0000256_d1_s00000-00001.npz"]


def test_a_run_of_the_previous_schema_opens_and_resumes(tmp_path):
    cfg = smoke_config("training.steps=60", "model.widths=[2, 4]")
    run_dir = create_run(tmp_path / "runs", cfg)
    with sqlite3.connect(run_dir / "run.sqlite") as db:  # what a schema-2 runner left: no checkpoints table
        db.execute("DROP TABLE checkpoints")
        db.execute("UPDATE run SET status = 'stopped'")
    meta = json.loads((run_dir / "meta.json").read_text())
    (run_dir / "meta.json").write_text(json.dumps({**meta, "schema_version": SCHEMA_VERSION - 1}))
    run = Run(run_dir)
    assert run.meta["schema_version"] == SCHEMA_VERSION - 1 and run.checkpoints() == []
    assert run.status().status == "stopped"
    shown = CliRunner().invoke(app, ["show", str(run_dir), "--no-plots"])
    assert shown.exit_code == 0 and "checkpoints:" not in shown.output
    assert execute(run_dir, threading.Event(), resume=True) == "finished"
    assert len(Run(run_dir).models()) == 8 and Run(run_dir).checkpoints() == []


def test_the_memory_planner_counts_the_checkpoint_copy():
    def growth(*overrides: str, width: int = 1000, models: int = 8) -> int:
        on, off = smoke_config(*overrides), smoke_config(*overrides, "execution.checkpoint_seconds=0")
        return estimate_shard_bytes(on, width, models) - estimate_shard_bytes(off, width, models)

    params = 3 * 1000 + 1
    # float32 numbers, twice (the state's copy, then the file's bytes): weights and Adam's two moments; SGD's one
    assert growth() == 4 * 2 * 8 * 3 * params
    assert growth('training.optimizer="sgd"', "training.momentum=0.9") == 4 * 2 * 8 * 2 * params
    # LM keeps its linearisation too: with 40 points and 49 parameters, a 40×40 system and a 40×49 Jacobian
    assert growth('training.optimizer="lm"', "data.n_train=40", width=16, models=4) > 4 * 2 * 4 * (40 * 40 + 40 * 49)

    on, off = smoke_config("model.widths=[1000]"), smoke_config("model.widths=[1000]", "execution.checkpoint_seconds=0")
    budget = (estimate_shard_bytes(off, 1000, 4) + estimate_shard_bytes(on, 1000, 4)) // 2
    n = on.data.n_train
    assert plan_shards(off, budget) == [Shard(1000, (0, 1, 2, 3), n, 1)]
    assert plan_shards(on, budget) == [Shard(1000, (0, 1), n, 1), Shard(1000, (2, 3), n, 1)]
