"""show, fit and export on real runs, through the real CLI; CSV formats pinned by golden files."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from scaletui.analysis import FitOptions, analyze_run
from scaletui.export import FORMATS, export_csv
from scaletui.runner import create_run, execute
from scaletui.store import Run, RunWriter
from tests.conftest import run_cli, smoke_config
from tests.synthetic_runs import lottery_run

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, list[Run]]:
    """Two finished smoke runs (different base seeds) in one runs directory."""
    runs_dir = tmp_path_factory.mktemp("reports") / "runs"
    runs = []
    for base in (0, 1):
        run_dir = create_run(runs_dir, smoke_config(f"seeds.base={base}", f'name="smoke-{base}"'))
        assert execute(run_dir, threading.Event()) == "finished"
        runs.append(Run(run_dir))
    return runs_dir, runs


@pytest.mark.parametrize(("columns", "lines"), [(80, 24), (200, 60)])
def test_show_fits_the_terminal_and_has_the_alpha_line_and_table(trained, columns, lines):
    runs_dir, runs = trained
    env = {"COLUMNS": str(columns), "LINES": str(lines)}
    result = run_cli("show", runs[0].id, "--runs-dir", str(runs_dir), env=env)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert runs[0].id in text and "finished" in text
    assert "α vs N = " in text and "α vs width = " in text and "95% CI [" in text
    assert "V ∝ N^-" in text and "4/d = 4" in text
    assert "test loss vs parameters N" in text and "output variance V and bias²" in text
    table_rows = [line for line in text.splitlines() if line.lstrip().startswith(("2 │", "4 │", "8 │", "16 │"))]
    assert len(table_rows) == 4
    assert max(len(line) for line in text.splitlines()) <= columns  # nothing wraps into garbage
    if columns >= 160:
        assert "IQR" in text and "max/med" in text  # the wide table uses the room


def test_fit_json_agrees_with_an_independent_scipy_fit(trained):
    runs_dir, runs = trained
    result = run_cli("fit", runs[0].id, runs[1].id, "--runs-dir", str(runs_dir), "--json")
    assert result.returncode == 0, result.stderr
    fits = json.loads(result.stdout)
    assert [f["run"] for f in fits] == [runs[0].id, runs[1].id]
    for fit, run in zip(fits, runs, strict=True):
        models = run.models()
        widths = sorted(set(models.width.tolist()))
        medians = [np.median(models.test_loss[models.width == w]) for w in widths]
        n_params = [3 * w + 1 for w in widths]
        ref = stats.linregress(np.log(n_params), np.log(medians))
        assert fit["fit"]["alpha"] == pytest.approx(-ref.slope, rel=1e-9)
        assert fit["fit"]["r2"] == pytest.approx(ref.rvalue**2, rel=1e-9)
        assert fit["fit"]["ci_low"] < fit["fit"]["alpha"] < fit["fit"]["ci_high"]
        assert fit["x"] == n_params


def test_fit_options_change_the_fit(trained):
    runs_dir, runs = trained
    base = ["fit", runs[0].id, "--runs-dir", str(runs_dir), "--json", "--resamples", "200"]
    by_width = json.loads(run_cli(*base, "--x", "width").stdout)[0]
    narrowed = json.loads(run_cli(*base, "--min-width", "4").stdout)[0]
    assert by_width["x"] == [2, 4, 8, 16] and narrowed["widths"] == [4, 8, 16]
    assert by_width["fit"]["alpha"] != narrowed["fit"]["alpha"]
    bad = run_cli("fit", runs[0].id, "--runs-dir", str(runs_dir), "--min-width", "16", "--max-width", "4")
    assert bad.returncode == 2 and "--min-width" in bad.stderr


def test_export_writes_files_for_several_runs_and_never_overwrites_silently(trained, tmp_path):
    runs_dir, runs = trained
    out = tmp_path / "per-seed.csv"
    args = ["export", runs[0].id, runs[1].id, "--runs-dir", str(runs_dir), "--what", "per-seed", "--out", str(out)]
    assert run_cli(*args).returncode == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 32 and {r["run"] for r in rows} == {runs[0].id, runs[1].id}
    stored = runs[0].models()
    first = [r for r in rows if r["run"] == runs[0].id]
    assert [float(r["test_loss"]) for r in first] == stored.test_loss.tolist()  # full precision round trip
    again = run_cli(*args)
    assert again.returncode == 2 and "--force" in again.stderr
    assert run_cli(*args, "--force").returncode == 0
    bad = run_cli("export", runs[0].id, "--runs-dir", str(runs_dir), "--what", "everything")
    assert bad.returncode == 2 and "--what" in bad.stderr


def test_every_export_format_has_one_header_and_one_record_per_row(trained):
    _, runs = trained
    for what in FORMATS:
        buffer = io.StringIO()
        count = export_csv(runs, what, buffer, FitOptions(resamples=100))
        rows = list(csv.reader(io.StringIO(buffer.getvalue())))
        assert len(rows) == count + 1 and count > 0
        assert all(len(r) == len(rows[0]) for r in rows)


def golden_run(tmp_path: Path) -> Run:
    """A hand-made run with known numbers: no training, so the golden files pin only the formats."""
    cfg = smoke_config("seeds.count=3", "model.widths=[2, 4, 8]", "training.steps=100")
    writer = RunWriter.create(tmp_path / "runs", cfg, run_id="golden-run")
    x = np.linspace(-2, 2, 5)
    writer.write_test_set(x[:, None], x**2)
    rng = np.random.default_rng(0)
    for w in (2, 4, 8):
        test = 0.5 * w**-1.0 * np.exp(0.1 * rng.standard_normal(3))
        diverged = np.array([-1, -1, 40 if w == 8 else -1])
        test[diverged >= 0] = np.nan
        for step, scale in ((0, 2.0), (50, 1.2), (90, 1.01), (100, 1.0)):
            falling = np.array([1.0, 1.0, 3.0 if step == 90 and w == 4 else 1.0])
            writer.add_curve_points(writer.group(w), [0, 1, 2], step, test * scale * falling, test * scale * falling)
        outputs = x**2 + rng.normal(scale=w**-0.5, size=(3, 5))
        outputs[diverged >= 0] = np.nan
        writer.add_shard_result(writer.group(w), [0, 1, 2], 3 * w + 1, test, test, diverged, 0.25, outputs, {})
    writer.mark_ended("finished")
    writer.close()
    return Run(writer.dir)


@pytest.mark.parametrize("what", FORMATS)
def test_export_formats_match_their_golden_files(tmp_path, what):
    buffer = io.StringIO()
    export_csv([golden_run(tmp_path)], what, buffer, FitOptions(resamples=200, seed=7))
    path = GOLDEN / f"{what}.csv"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(buffer.getvalue())
    assert_same_csv(buffer.getvalue(), path.read_text())


def assert_same_csv(got: str, golden: str) -> None:
    """The same header, rows and cells, text to the letter; numbers to 12 significant digits, because the
    last bit of a skewness or a bootstrap percentile moves with the BLAS build and the CPU's vector width."""
    got_rows, golden_rows = list(csv.reader(io.StringIO(got))), list(csv.reader(io.StringIO(golden)))
    assert [len(r) for r in got_rows] == [len(r) for r in golden_rows] and got_rows[0] == golden_rows[0]
    for got_row, golden_row in zip(got_rows, golden_rows, strict=True):
        for mine, theirs in zip(got_row, golden_row, strict=True):
            if _is_float(mine) and _is_float(theirs) and not mine.isdigit():
                assert math.isclose(float(mine), float(theirs), rel_tol=1e-12) or mine == theirs, (mine, theirs)
            else:
                assert mine == theirs


