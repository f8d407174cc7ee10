"""Sweeps over width × data size × depth: the grid's config, its nested training sets, models that train the
same in a grid as alone, the store keyed by every coordinate, runs of schema 3 that open and resume, and the
CLI along each axis."""

from __future__ import annotations

import csv
import io
import json
import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from scaletui.config import ConfigError, Group
from scaletui.engine import plan_shards, prepare_problem
from scaletui.export import export_csv
from scaletui.grid import slices
from scaletui.runner import create_run, execute
from scaletui.store import SCHEMA_VERSION, Run, RunWriter, StoreError, resume_refusal
from tests.conftest import REPO, run_cli, smoke_config

CPU = torch.device("cpu")
SCHEMA3 = REPO / "tests" / "data" / "schema3-run"
GRID = ("model.widths=[2, 4, 8]", "data.n_train=[16, 64, 256]", "training.steps=200", "seeds.count=3")


def trained(runs_dir: Path, *overrides: str) -> Run:
    run_dir = create_run(runs_dir, smoke_config(*overrides))
    assert execute(run_dir, threading.Event()) == "finished"
    return Run(run_dir)


@pytest.fixture(scope="module")
def grid_run(tmp_path_factory) -> Run:
    return trained(tmp_path_factory.mktemp("grid") / "runs", *GRID)


def test_data_sizes_and_depths_may_be_lists_or_a_log_spaced_range():
    cfg = smoke_config("data.n_train=[64, 16]", "model.hidden_layers=[2, 1]")
    assert cfg.data_sizes == (16, 64) and cfg.depths == (1, 2) and cfg.is_grid
    assert cfg.cells == ((16, 1), (16, 2), (64, 1), (64, 2))
    ranged = smoke_config("data.n_train_min=10", "data.n_train_max=1000", "data.n_train_count=3")
    assert ranged.data_sizes == (10, 100, 1000)
    assert not smoke_config().is_grid and smoke_config().data.n_train == 256  # one value stays a plain integer


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        (["data.n_train=[]"], "data.n_train", "empty list"),
        (["data.n_train=[16, 16]"], "data.n_train", "twice"),
        (["data.n_train=[16, 0]"], "data.n_train[1]", "between"),
        (["model.hidden_layers=[1, 65]"], "model.hidden_layers[1]", "between"),
        (["data.fresh=true", "training.batch_size=8", "data.n_train=[16, 32]"], "data.n_train", "fresh"),
        (["data.n_train=[16, 64]", "training.batch_size=32"], "training.batch_size", "16"),
    ],
)
def test_a_bad_grid_is_refused_naming_the_field(overrides, field, words):
    with pytest.raises(ConfigError) as exc:
        smoke_config(*overrides)
    assert exc.value.where == field and words in exc.value.problem


def test_both_ways_of_giving_data_sizes_at_once_are_refused():
    from scaletui.config import config_from_dict

    with pytest.raises(ConfigError, match="give either n_train or"):
        config_from_dict(
            {"model": {"widths": [2]}, "data": {"n_train": 10, "n_train_min": 1, "n_train_max": 9, "n_train_count": 2}}
        )


@pytest.mark.parametrize("noise", [0.0, 0.1])
def test_smaller_training_sets_are_the_first_points_of_larger_ones(noise):
    """Nested sets, whatever else the grid holds: each size draws the same first points, noise included."""
    cfg = smoke_config("data.n_train=[5, 17, 4097]", f"data.noise={noise}")
    big = prepare_problem(cfg.cell(4097, 1), CPU)
    for n in (5, 17):
        small = prepare_problem(cfg.cell(n, 1), CPU)
        assert torch.equal(small.x_train, big.x_train[:n]) and torch.equal(small.y_train, big.y_train[:n])
        assert torch.equal(small.x_test, big.x_test)  # one test set for every cell
    alone = prepare_problem(smoke_config("data.n_train=17", f"data.noise={noise}"), CPU)
    assert torch.equal(alone.y_train, big.y_train[:17])


