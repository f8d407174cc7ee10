"""The seed distribution against truth: tail indices of known distributions, best-of-k against its closed
form and brute force, the verdict on synthetic shrinking and growing spreads, and the faces on a real run."""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from scaletui.analysis import FitOptions, analyze_run
from scaletui.export import export_csv
from scaletui.runner import create_run, execute
from scaletui.seeds import (
    HEAVY_INDEX,
    MIN_TAIL_SEEDS,
    analyze_seeds,
    expected_best_of,
    hill_index,
    seed_trends,
    tail_k,
    tail_values,
    verdict_lines,
    width_seeds,
)
from scaletui.store import Run
from tests.conftest import smoke_config
from tests.synthetic_runs import lottery_run


def pareto(rng: np.random.Generator, index: float, n: int) -> np.ndarray:
    return (1 - rng.random(n)) ** (-1 / index)  # P(X > x) = x^-index for x ≥ 1


@pytest.mark.parametrize("index", [0.8, 1.5, 3.0])
def test_hill_recovers_a_pareto_index_with_honest_intervals(index: float) -> None:
    rng = np.random.default_rng(7)
    n, replicas = 1000, 300
    estimates = [hill_index(pareto(rng, index, n), "unlucky", tail_k(n)) for _ in range(replicas)]
    coverage = np.mean([e.ci[0] <= index <= e.ci[1] for e in estimates])
    assert 0.90 <= coverage <= 0.99  # a 95% interval that means it
    assert abs(np.median([e.index for e in estimates]) - index) < 0.1 * index
    assert all(e.k == math.isqrt(n) for e in estimates)


def test_a_heavy_pareto_is_called_heavy_and_a_light_one_thin() -> None:
    rng = np.random.default_rng(1)
    assert hill_index(pareto(rng, 0.7, 1000), "unlucky", tail_k(1000)).verdict == "heavy"
    assert hill_index(pareto(rng, 6.0, 1000), "unlucky", tail_k(1000)).verdict == "thin"


def test_lognormal_seeds_are_thin_in_log_loss_but_look_heavy_in_loss() -> None:
    """The units question made concrete: a lognormal loss is Gaussian in log-loss (thin tails), while the
    loss itself, over the range 1000 seeds can see, is as heavy as a Pareto tail of index below 2."""
    rng = np.random.default_rng(3)
    losses = np.exp(4.0 * rng.standard_normal(1000) - 5)
    in_log = width_seeds(8, 25, losses, 0, "log")
    in_loss = width_seeds(8, 25, losses, 0, "loss")
    assert in_log.lucky.verdict == in_log.unlucky.verdict == "thin"
    assert in_loss.lucky.verdict == in_loss.unlucky.verdict == "heavy"
    assert in_loss.unlucky.index < HEAVY_INDEX < in_log.unlucky.index


def test_a_pareto_tail_of_log_loss_is_measured_in_log_units() -> None:
    rng = np.random.default_rng(5)
    estimates = []
    for _ in range(100):
        # Log-loss around -3: Gaussian below the median, a Pareto(1) excess (in decades) above it.
        below = -3 - np.abs(rng.standard_normal(500))
        above = -3 + 0.001 * pareto(rng, 1.0, 500)  # Hill is scale-free: the 0.001 keeps 10**x finite
        losses = 10 ** np.concatenate([below, above])
        assert np.isfinite(losses).all()
        estimates.append(hill_index(tail_values(losses, "log", "unlucky"), "u", 31))
    assert abs(np.median([e.index for e in estimates]) - 1.0) < 0.1
    assert np.mean([e.verdict == "heavy" for e in estimates]) > 0.9  # 1 + 1.96/√31 < 2


def test_tails_are_refused_below_the_minimum_seed_count_with_the_reason() -> None:
    losses = np.random.default_rng(0).random(MIN_TAIL_SEEDS - 1) + 0.1
    w = width_seeds(4, 13, losses, 0, "log")
    assert w.lucky is None and w.unlucky is None
    assert w.tail_note == f"a tail index needs at least {MIN_TAIL_SEEDS} seeds; this width has {MIN_TAIL_SEEDS - 1}"
    enough = width_seeds(4, 13, np.random.default_rng(0).random(MIN_TAIL_SEEDS) + 0.1, 0, "log")
    assert enough.lucky is not None and enough.tail_note is None


def test_a_tail_of_ties_is_refused_not_divided_by_zero() -> None:
    with pytest.raises(ValueError, match="tied"):
        hill_index(np.ones(100), "unlucky", 10)


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_best_of_k_equals_the_brute_force_mean_over_all_k_subsets(n: int) -> None:
    x = np.random.default_rng(n).random(n)
    for k in range(1, n + 1):
        brute = np.mean([min(c) for c in itertools.combinations(x, k)])
        assert expected_best_of(x, k) == pytest.approx(brute, rel=1e-12)