def _is_float(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def test_the_variance_exponent_is_written_with_its_own_sign():
    from scaletui.analysis import PowerLawFit
    from scaletui.report import variance_line

    assert "V ∝ N^-1.260" in str(variance_line(PowerLawFit(alpha=1.26, k=1.0, l_inf=0.0, r2=0.9)))
    growing = str(variance_line(PowerLawFit(alpha=-0.124, k=1.0, l_inf=0.0, r2=0.1, x_axis="width")))
    assert "V ∝ width^0.124" in growing and "--" not in growing


def test_show_at_80_columns_keeps_every_key_column_whole(tmp_path):
    runs_dir = tmp_path / "runs"
    run = lottery_run(runs_dir)
    result = run_cli("show", run.id, "--runs-dir", str(runs_dir), "--no-plots", env={"COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = next(line for line in lines if line.lstrip().startswith("width"))
    assert [c.strip() for c in header.split("┃")] == ["width", "N", "seeds", "median", "V", "V main", "outside",
                                                      "div", "falling"]  # fmt: skip
    row = {line.split("│")[0].strip(): [c.strip() for c in line.split("│")] for line in lines if "│" in line}
    analysis = analyze_run(run, FitOptions(resamples=0))
    for st, basins in zip(analysis.widths, analysis.basins, strict=True):
        cells = row[str(st.width)]
        assert cells[2] == f"{st.used}/{st.seeds}" and cells[3] == f"{st.median:.2e}"
        assert cells[6] == f"{basins.outside}/{basins.models}" and cells[8] == str(st.unconverged)
    assert row["4"][6] == "4/20" and row["16"][6] == "0/20"  # the stuck models, a basin of their own
    assert max(len(line) for line in lines) <= 80
    assert "outside the main basin (log10 loss gap > 1) by width: 2: " in result.stdout.replace("\n", " ")
