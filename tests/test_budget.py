"""The budget axis against truth: α(step) on curves with a known α(t), the settled rules, log evaluation."""

from __future__ import annotations

import csv
import io
import json
import threading

import numpy as np
import pytest
from scipy import stats

from scaletui.analysis import FitOptions, analyze_budget, analyze_run, budget_analysis, width_budgets
from scaletui.runner import create_run, execute
from scaletui.store import CurveTable, Run, RunWriter
from tests.conftest import run_cli, smoke_config
from tests.synthetic_runs import lottery_run

WIDTHS = (4, 8, 16, 32, 64)
STEPS = np.array([0, 1, 2, 3, 4, 6, 8, 11, 16, 23, 32, 45, 64, 91, 128, 181, 256, 362, 512])


def curve_table(loss, widths=WIDTHS, steps=STEPS, seeds=12, sigma=0.05, seed=0) -> CurveTable:
    """Curves L(w, t)·exp(σ·noise) for every (width, seed, step), sorted as the store returns them."""
    rng = np.random.default_rng(seed)
    rows = [(w, s, t, loss(w, t) * np.exp(sigma * rng.standard_normal())) for w in widths for s in range(seeds)
            for t in steps]  # fmt: skip
    w, s, t, test = (np.array(c) for c in zip(*rows, strict=True))
    one = np.ones_like(w, dtype=int)
    return CurveTable(w.astype(int), 1000 * one, one, s.astype(int), t.astype(int), test, test)


def alpha_of(t):
    return 0.5 + 0.25 * np.log2(np.maximum(t, 1))  # 0.5 at step 1, 2.75 at step 512


def test_alpha_by_step_recovers_a_known_alpha_of_the_budget():
    budget = budget_analysis(curve_table(lambda w, t: 0.3 * w ** -alpha_of(t)), {w: w for w in WIDTHS},
                             FitOptions(x_axis="width", resamples=500))  # fmt: skip
    assert budget.fitted == list(WIDTHS) and budget.steps.tolist() == STEPS[1:].tolist()  # step 0 is no budget
    truth = alpha_of(budget.steps)
    assert np.all((budget.ci_low < truth) & (truth < budget.ci_high))
    np.testing.assert_allclose(budget.alpha, truth, atol=0.03)
    assert np.all(budget.ci_high - budget.ci_low < 0.15)
    assert budget.alpha_settled is False  # α rose by 0.25 per doubling: far beyond its CI
    assert budget.half_step == 256 and budget.alpha_move == pytest.approx(0.25, abs=0.03)


def test_settled_and_not_settled_widths_and_alpha_are_told_apart():
    def loss(w, t):  # widths up to 16 have nearly stopped improving; 32 and 64 keep falling as 1/t
        floor, t = 0.3 * w**-2.0, max(t, 1)
        return floor * (1 + 16 / t) if w <= 16 else floor * (1 + 2000 / t)

    budget = budget_analysis(curve_table(loss, sigma=0.01), {w: w for w in WIDTHS}, FitOptions(resamples=300))
    settled = {b.width: b.settled for b in budget.widths}
    assert settled == {4: True, 8: True, 16: True, 32: False, 64: False}
    change = {b.width: b.change for b in budget.widths}
    assert change[4] == pytest.approx((1 + 16 / 512) / (1 + 16 / 256) - 1, abs=0.01)
    assert change[64] == pytest.approx((1 + 2000 / 512) / (1 + 2000 / 256) - 1, abs=0.01)
    assert budget.alpha_settled is False  # the wide widths are still moving, so α is

    curves = curve_table(lambda w, t: 0.3 * w**-2.0 * (1 + 1 / max(t, 1)), sigma=0.05)
    flat = budget_analysis(curves, {w: w for w in WIDTHS}, FitOptions(resamples=300))
    assert all(b.settled for b in flat.widths) and flat.alpha_settled is True


def test_too_few_steps_for_a_doubling_is_not_judged():
    budget = budget_analysis(curve_table(lambda w, t: w**-1.0, steps=np.array([0, 400, 512])),
                             {w: w for w in WIDTHS}, FitOptions(resamples=100))  # fmt: skip
    assert budget.steps.tolist() == [400, 512] and budget.half_step is None
    assert budget.alpha_settled is None and all(b.settled is None for b in budget.widths)


def test_a_diverged_model_and_a_missing_point_are_left_out_of_the_budget():
    curves = curve_table(lambda w, t: w**-1.0, widths=(4, 8), seeds=3)
    diverged = (curves.width == 4) & (curves.seed == 1) & (curves.step >= 100)
    curves.test_loss[diverged] = np.nan
    keep = ~((curves.width == 8) & (curves.seed == 2) & (curves.step == 23))
    curves = CurveTable(*(column[keep] for column in vars(curves).values()))
    four, eight = width_budgets(curves, {4: 4, 8: 8})
    assert four.losses.shape == (2, 18)  # the diverged model is out, every step stays
    assert 23 not in eight.steps and eight.losses.shape == (3, 17)