def test_the_plan_covers_every_cell_and_keys_shards_by_it():
    shards = plan_shards(smoke_config(*GRID, "model.hidden_layers=[1, 2]"))
    assert {(s.width, s.n_train, s.depth) for s in shards} == {
        (w, n, d) for w in (2, 4, 8) for n in (16, 64, 256) for d in (1, 2)
    }
    assert all(s.seeds == (0, 1, 2) for s in shards)


def test_a_grid_trains_each_model_exactly_as_a_run_of_its_cell_alone(grid_run, tmp_path):
    """Adding data sizes leaves every other model's result unchanged: the run at n = 64 alone equals the
    grid's n = 64 models number for number."""
    alone = trained(tmp_path / "runs", *GRID[:1], "data.n_train=64", *GRID[2:])
    grid, single = grid_run.models(), alone.models()
    at = grid.n_train == 64
    assert len(single) == 9 and at.sum() == 9
    for name in ("width", "seed", "n_params", "train_loss", "test_loss", "diverged_step"):
        np.testing.assert_array_equal(getattr(grid, name)[at], getattr(single, name), err_msg=name)
    for width in (2, 4, 8):
        np.testing.assert_array_equal(grid_run.outputs(width, 64, 1)[1], alone.outputs(width)[1])


def test_the_store_keys_every_model_by_its_coordinates(grid_run):
    models = grid_run.models()
    assert len(models) == 27 and set(models.n_train.tolist()) == {16, 64, 256}
    assert set(zip(models.width.tolist(), models.n_train.tolist(), strict=True)) == {
        (w, n) for w in (2, 4, 8) for n in (16, 64, 256)
    }
    curves = grid_run.curves(width=4, n_train=16)
    assert set(curves.n_train.tolist()) == {16} and set(curves.width.tolist()) == {4}
    with pytest.raises(StoreError, match="sweeps 3 data sizes: say which"):
        grid_run.outputs(4)
    fraction, steps = grid_run.progress_fraction()
    assert fraction == pytest.approx(1.0) and steps[Group(4, 16, 1)] == 200
    # more data fits y = x² better: the median over seeds falls with D at every width
    for width in (2, 4, 8):
        medians = [np.median(models.test_loss[(models.width == width) & (models.n_train == n)]) for n in (16, 256)]
        assert medians[1] < medians[0]


def test_slices_along_data_put_the_data_size_where_the_width_was(grid_run):
    along = slices(grid_run, "data")
    assert [(c.fixed.width, c.label) for c in along] == [(2, "width 2"), (4, "width 4"), (8, "width 8")]
    models = along[1].models()
    assert models.width.tolist() == [16] * 3 + [64] * 3 + [256] * 3
    assert models.n_params.tolist() == [13] * 9  # N stays the width-4 net's parameter count
    assert along[1].parameter_counts() == {16: 13, 64: 13, 256: 13}
    np.testing.assert_array_equal(along[1].outputs(64)[1], grid_run.outputs(4, 64, 1)[1])


def test_a_grid_exports_each_models_coordinates(grid_run):
    buffer = io.StringIO()
    export_csv([grid_run], "per-seed", buffer)
    rows = list(csv.DictReader(io.StringIO(buffer.getvalue())))
    assert list(rows[0])[:5] == ["run", "width", "n_train", "depth", "n_params"]
    assert len(rows) == 27 and {r["n_train"] for r in rows} == {"16", "64", "256"}
    assert {r["n_params"] for r in rows if r["width"] == "4"} == {"13"}  # N, not D, whatever the axis


