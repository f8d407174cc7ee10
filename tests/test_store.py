"""The run directory: round trips, damaged runs, run references."""

from __future__ import annotations

import dataclasses
import json
import threading

import numpy as np
import pytest

from scaletui.config import load_config
from scaletui.presets import resolve_preset
from scaletui.store import SCHEMA_VERSION, Run, RunWriter, StoreError, list_runs, new_run_id, resolve_run
from tests.conftest import smoke_config


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