def test_the_last_steps_alpha_is_the_fit_the_other_faces_show(tmp_path):
    run = lottery_run(tmp_path / "runs")
    for options in (FitOptions(), FitOptions(x_axis="width", aggregate="mean", exclude_unconverged=True)):
        fit, budget = analyze_run(run, options).fit, analyze_budget(run, options)
        assert budget.steps[-1] == 100
        assert (budget.alpha[-1], budget.ci_low[-1], budget.ci_high[-1]) == pytest.approx(
            (fit.alpha, fit.ci_low, fit.ci_high), rel=1e-12
        )


@pytest.mark.parametrize("optimizer", ["adam", "lm"])
def test_a_log_schedule_evaluates_at_powers_of_root_two_and_the_end(tmp_path, optimizer):
    cfg = smoke_config('training.eval_schedule="log"', "training.steps=50", "model.widths=[2, 4]",
                       "seeds.count=2", f'training.optimizer="{optimizer}"', 'training.dtype="float64"')  # fmt: skip
    run_dir = create_run(tmp_path / "runs", cfg)
    assert execute(run_dir, threading.Event()) == "finished"
    curves = Run(run_dir).curves()
    for w in (2, 4):
        for s in (0, 1):
            steps = curves.step[(curves.width == w) & (curves.seed == s)].tolist()
            assert steps == [0, 1, 2, 3, 4, 6, 8, 11, 16, 23, 32, 45, 50]
    budget = analyze_budget(Run(run_dir))
    assert budget.steps.tolist() == [1, 2, 3, 4, 6, 8, 11, 16, 23, 32, 45, 50] and budget.half_step == 23


def test_fit_budget_on_a_finished_run_and_on_one_still_being_written(tmp_path):
    runs_dir = tmp_path / "runs"
    finished = lottery_run(runs_dir)
    result = run_cli("fit", finished.id, "--runs-dir", str(runs_dir), "--budget", "--json", "--resamples", "300")
    assert result.returncode == 0, result.stderr
    [fitted] = json.loads(result.stdout)
    budget = fitted["budget"]
    assert budget["steps"] == [25, 50, 90, 100] and budget["fitted_widths"] == [2, 4, 8, 16]
    assert budget["alpha"][-1] == pytest.approx(fitted["fit"]["alpha"], rel=1e-12)
    assert budget["half_step"] == 50 and isinstance(budget["alpha_settled"], bool)
    assert [w["settled"] for w in budget["widths"]] == [False, False, False, False]  # good models fell 2×
    text = run_cli("fit", finished.id, "--runs-dir", str(runs_dir), "--budget", "--resamples", "300").stdout
    assert f"{budget['alpha'][0]:.3f}" in text and ("α not settled" in text or "α settled" in text)
    assert "widths settled (test loss moved < 10% over the last doubling): none · not settled: 2 (" in text

    # A run whose runner is still writing it: two widths done to step 50, the third started.
    cfg = smoke_config("seeds.count=3", "model.widths=[2, 4, 8]", "training.steps=100")
    writer = RunWriter.create(runs_dir, cfg, run_id="live")
    writer.mark_running("cpu")
    for w, last in ((2, 50), (4, 50), (8, 10)):
        for step in (0, 10, 20, 30, 40, 50):
            if step <= last:
                writer.add_curve_points(
                    writer.group(w), [0, 1, 2], step, [1.0 / w / (1 + step)] * 3, [w**-1.5 / (1 + step)] * 3
                )
    writer.flush()
    live = run_cli("fit", "live", "--runs-dir", str(runs_dir), "--budget", "--json", "--resamples", "100")
    assert live.returncode == 0, live.stderr
    [partial] = json.loads(live.stdout)
    assert partial["fit"] is None and partial["budget"]["steps"] == [10]  # the only step all three widths share
    widths = np.array([2, 4, 8])
    expected = -stats.linregress(np.log(3 * widths + 1), np.log(widths**-1.5)).slope
    assert partial["budget"]["alpha"][0] == pytest.approx(expected, rel=1e-9)
    assert [w["steps"][-1] for w in partial["budget"]["widths"]] == [50, 50, 10]
    shown = run_cli("fit", "live", "--runs-dir", str(runs_dir), "--budget", "--resamples", "100")
    assert shown.returncode == 0 and "α not judged" in shown.stdout
    writer.close()


def test_export_budget_writes_a_row_per_step_and_width(tmp_path):
    runs_dir = tmp_path / "runs"
    run = lottery_run(runs_dir)
    rows = list(csv.DictReader(io.StringIO(run_cli("export", run.id, "--runs-dir", str(runs_dir), "--what", "budget",
                                                   "--resamples", "200").stdout)))  # fmt: skip
    assert len(rows) == 4 * 4 and {r["width"] for r in rows} == {"2", "4", "8", "16"}
    last = [r for r in rows if r["step"] == "100"]
    fit = analyze_run(run, FitOptions(resamples=200)).fit
    assert {float(r["alpha"]) for r in last} == {fit.alpha}
    models = run.models()
    for r in last:
        assert float(r["aggregate"]) == np.median(models.test_loss[models.width == int(r["width"])])
    bad = run_cli("export", run.id, "--runs-dir", str(runs_dir), "--what", "budget", "--offset")
    assert bad.returncode == 2 and "--offset" in bad.stderr