def test_fit_along_data_and_jointly_from_the_cli(grid_run):
    runs_dir = str(grid_run.dir.parent)
    done = run_cli("fit", grid_run.id, "--runs-dir", runs_dir, "--x", "data", "--json")
    assert done.returncode == 0, done.stderr
    fits = json.loads(done.stdout)
    assert [f["curve"]["width"] for f in fits] == [2, 4, 8]
    assert all(f["x"] == [16, 64, 256] for f in fits)
    text = run_cli("fit", grid_run.id, "--runs-dir", runs_dir, "--x", "data")
    assert text.returncode == 0 and "α vs D =" in text.stdout and "width 4" in text.stdout
    joint = run_cli("fit", grid_run.id, "--runs-dir", runs_dir, "--joint", "--resamples", "50", "--json")
    assert joint.returncode == 0, joint.stderr
    [fitted] = json.loads(joint.stdout)
    assert fitted["cells"] == 9 and fitted["resamples"] > 0 and fitted["alpha"] > 0
    alone = run_cli("fit", "--runs-dir", runs_dir, grid_run.id, "--joint", "--x", "data")
    assert alone.returncode == 2 and "--joint" in alone.stderr


def test_a_joint_fit_of_a_run_over_width_alone_says_why_not(tmp_path):
    run = trained(tmp_path / "runs", "model.widths=[2, 4]", "training.steps=20", "seeds.count=2")
    done = run_cli("fit", run.id, "--runs-dir", str(run.dir.parent), "--joint")
    assert done.returncode == 2 and "needs a sweep over data.n_train" in done.stderr


def _schema3_copy(tmp_path: Path) -> Path:
    runs = tmp_path / "runs"
    runs.mkdir()
    return Path(shutil.copytree(SCHEMA3, runs / SCHEMA3.name))


@pytest.mark.parametrize("what", ["per-seed", "per-width", "curves", "fit"])
def test_a_run_of_schema_3_opens_and_exports_what_it_exported_then(tmp_path, what):
    run_dir = _schema3_copy(tmp_path)
    done = run_cli("export", str(run_dir), "--what", what)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (REPO / "tests" / "data" / f"schema3-{what}.csv").read_text()
    assert Run(run_dir).meta["schema_version"] == 3  # a reader writes nothing
    with sqlite3.connect(run_dir / "run.sqlite") as conn:
        assert "n_train" not in {row[1] for row in conn.execute("PRAGMA table_info(models)")}


def test_a_run_of_schema_3_resumes_after_its_tables_gain_the_grid_columns(tmp_path):
    run_dir = _schema3_copy(tmp_path)
    before = Run(run_dir).models()
    with sqlite3.connect(run_dir / "run.sqlite") as conn:  # as if it had stopped before width 8 finished
        conn.execute("DELETE FROM models WHERE width = 8")
        conn.execute("DELETE FROM curves WHERE width = 8")
        conn.execute("UPDATE run SET status = 'stopped'")
    assert execute(run_dir, threading.Event(), resume=True) == "finished"
    after = Run(run_dir)
    assert after.meta["schema_version"] == SCHEMA_VERSION
    models = after.models()
    np.testing.assert_array_equal(models.test_loss, before.test_loss)  # width 8 retrained to the same numbers
    assert set(models.n_train.tolist()) == {64} and set(models.depth.tolist()) == {1}
    with sqlite3.connect(run_dir / "run.sqlite") as conn:
        assert "n_train" in {row[1] for row in conn.execute("PRAGMA table_info(models)")}


def test_an_old_run_with_label_noise_is_not_resumed_on_other_labels(tmp_path):
    run_dir = _schema3_copy(tmp_path)
    config = (run_dir / "config.toml").read_text().replace("noise = 0.0", "noise = 0.1")
    (run_dir / "config.toml").write_text(config)
    assert "label noise differently" in (resume_refusal(Run(run_dir)) or "")
    with pytest.raises(StoreError, match="label noise differently"):
        RunWriter(run_dir)


