"""Issue #14's CLI defects: flags that look as if they took a value, an override blamed on the preset, run
names refused where ids are taken, and tables cut at 80 columns."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from scaletui.cli import app
from scaletui.config import ConfigError
from scaletui.lottery import EnsembleComparison
from scaletui.report import ensemble_table
from scaletui.store import RunWriter, StoreError, resolve_run
from tests.conftest import smoke_config


@pytest.mark.parametrize("command", ["fit", "show", "run", "ls", "inspect", "export", "rm", "plot"])
def test_help_shows_no_type_on_a_flag(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "120"})
    if command == "plot" and result.exit_code != 0:
        pytest.skip("no plot command")
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output


def test_a_bad_override_is_reported_against_the_override_not_the_preset() -> None:
    with pytest.raises(ConfigError) as caught:
        smoke_config("training.lr=-1")
    assert str(caught.value).startswith("--set training.lr=-1: training.lr: must be above 0")
    result = CliRunner().invoke(app, ["run", "smoke", "--set", "training.lr=-1"], env={"COLUMNS": "200"})
    assert result.exit_code == 2 and "--set training.lr=-1" in result.output and "smoke.toml" not in result.output


def finished_run(runs_dir: Path, name: str, run_id: str) -> Path:
    writer = RunWriter.create(runs_dir, smoke_config(f'name="{name}"'), run_id=run_id)
    writer.mark_running("cpu")
    writer.mark_ended("finished")
    writer.close()
    return writer.dir


def test_a_run_is_found_by_its_name(tmp_path: Path) -> None:
    runs_dir = tmp_path / "runs"
    run_dir = finished_run(runs_dir, "stoptest", "20261203-023702-stoptest-3c05")
    assert resolve_run(runs_dir, "stoptest") == run_dir
    finished_run(runs_dir, "stoptest", "20261203-033702-stoptest-9a11")
    with pytest.raises(StoreError, match=r"2 runs .* are named 'stoptest'.*give an id"):
        resolve_run(runs_dir, "stoptest")


def test_ls_at_80_columns_keeps_the_start_time_whole(tmp_path: Path) -> None:
    runs_dir = tmp_path / "runs"
    finished_run(runs_dir, "a-rather-long-experiment-name", "20261203-023730-a-rather-long-experiment-name-c834")
    finished_run(runs_dir, "short", "20261203-023702-short-3c05")
    result = CliRunner().invoke(app, ["ls", "--runs-dir", str(runs_dir)], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert len([line for line in lines if re.search(r"\d\d-\d\d \d\d:\d\d", line)]) == 2


def test_the_ensemble_table_keeps_every_column_at_80_columns() -> None:
    shapes = [(2, 2, 4), (2, 4, 8), (4, 2, 8), (4, 4, 16), (8, 2, 16)]  # (w, k, k·w) as `inspect` printed them
    rows = [EnsembleComparison(w, k, kw, 2, 2.45, 2.14, 1.75) for w, k, kw in shapes]
    console = Console(width=80, file=io.StringIO(), record=True)
    console.print(ensemble_table(rows))
    text = console.export_text()
    body = [line for line in text.splitlines() if re.match(r"\s+\d+ │", line)]
    assert [line.split("│")[1].strip() for line in body] == ["2", "4", "2", "4", "2"]  # k shows its digits


def test_plot_out_writes_a_picture_or_says_in_one_line_what_it_needs(tmp_path: Path) -> None:
    from tests.synthetic_runs import lottery_run

    run = lottery_run(tmp_path / "runs")
    out = tmp_path / "fig.svg"
    result = CliRunner().invoke(app, ["plot", run.id, "--runs-dir", str(tmp_path / "runs"), "--out", str(out)])
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert result.exit_code == 2 and not out.exists()
        assert result.output.strip().splitlines() == [
            "error: `scaletui plot` draws with matplotlib: pip install 'scaletui[plot]'"
        ]
        return
    assert result.exit_code == 0, result.output
    assert out.read_text().lstrip().startswith("<?xml") and "fit α = " in out.read_text()


def test_plot_out_refuses_an_unknown_format(tmp_path: Path) -> None:
    from tests.synthetic_runs import lottery_run

    run = lottery_run(tmp_path / "runs")
    out = tmp_path / "fig.jpg"
    result = CliRunner().invoke(app, ["plot", run.id, "--runs-dir", str(tmp_path / "runs"), "--out", str(out)])
    assert result.exit_code == 2 and not out.exists()


def test_ls_at_80_columns_shows_a_short_id_and_the_name_first_and_drops_the_least_useful_columns(
    tmp_path: Path,
) -> None:
    runs_dir = tmp_path / "runs"
    long_name = "gamma-with-a-longer-name"
    ids = ["20261203-100907-alpha-8210", "20261203-100911-beta-c8ec", f"20261203-100916-{long_name}-4713"]
    for run_id in ids:
        finished_run(runs_dir, run_id.split("-", 2)[2].rsplit("-", 1)[0], run_id)
    result = CliRunner().invoke(app, ["ls", "--runs-dir", str(runs_dir)], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert lines[0].split()[:3] == ["id", "name", "status"] and "started" in lines[0] and "act" not in lines[0]
    for run_id, line in zip(ids, lines[1:], strict=True):
        short, name = line.split()[:2]
        assert name == run_id.split("-", 2)[2].rsplit("-", 1)[0]  # whole, on one line
        assert run_id.startswith(short) and resolve_run(runs_dir, short) == runs_dir / run_id  # a RUN to type
    wide = CliRunner().invoke(app, ["ls", "--runs-dir", str(runs_dir)], env={"COLUMNS": "200"})
    assert all(run_id in wide.output for run_id in ids) and "duration" in wide.output.splitlines()[0]
