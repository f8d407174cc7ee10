"""The real CLI, run as a subprocess: the end-to-end path, listings, and one-line errors."""

from __future__ import annotations

import shutil

import pytest

from scaletui.store import Run, list_runs
from tests.conftest import run_cli, wait_for


def assert_one_line_error(result, *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:") and "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0]


def test_run_smoke_end_to_end_then_ls(runs_dir):
    result = run_cli("run", "presets/smoke.toml", "--runs-dir", str(runs_dir), "--device", "cpu", cwd=None)
    assert result.returncode == 0, result.stderr
    [listing] = list_runs(runs_dir)
    run = listing.run
    assert run is not None and listing.status.status == "finished"
    assert len(run.models()) == 16
    assert "final test loss per width" in result.stdout and "finished in" in result.stdout
    rows = [line.split("│") for line in result.stdout.splitlines() if "│" in line]
    assert [int(cells[0]) for cells in rows] == [2, 4, 8, 16]
    assert "α vs N = " in result.stdout
    assert "width 16" in result.stderr  # the live per-width progress
    ls = run_cli("ls", "--runs-dir", str(runs_dir))
    assert ls.returncode == 0
    assert run.id in ls.stdout and "finished" in ls.stdout and "square" in ls.stdout and "2–16 (4)" in ls.stdout


def test_detach_prints_the_id_and_the_run_finishes_on_its_own(runs_dir):
    result = run_cli("run", "smoke", "--runs-dir", str(runs_dir), "--detach")
    assert result.returncode == 0, result.stderr
    run_id = result.stdout.strip()
    run = Run(runs_dir / run_id)
    wait_for(lambda: run.status().status == "finished", timeout=90)
    assert len(run.models()) == 16


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["run", "no-such-preset"], ["no file or preset named", "smoke"]),
        (["run", "smoke", "--set", "training.lr=-1"], ["training.lr"]),
        (["run", "smoke", "--set", "model.widths=[4, 0]"], ["model.widths[1]"]),
        (["run", "smoke", "--set", "seeds.count=0"], ["seeds.count"]),
        (["run", "smoke", "--set", "training.lrr=1"], ["training.lrr", "unknown"]),
        (["run", "smoke", "--set", "nonsense"], ["--set"]),
        (["run", "smoke", "--device", "tpu"], ["--device"]),
        (
            [
                "run",
                "smoke",
                "--set",
                "target.kind=expression",
                "--set",
                "target.expression=__import__('os').system('id')",
            ],
            ["target.expression"],
        ),
        (
            ["run", "smoke", "--set", "target.kind=expression", "--set", "target.expression=log(x)"],
            ["not finite"],
        ),
        (["run", "--resume", "nothing-here"], ["no run"]),
        (["run"], ["preset"]),
    ],
)
def test_bad_input_is_one_line_naming_the_problem(runs_dir, args, needles):
    result = run_cli(*args, "--runs-dir", str(runs_dir))
    assert_one_line_error(result, *needles)
    assert not runs_dir.exists() or not any(runs_dir.iterdir())  # nothing was started


def test_broken_preset_file_names_file_and_line(tmp_path, runs_dir):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[training]\nlr = = 3\n')
    result = run_cli("run", str(bad), "--runs-dir", str(runs_dir))
    assert_one_line_error(result, str(bad), "line 3")


def test_presets_lists_the_shipped_presets():
    result = run_cli("presets")
    assert result.returncode == 0
    for name in ("lottery-silu", "lottery-relu", "sin", "teacher-d2", "smoke"):
        assert name in result.stdout


@pytest.mark.parametrize("command", [[], ["run"], ["ls"], ["presets"]])
def test_help_explains_each_command(command):
    result = run_cli(*command, "--help")
    assert result.returncode == 0
    assert "Usage" in result.stdout
    if command == ["run"]:
        for option in ("--set", "--device", "--runs-dir", "--detach", "--resume"):
            assert option in result.stdout


def test_ls_marks_damaged_runs_and_carries_on(runs_dir):
    result = run_cli("run", "smoke", "--runs-dir", str(runs_dir), "--set", "training.steps=20")
    assert result.returncode == 0, result.stderr
    broken = runs_dir / "20000101-000000-broken-0000"
    shutil.copytree(next(runs_dir.iterdir()), broken)
    (broken / "meta.json").write_text("garbage")  # still a run: its run.sqlite holds the run tables
    (runs_dir / "notes").mkdir()
    (runs_dir / "notes" / "meta.json").write_text("garbage")  # not a run: nothing of a run's own
    ls = run_cli("ls", "--runs-dir", str(runs_dir))
    assert ls.returncode == 0
    assert "damaged" in ls.stdout and "finished" in ls.stdout and "notes" not in ls.stdout


def test_the_top_level_runs_dir_reaches_every_subcommand(tmp_path):
    top = tmp_path / "top"
    result = run_cli("--runs-dir", str(top), "run", "smoke", "--set", "training.steps=10", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "runs").exists() and len(list(top.iterdir())) == 1
    listed = run_cli("--runs-dir", str(top), "ls", cwd=tmp_path)
    assert next(top.iterdir()).name in listed.stdout
    own = run_cli("--runs-dir", str(top), "ls", "--runs-dir", str(tmp_path / "other"), cwd=tmp_path)
    assert "no runs in" in own.stderr  # the subcommand's own option wins


def test_export_does_not_replace_a_dangling_link_without_force(runs_dir, tmp_path):
    assert run_cli("run", "smoke", "--runs-dir", str(runs_dir), "--set", "training.steps=10").returncode == 0
    link = tmp_path / "out.csv"
    link.symlink_to(tmp_path / "nowhere.csv")
    refused = run_cli("export", "latest", "--runs-dir", str(runs_dir), "--out", str(link))
    assert refused.returncode == 2 and link.is_symlink() and "exists" in refused.stderr
    forced = run_cli("export", "latest", "--runs-dir", str(runs_dir), "--out", str(link), "--force")
    assert forced.returncode == 0 and not link.is_symlink() and link.read_text().startswith("run,")