def test_best_of_k_matches_the_closed_form_of_known_distributions() -> None:
    rng = np.random.default_rng(2)
    uniform, exponential = rng.random(20000), rng.standard_exponential(20000)
    for k in (1, 10, 100):
        assert expected_best_of(uniform, k) == pytest.approx(1 / (k + 1), rel=0.05)  # E min of k U(0,1)
        assert expected_best_of(exponential, k) == pytest.approx(1 / k, rel=0.05)  # min of k Exp(1) is Exp(k)


def test_best_of_more_seeds_than_there_are_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 11 seeds"):
        expected_best_of(np.ones(10), 11)
    assert set(width_seeds(2, 7, np.arange(1.0, 21.0), 0, "log").best_of) == {1, 10}


def _widths_with_spread(rng: np.random.Generator, sd_at: dict[int, float], seeds: int = 400):
    groups = [10 ** (-np.log2(w) + sd * rng.standard_normal(seeds)) for w, sd in sd_at.items()]
    return np.array(list(sd_at), dtype=float), groups


@pytest.mark.parametrize(("exponent", "direction"), [(-0.5, "shrinks"), (0.0, "stays"), (0.5, "grows")])
def test_the_spread_trend_recovers_a_known_exponent_and_its_direction(exponent: float, direction: str) -> None:
    rng = np.random.default_rng(11)
    x, groups = _widths_with_spread(rng, {w: 0.5 * (w / 2) ** exponent for w in (2, 4, 8, 16, 32, 64)})
    median_fit, spread = seed_trends(x, groups, "log", FitOptions(x_axis="width", resamples=500))
    assert spread.direction == direction
    assert spread.ci_low <= exponent <= spread.ci_high
    assert median_fit.ci_low <= np.log2(10) <= median_fit.ci_high  # the median 10^-log2(w) is w^-log2(10)


def test_the_verdict_flips_between_mediocristan_and_extremistan() -> None:
    rng = np.random.default_rng(4)
    widths = (4, 8, 16, 32)
    thin = [width_seeds(w, 3 * w + 1, 10 ** (-np.log2(w) + 0.3 / w * rng.standard_normal(1000)), 0, "log")
            for w in widths]  # fmt: skip
    x, groups = np.array(widths, dtype=float), [10 ** (-np.log2(w) + 0.3 / w * rng.standard_normal(1000))
                                                for w in widths]  # fmt: skip
    _, shrinking = seed_trends(x, groups, "log", FitOptions(x_axis="width", resamples=300))
    assert verdict_lines(thin, shrinking, "log", "width")[-1].startswith("mediocristan")
    # The same widths, but at the widest a jackpot tail in log-loss: a Pareto(0.8) excess, in decades,
    # below the median. (A Pareto tail of 1/L alone would be an exponential, so thin, tail of log-loss.)
    jackpots = 10 ** np.concatenate([-5 - 0.1 * pareto(rng, 0.8, 500), -5 + np.abs(rng.standard_normal(500))])
    heavy = [*thin[:-1], width_seeds(32, 97, jackpots, 0, "log")]
    last = verdict_lines(heavy, shrinking, "log", "width")[-1]
    assert last.startswith("extremistan at width 32") and "lucky tail" in last


def test_too_few_widths_give_no_verdict() -> None:
    one = [width_seeds(4, 13, np.random.default_rng(0).random(60) + 0.1, 0, "log")]
    assert verdict_lines(one, None, "log", "params") == [
        "too few widths with finished seeds to tell how the spread scales (need 2+)"
    ]


# --- a real run ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory) -> Path:
    """A real smoke sweep with 60 seeds per width: enough for the tails (50+) and best of 10."""
    run_dir = create_run(
        tmp_path_factory.mktemp("seeds") / "runs", smoke_config("seeds.count=60", "training.steps=100")
    )
    assert execute(run_dir, threading.Event()) == "finished"
    return run_dir


def test_the_median_fit_is_the_runs_alpha_to_the_last_digit(smoke_run: Path) -> None:
    run = Run(smoke_run)
    seeds = analyze_seeds(run)
    fit = analyze_run(run).fit
    assert (seeds.median_fit.alpha, seeds.median_fit.ci_low, seeds.median_fit.ci_high) == (
        fit.alpha, fit.ci_low, fit.ci_high
    )  # fmt: skip
    models = run.models()
    for w in seeds.widths:
        losses = models.test_loss[models.width == w.width]
        assert w.seeds == losses.size
        assert w.quantiles[2] == pytest.approx(np.median(np.log10(losses)), rel=1e-12)
        assert w.median_loss == np.median(losses)
        assert w.best_of[1] == pytest.approx(losses.mean(), rel=1e-12)