def test_the_readme_notebook_example_runs_on_a_grid_run(grid_run, tmp_path):
    """The README's example, as written, in a fresh interpreter in a directory holding a grid run."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Sweeping data size and depth", 1)[1]
    example = section.split("```python\n", 1)[1].split("```", 1)[0]
    shutil.copytree(grid_run.dir, tmp_path / "runs" / grid_run.id)
    done = subprocess.run([sys.executable, "-c", example], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(grid_run.id) and "(16, 64, 256)" in lines[0]
    assert [line.split(" [")[0] for line in lines[1:4]] == ["width 2", "width 4", "width 8"]
    assert lines[4].startswith("alpha ") and "beta " in lines[4]
    assert "n_train" in lines[5] and (grid_run.id, "finished") in eval(lines[-1])


def test_the_notebook_api_gives_the_clis_numbers(grid_run):
    import scaletui

    run = scaletui.open_run(grid_run.id, runs_dir=grid_run.dir.parent)
    cli = json.loads(
        run_cli("fit", grid_run.id, "--runs-dir", str(grid_run.dir.parent), "--x", "data", "--json").stdout
    )
    curves = run.analysis(x="data")
    assert [c.alpha for c in curves] == [f["fit"]["alpha"] for f in cli]
    assert [list(c.ci) for c in curves] == [[f["fit"]["ci_low"], f["fit"]["ci_high"]] for f in cli]
    table, frame = run.table("per-seed"), run.frame("per-seed")
    models = run.models()
    np.testing.assert_array_equal(table["test_loss"], frame["test_loss"].to_numpy())
    np.testing.assert_array_equal(np.sort(table["test_loss"]), np.sort(models["test_loss"]))
    assert table["n_train"].dtype.kind == "i" and set(table["n_train"].tolist()) == {16, 64, 256}
    assert {info.id for info in scaletui.list_runs(grid_run.dir.parent)} == {grid_run.id}
    with pytest.raises(StoreError, match="no run"):
        scaletui.open_run("nonesuch", runs_dir=grid_run.dir.parent)


def test_a_grid_on_ray_trains_each_cell_as_the_local_runner_does(grid_run, tmp_path):
    """Each Ray worker draws its shard's own cell (data size, depth): the same models as the local run."""
    pytest.importorskip("ray")
    runs = tmp_path / "runs"
    sets = [arg for override in GRID for arg in ("--set", override)]
    done = run_cli(
        "run", "smoke", *sets, "--executor", "ray", "--address", "local", "--runs-dir", str(runs), timeout=300
    )
    assert done.returncode == 0, done.stderr
    [run_dir] = list(runs.iterdir())
    on_ray, local = Run(run_dir).models(), grid_run.models()
    for name in ("width", "n_train", "depth", "seed"):
        np.testing.assert_array_equal(getattr(on_ray, name), getattr(local, name), err_msg=name)
    # float32: a Ray worker's one thread may sum in another order than the local runner's two
    np.testing.assert_allclose(on_ray.test_loss, local.test_loss, rtol=1e-5)


def test_a_depth_sweep_trains_each_depth_as_alone_and_fits_along_depth(tmp_path):
    sweep = ("model.widths=[2, 4]", "training.steps=60", "seeds.count=2")
    grid = trained(tmp_path / "grid", *sweep, "model.hidden_layers=[1, 2]")
    alone = trained(tmp_path / "alone", *sweep, "model.hidden_layers=2")
    models, single = grid.models(), alone.models()
    deep = models.depth == 2
    np.testing.assert_array_equal(models.test_loss[deep], single.test_loss)
    assert models.n_params[deep].tolist() == single.n_params.tolist() == [13, 13, 33, 33]
    done = run_cli("fit", grid.id, "--runs-dir", str(grid.dir.parent), "--x", "depth", "--json")
    assert done.returncode == 0, done.stderr
    fits = json.loads(done.stdout)
    assert [f["curve"]["width"] for f in fits] == [2, 4] and all(f["x"] == [1, 2] for f in fits)
