"""The science layer tested against truth: synthetic data with known exponents, exact identities."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from scaletui.analysis import (
    basin_groups,
    bias_variance,
    fit_power_law,
    fit_with_ci,
    local_slopes,
    main_basin,
    seed_spread,
    still_falling,
    theory_slopes,
    variance_fit,
    width_basins,
    width_stats,
)
from scaletui.bootstrap import bootstrap_aggregates

X = np.geomspace(7, 769, 8)


def synthetic_groups(rng, alpha=1.0, k=2.0, sigma=0.5, seeds=20, x=X, floor=0.0):
    return [floor + k * xi**-alpha * np.exp(sigma * rng.standard_normal(seeds)) for xi in x]


@pytest.mark.parametrize("robust", [False, True])
@pytest.mark.parametrize("alpha", [0.5, 1.0, 4.0])
def test_fit_recovers_a_known_exponent(alpha, robust):
    rng = np.random.default_rng(0)
    fit = fit_with_ci(X, synthetic_groups(rng, alpha=alpha, sigma=0.2), robust=robust, resamples=500)
    assert fit.alpha == pytest.approx(alpha, abs=0.05)
    assert fit.ci_low < fit.alpha < fit.ci_high
    assert fit.r2 > 0.99


def test_offset_fit_recovers_exponent_and_floor():
    rng = np.random.default_rng(1)
    x = np.geomspace(2, 1e4, 12)
    groups = synthetic_groups(rng, alpha=1.5, sigma=0.05, seeds=10, x=x, floor=1e-3)
    fit = fit_with_ci(x, groups, offset=True, resamples=200)
    assert fit.alpha == pytest.approx(1.5, abs=0.05)
    assert fit.l_inf == pytest.approx(1e-3, rel=0.05)
    assert fit.ci_low < 1.5 < fit.ci_high
    plain = fit_power_law(x, np.array([np.median(g) for g in groups]))
    assert plain.alpha < 1.2  # ignoring the floor flattens the slope: the offset is what recovers the truth


@pytest.mark.parametrize(
    ("how", "band"), [("mean", (0.90, 0.99)), ("geomean", (0.90, 0.99)), ("median", (0.90, 0.995))]
)
def test_bootstrap_ci_covers_the_true_exponent_about_95_percent_of_the_time(how, band):
    # The percentile bootstrap of a median is known to run slightly conservative with few seeds.
    rng = np.random.default_rng(2)
    replicas = 300
    covered = 0
    for r in range(replicas):
        fit = fit_with_ci(X, synthetic_groups(rng), kind=how, resamples=1000, seed=r)
        covered += fit.ci_low <= 1.0 <= fit.ci_high
    assert band[0] <= covered / replicas <= band[1]


def test_plain_fit_agrees_with_an_independent_scipy_regression():
    rng = np.random.default_rng(3)
    y = np.array([np.median(g) for g in synthetic_groups(rng)])
    ours = fit_power_law(X, y)
    ref = stats.linregress(np.log(X), np.log(y))
    assert ours.alpha == pytest.approx(-ref.slope, rel=1e-12)
    assert ours.k == pytest.approx(np.exp(ref.intercept), rel=1e-12)
    assert ours.r2 == pytest.approx(ref.rvalue**2, rel=1e-12)


def test_robust_fit_shrugs_off_a_broken_width():
    rng = np.random.default_rng(4)
    y = np.array([np.median(g) for g in synthetic_groups(rng, sigma=0.01)])
    y[-1] *= 50  # one width's seeds all failed to train
    assert abs(fit_power_law(X, y).alpha - 1.0) > 0.2
    assert fit_power_law(X, y, robust=True).alpha == pytest.approx(1.0, abs=0.02)


def test_piecewise_linear_interpolation_of_x_squared_scales_as_knots_to_the_minus_4():
    """docs/SCIENCE.md's exact sanity check for the fitter: MSE of linear interpolation of x² on D uniform
    intervals is h⁴/30 with h = 4/D, so the fitted exponent must be 4 to high accuracy."""
    grid = np.linspace(-2, 2, 400_001)
    intervals = np.array([8, 16, 32, 64, 128, 256])
    mse = [np.mean((np.interp(grid, np.linspace(-2, 2, d + 1), np.linspace(-2, 2, d + 1) ** 2) - grid**2) ** 2)
           for d in intervals]  # fmt: skip
    np.testing.assert_allclose(mse, (4 / intervals) ** 4 / 30, rtol=1e-3)
    fit = fit_power_law(intervals, np.array(mse))
    assert fit.alpha == pytest.approx(4.0, abs=0.005) and fit.r2 > 0.99999


def test_fit_refuses_too_few_points():
    with pytest.raises(ValueError, match="at least 2"):
        fit_power_law(np.array([4.0]), np.array([0.1]))
    with pytest.raises(ValueError, match="at least 3"):
        fit_power_law(np.array([4.0, 8.0]), np.array([0.1, 0.05]), offset=True)


def test_bias_variance_identity_holds_exactly_on_random_data():
    rng = np.random.default_rng(5)
    for _ in range(20):
        outputs = rng.normal(size=(rng.integers(2, 30), 257)) * rng.uniform(0.01, 10)
        target = rng.normal(size=257)
        bv = bias_variance(8, outputs, target)
        assert bv.mean_loss == pytest.approx(bv.bias2 + bv.variance, rel=1e-10, abs=1e-14)
        # The first term is the loss of the seed-averaged ensemble.
        assert bv.bias2 == pytest.approx(np.mean((outputs.mean(axis=0) - target) ** 2), rel=1e-12)


def test_variance_slope_recovers_one_over_width():
    rng = np.random.default_rng(6)
    widths = np.array([4, 8, 16, 32, 64, 128])
    target = np.sin(np.linspace(-2, 2, 200))
    outputs = [target + rng.normal(size=(40, 200)) / np.sqrt(w) for w in widths]
    fit = variance_fit(widths, outputs, resamples=500)
    assert fit.alpha == pytest.approx(1.0, abs=0.1)
    assert fit.ci_low < 1.0 < fit.ci_high and fit.ci_high - fit.ci_low < 0.3


def test_seed_spread_tells_thin_tails_from_jackpots():
    rng = np.random.default_rng(7)
    thin = seed_spread(16, 10 ** rng.normal(-3, 0.2, size=2000))
    assert abs(thin.skewness) < 0.2 and abs(thin.excess_kurtosis) < 0.3
    assert thin.median_log10 == pytest.approx(-3, abs=0.02)
    assert thin.iqr_log10 == pytest.approx(2 * 0.6745 * 0.2, rel=0.1)  # normal IQR = 1.349 σ
    losses = 10 ** rng.normal(-3, 0.2, size=200)
    losses[:5] *= 1000  # a few seeds stuck far above the rest
    heavy = seed_spread(16, losses)
    assert heavy.skewness > 3 and heavy.excess_kurtosis > 10
    assert heavy.max_over_median == pytest.approx(losses.max() / np.median(losses))


def test_width_stats_keep_unconverged_models_by_default_and_drop_them_only_when_asked():
    losses = np.array([1.0, 2.0, 3.0, 100.0, np.nan])
    diverged = np.array([False, False, False, False, True])
    unconverged = np.array([False, False, False, True, False])
    kept = width_stats(8, 25, losses, diverged, unconverged)
    assert (kept.seeds, kept.used, kept.diverged, kept.unconverged, kept.dropped) == (5, 4, 1, 1, 0)
    assert kept.median == 2.5 and kept.max == 100.0
    st = width_stats(8, 25, losses, diverged, unconverged, exclude_unconverged=True)
    assert (st.seeds, st.used, st.diverged, st.unconverged, st.dropped) == (5, 3, 1, 1, 1)
    assert st.median == 2.0 and st.max == 3.0 and st.mean == 2.0
    assert st.geomean == pytest.approx(6 ** (1 / 3))
    assert st.dropped_fraction == 0.25


def test_convergence_rule():
    steps = np.arange(0, 1001, 100)
    flat = np.r_[np.geomspace(1, 1e-3, 8), [1e-3, 1e-3, 1e-3]]
    falling = np.geomspace(1, 1e-3, 11)
    assert still_falling(steps, flat, 1000) is False
    assert still_falling(steps, falling, 1000) is True
    assert still_falling(np.array([0, 1000]), np.array([1.0, 0.1]), 1000) is True
    assert still_falling(steps[:5], falling[:5], 1000) is None  # not finished: nothing to say yet
    assert still_falling(np.array([950, 1000]), np.array([1.0, 0.1]), 1000) is None


def test_theory_slopes_follow_the_axis():
    one_layer = theory_slopes(2, 1, "width")
    assert sorted(one_layer.values()) == [1.0, 1.0, 2.0]
    deep = theory_slopes(2, 2, "width")
    assert sorted(deep.values()) == [2.0, 2.0, 4.0]
    assert sorted(theory_slopes(2, 2, "params").values()) == [1.0, 1.0, 2.0]


def test_basins_split_at_a_decade_and_report_the_main_basins_fraction_median_and_variance():
    rng = np.random.default_rng(8)
    good = 1e-5 * np.exp(0.3 * rng.standard_normal(14))
    stuck = np.array([8e-3, 2e-2, 0.1, 0.4, 1.0, 1.5])  # 7 decades above, within 3 decades of each other
    losses = rng.permutation(np.r_[good, stuck])
    groups = basin_groups(losses)
    assert [len(g) for g in groups] == [14, 6] and set(losses[groups[1]]) == set(stuck)
    target = np.linspace(-1, 1, 50)
    outputs = target + np.sqrt(losses)[:, None] * rng.standard_normal((20, 50))
    b = width_basins(2, losses, outputs, target)
    assert (b.models, b.groups, b.outside) == (20, 2, 6) and b.fraction_outside == pytest.approx(0.3)
    assert b.main_median == np.median(good)
    main = np.isin(losses, good)
    assert b.variance_main == pytest.approx(outputs[main].var(axis=0).mean(), rel=1e-12)
    assert b.variance_all == pytest.approx(bias_variance(2, outputs, target).variance, rel=1e-12)
    assert b.variance_all > 100 * b.variance_main  # the stuck few dominate a mean over seeds


def test_the_main_basin_is_the_largest_group_and_the_lower_one_on_a_tie():
    assert main_basin(np.array([1e-6, 2e-6, 1.0, 2.0, 3.0])).tolist() == [False, False, True, True, True]
    assert main_basin(np.array([1.0, 2.0, 1e-6, 2e-6])).tolist() == [False, False, True, True]
    assert main_basin(np.array([1e-3, 5e-3, 2e-2])).all()  # gaps under a decade chain into one basin


def local_of(x, groups, resamples=1000, seed=0):
    point = np.array([np.median(g) for g in groups])
    boot = bootstrap_aggregates(groups, "median", resamples, seed)
    return local_slopes([int(v) for v in x], x, point, boot)


def broken_groups(rng, x, below=4.0, above=1.0, knee=16.0, sigma=0.1, seeds=20):
    """Medians on L = x^−below up to the knee and on its continuation x^−above beyond (continuous)."""
    law = np.where(x <= knee, x**-below, knee**-below * (x / knee) ** -above)
    return [v * np.exp(sigma * rng.standard_normal(seeds)) for v in law]


def test_local_slopes_recover_both_sides_of_a_known_break_and_flag_it():
    x = np.array([2.0, 4, 8, 16, 32, 64, 128, 256])
    local = local_of(x, broken_groups(np.random.default_rng(9), x))
    below = [p for p in local.pairs if p.widths[1] <= 16]
    above = [p for p in local.pairs if p.widths[0] >= 16]
    assert len(below) == 3 and len(above) == 4
    for pair, truth in [*((p, 4.0) for p in below), *((p, 1.0) for p in above)]:
        assert pair.ci_low < truth < pair.ci_high and pair.alpha == pytest.approx(truth, abs=0.3)
    assert local.windows[0].widths == (2, 4, 8) and local.windows[0].alpha == pytest.approx(4, abs=0.2)
    assert local.one_law is False
    alphas = [p.alpha for p in local.pairs]
    assert local.verdict() == f"not one power law: local slopes {min(alphas):.1f}–{max(alphas):.1f}"
    broken = local.broken
    assert broken.preferred
    assert broken.alpha_below == pytest.approx(4.0, abs=0.15) and broken.alpha_above == pytest.approx(1.0, abs=0.1)
    assert 16 / 1.3 < broken.break_x < 16 * 1.3


def test_a_single_clean_power_law_is_rarely_called_broken():
    rng = np.random.default_rng(10)
    flagged = preferred = 0
    for r in range(50):
        local = local_of(X, synthetic_groups(rng), resamples=500, seed=r)
        flagged += local.one_law is False
        preferred += local.broken.preferred
        assert local.verdict() is None or local.one_law is False
    assert flagged <= 2  # of 50: the non-overlap rule is conservative
    assert preferred <= 4
