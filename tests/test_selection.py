"""All seeds by default: still-falling models are flagged and counted, never silently dropped."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from scaletui.analysis import FitOptions, analyze_run
from tests.conftest import run_cli
from tests.synthetic_runs import lottery_run


def test_the_default_alpha_is_the_all_seed_alpha_and_excluding_selects_by_outcome(tmp_path):
    run = lottery_run(tmp_path / "runs")
    models = run.models()
    widths = [2, 4, 8, 16]
    medians = [np.median(models.test_loss[models.width == w]) for w in widths]
    all_seeds = -stats.linregress(np.log(widths), np.log(medians)).slope

    default = analyze_run(run, FitOptions(x_axis="width", resamples=200))
    assert default.fit.alpha == pytest.approx(all_seeds, rel=1e-12)
    assert default.fit.ci_low < 2.0 < default.fit.ci_high  # the good basin's law, recovered
    # Every good model is flagged (still falling), counted per width, and kept.
    assert [(s.used, s.unconverged, s.dropped) for s in default.widths] == [(20, 13, 0), (20, 16, 0),
                                                                              (20, 19, 0), (20, 20, 0)]  # fmt: skip

    excluded = analyze_run(run, FitOptions(x_axis="width", resamples=200, exclude_unconverged=True))
    assert [s.dropped for s in excluded.widths] == [13, 16, 19, 20]
    assert abs(excluded.fit.alpha - default.fit.alpha) > 1.0  # the stuck models are what is left


def test_the_cli_counts_falling_models_and_warns_when_excluding_them(tmp_path):
    runs_dir = tmp_path / "runs"
    run = lottery_run(runs_dir)
    args = ["fit", run.id, "--runs-dir", str(runs_dir), "--resamples", "200"]
    default = run_cli(*args, "--json")
    excluded = run_cli(*args, "--json", "--exclude-unconverged")
    assert default.returncode == 0 and excluded.returncode == 0, default.stderr + excluded.stderr
    [kept], [dropped] = json.loads(default.stdout), json.loads(excluded.stdout)
    assert [w["still_falling"] for w in kept["per_width"]] == [13, 16, 19, 20]
    assert [w["dropped"] for w in kept["per_width"]] == [0, 0, 0, 0] and kept["selection_warning"] is None
    assert [w["dropped"] for w in dropped["per_width"]] == [13, 16, 19, 20]
    assert dropped["selection_warning"] == (
        "dropping still-falling models selects by outcome: dropped 20/20 at width 16, 13/20 at width 2"
    )
    assert dropped["fit"]["alpha"] != kept["fit"]["alpha"] and dropped["widths"] == [2, 4, 8]

    text = run_cli(*args, "--exclude-unconverged")
    assert "dropped as still falling: width 2: 13/20 · width 4: 16/20 · width 8: 19/20 · width 16: 20/20" in text.stdout
    assert "warning: dropping still-falling models selects by outcome" in text.stdout
    shown = run_cli("show", run.id, "--runs-dir", str(runs_dir), "--no-plots")
    assert "still falling at the end" in shown.stdout and "kept in fits" in shown.stdout
    assert "dropped as still falling" not in shown.stdout


def test_fit_local_finds_a_known_break_and_every_alpha_line_says_so(tmp_path):
    runs_dir = tmp_path / "runs"
    widths = (2, 4, 8, 16, 32, 64)
    run = lottery_run(runs_dir, widths=widths, stuck={}, law=lambda w: w**-4.0 if w <= 8 else 8**-4.0 * (w / 8) ** -1)
    args = ["fit", run.id, "--runs-dir", str(runs_dir), "--x", "width", "--resamples", "500", "--local"]
    result = run_cli(*args, "--json")
    assert result.returncode == 0, result.stderr
    [fitted] = json.loads(result.stdout)
    pairs = fitted["local"]["pairs"]
    assert [p["widths"] for p in pairs] == [[2, 4], [4, 8], [8, 16], [16, 32], [32, 64]]
    for pair, truth in zip(pairs, (4, 4, 1, 1, 1), strict=True):
        assert pair["ci_low"] < truth < pair["ci_high"]
    assert fitted["local"]["windows"][0]["widths"] == [2, 4, 8]
    assert fitted["local"]["one_power_law"] is False and fitted["local_verdict"].startswith("not one power law")
    broken = fitted["local"]["broken"]
    assert broken["preferred"] and 6 < broken["break_x"] < 11
    assert abs(broken["alpha_below"] - 4) < 0.2 and abs(broken["alpha_above"] - 1) < 0.2

    text = run_cli(*args).stdout
    alpha_line = next(line for line in text.splitlines() if line.startswith("α vs width = "))
    assert f"α vs width = {fitted['fit']['alpha']:.3f}" in alpha_line  # α kept beside the flag
    assert fitted["local_verdict"] in alpha_line
    assert "2–4–8 │ window" in text and "broken power law: α" in text and "preferred" in text
    shown = run_cli("show", run.id, "--runs-dir", str(runs_dir), "--x", "width", "--no-plots").stdout
    assert fitted["local_verdict"] in shown and "32–64 │   pair" in shown


def test_no_fit_in_a_width_range_says_the_range_left_too_few(tmp_path) -> None:
    run = lottery_run(tmp_path / "runs")
    analysis = analyze_run(run, FitOptions(min_width=64))
    assert analysis.fit is None
    assert analysis.fit_error.endswith("have 0 (0 of the run's 4 widths in 64–…)")
    one = analyze_run(run, FitOptions(min_width=16))  # one width left: the range, not the run, is short
    assert one.fit_error.endswith("have 1 (1 of the run's 4 widths in 16–…)")