def test_units_change_the_spread_not_the_median(smoke_run: Path) -> None:
    run = Run(smoke_run)
    log, loss, rank = (analyze_seeds(run, units=u) for u in ("log", "loss", "rank"))
    assert log.median_fit.alpha == loss.median_fit.alpha == rank.median_fit.alpha
    assert log.spread_trend.slope != loss.spread_trend.slope
    assert rank.spread_units == "log" and rank.spread_trend == log.spread_trend
    assert all(w.quantiles[0] >= 0 and w.quantiles[-1] <= 1 for w in rank.widths)
    with pytest.raises(ValueError, match="units must be one of log, loss, rank"):
        analyze_seeds(run, units="decades")


def scaletui(*args: str, columns: int = 80) -> subprocess.CompletedProcess[str]:
    env = {"COLUMNS": str(columns), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).parents[1])}
    return subprocess.run([sys.executable, "-m", "scaletui", *args], capture_output=True, text=True, env=env)


@pytest.mark.parametrize("columns", [80, 160])
def test_cli_seeds_prints_every_column_whole_and_ends_with_the_verdict(smoke_run: Path, columns: int) -> None:
    done = scaletui("--runs-dir", str(smoke_run.parent), "seeds", smoke_run.name, columns=columns)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert all(len(line) <= columns for line in lines)
    assert "…" not in done.stdout  # no column cut
    header = next(line for line in lines if line.lstrip().startswith("width"))
    for name in ("q25", "q50", "q75", "best10", "lucky", "unlucky", *(["q5", "q95", "best100"] * (columns > 110))):
        assert name in header.split()
    assert "lucky tail (jackpots)" in done.stdout
    assert "tails: Hill index" in lines[-2] + lines[-1]


def test_cli_seeds_json_and_bad_units(smoke_run: Path) -> None:
    done = scaletui("--runs-dir", str(smoke_run.parent), "seeds", smoke_run.name, "--json", "--units", "loss")
    record = json.loads(done.stdout)
    assert record["units"] == "loss" and len(record["widths"]) == len(Run(smoke_run).config.model.widths)
    assert record["verdict"][-1] == analyze_seeds(Run(smoke_run), units="loss").verdict[-1]
    bad = scaletui("--runs-dir", str(smoke_run.parent), "seeds", smoke_run.name, "--units", "decades")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == ["error: --units: must be one of log, loss, rank; got 'decades'"]


def test_export_seeds_has_a_row_per_width_with_the_analysis_numbers(smoke_run: Path) -> None:
    buffer = io.StringIO()
    run = Run(smoke_run)
    assert export_csv([run], "seeds", buffer) == len(run.config.model.widths)
    rows = list(csv.DictReader(io.StringIO(buffer.getvalue())))
    analysis = analyze_seeds(run)
    for row, w in zip(rows, analysis.widths, strict=True):
        assert row["units"] == "log10 loss" and int(row["width"]) == w.width
        assert float(row["q50"]) == w.quantiles[2]
        assert float(row["best_of_10"]) == w.best_of[10]


def test_identical_seeds_give_no_trend_and_say_why() -> None:
    widths = [width_seeds(w, 3 * w + 1, np.full(10, 0.1 / w), 0, "log") for w in (2, 4)]
    x, groups = np.array([2.0, 4.0]), [np.full(10, 0.05), np.full(10, 0.025)]
    median_fit, spread = seed_trends(x, groups, "log", FitOptions(x_axis="width", resamples=50))
    assert spread is None and median_fit.alpha == pytest.approx(1.0)
    assert verdict_lines(widths, spread, "log", "width") == [
        "some width's seeds all reached the same loss (an IQR of 0): no spread trend in these units"
    ]


def test_a_width_left_with_one_seed_is_in_the_median_fit_as_in_fit(tmp_path: Path) -> None:
    """A width whose other seeds diverged has a median (its one loss) but no spread: `fit` fits it, and the
    seeds view's median α is that same α over the same widths, its spread trend over the widths with 2+."""
    run = lottery_run(tmp_path / "runs", seeds=4, stuck={}, diverged={8: 3})
    seeds, fit = analyze_seeds(run), analyze_run(run).fit
    assert fit.points == 4 and [w.seeds for w in seeds.widths] == [4, 4, 1, 4]
    assert (seeds.median_fit.alpha, seeds.median_fit.ci_low, seeds.median_fit.ci_high) == (
        fit.alpha, fit.ci_low, fit.ci_high
    )  # fmt: skip
    assert seeds.spread_trend is not None  # over widths 2, 4 and 16
