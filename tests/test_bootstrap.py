"""The seed bootstrap's fast paths against the plain computation on the same draws: equal bit for bit where
they promise it (order statistics, means), to rounding where they reorder arithmetic (V), and the V
resamples, drawn as counts of uniform picks now, distributed as the multinomial counts they replace."""

from __future__ import annotations

import numpy as np
import pytest

import scaletui.bootstrap as bootstrap
from scaletui.analysis import (
    FitOptions,
    WidthBudget,
    _slopes,
    aggregate,
    alpha_by_step,
    percentile_ci,
    variance_fit,
)
from scaletui.bootstrap import (
    bootstrap_aggregates,
    bootstrap_median_and_quantiles,
    bootstrap_variances,
    pick_blocks,
    resample_picks,
)


@pytest.fixture(params=[1 << 20, 64], ids=["default-block", "tiny-block"])
def block(request, monkeypatch):
    """Every test at the default block size and at one so small that every group spans many blocks."""
    monkeypatch.setattr(bootstrap, "BLOCK", request.param)
    return request.param


def groups_with_ties(rng: np.random.Generator) -> list[np.ndarray]:
    """Odd and even sizes, one seed alone, and ties (a stuck basin repeats one loss exactly)."""
    sizes = (1, 2, 3, 20, 51, 200)
    groups = [np.exp(rng.standard_normal(n)) for n in sizes]
    groups[3][:5] = groups[3][7]
    return groups


@pytest.mark.parametrize("size", [1, 7, 64, 333])
def test_the_draws_in_blocks_are_the_whole_draw(block, size):
    rng = np.random.default_rng(3)
    parts = [drawn for _, drawn in pick_blocks(size, 101, rng, per_pick=3)]
    assert np.array_equal(np.concatenate(parts), resample_picks([size], 101, 3)[0])
    assert len(parts) > 1 or size * 3 * 101 <= block


@pytest.mark.parametrize("kind", ["median", "mean", "geomean"])
def test_resampled_aggregates_equal_aggregating_the_resampled_values(block, kind):
    groups = groups_with_ties(np.random.default_rng(1))
    picks = resample_picks([g.size for g in groups], 300, 5)
    plain = np.stack([aggregate(g[drawn], kind, axis=1) for g, drawn in zip(groups, picks, strict=True)], axis=1)
    assert np.array_equal(bootstrap_aggregates(groups, kind, 300, 5), plain)


@pytest.mark.parametrize("units", ["log", "loss", "reversed"])
def test_median_and_quantiles_equal_numpy_on_the_resampled_values(block, units):
    """The quantiles come from the median's order statistics when the units keep the order (log10, the loss
    itself) and from the transformed resamples when they do not (a reversed order): the same numbers."""
    groups = groups_with_ties(np.random.default_rng(2))
    transform = {"log": np.log10, "loss": lambda v: v, "reversed": lambda v: -v}[units]
    picks = resample_picks([g.size for g in groups], 250, 9)
    medians, quantiles = bootstrap_median_and_quantiles(groups, [transform(g) for g in groups], (0.25, 0.75), 250, 9)
    for j, (g, drawn) in enumerate(zip(groups, picks, strict=True)):
        assert np.array_equal(medians[:, j], np.median(g[drawn], axis=1))
        assert np.array_equal(quantiles[:, :, j], np.quantile(transform(g)[drawn], [0.25, 0.75], axis=1))


def test_resampled_variance_is_the_variance_of_the_resampled_outputs(block):
    rng = np.random.default_rng(4)
    outputs = 3.0 + 1e-3 * rng.standard_normal((40, 17))  # outputs far above their spread: centring matters
    got = bootstrap_variances(outputs, 120, np.random.default_rng(6))
    (picks,) = resample_picks([40], 120, 6)
    plain = np.array([outputs[drawn].var(axis=0).mean() for drawn in picks])
    np.testing.assert_allclose(got, plain, rtol=1e-9)


def test_variance_resamples_are_distributed_like_multinomial_counts():
    """V's resamples were once drawn as multinomial counts; counts of n uniform picks have the same law. On
    one data set the two bootstraps' spread and CI endpoints agree within Monte-Carlo error."""
    rng = np.random.default_rng(8)
    outputs = rng.standard_normal((30, 8)) * np.exp(rng.standard_normal((30, 1)))
    resamples = 20_000
    counts = np.random.default_rng(9).multinomial(30, np.full(30, 1 / 30), size=resamples) / 30
    first, second = counts @ outputs, counts @ (outputs * outputs)
    multinomial = np.maximum(second - first * first, 0.0).mean(axis=1)
    picked = bootstrap_variances(outputs, resamples, np.random.default_rng(10))
    se_mean = multinomial.std() / np.sqrt(resamples)
    assert abs(picked.mean() - multinomial.mean()) < 4 * np.sqrt(2) * se_mean
    assert picked.std() == pytest.approx(multinomial.std(), rel=0.05)
    for q in (2.5, 97.5):
        assert np.percentile(picked, q) == pytest.approx(np.percentile(multinomial, q), rel=0.05)


def test_variance_fit_ci_covers_a_known_slope():
    """V = c·w^−1 across seeds (independent noise of variance 1/w at every test point): the V slope's 95% CI
    covers 1 in about 95% of replicas (the CI's own truth test under the new draws)."""
    widths = np.array([2.0, 4, 8, 16, 32])
    covered = 0
    replicas = 60
    for r in range(replicas):
        rng = np.random.default_rng(100 + r)
        outputs = [rng.standard_normal((30, 20)) / np.sqrt(w) for w in widths]
        fit = variance_fit(widths, outputs, resamples=400, seed=r)
        covered += fit.ci_low <= 1.0 <= fit.ci_high
    assert 0.85 * replicas <= covered <= replicas


@pytest.mark.parametrize("kind", ["median", "mean", "geomean"])
def test_alpha_by_step_equals_the_plain_bootstrap_over_steps(block, kind):
    rng = np.random.default_rng(11)
    steps = np.array([10, 20, 40, 80])
    widths = (2, 4, 8)
    budgets = []
    for w, n in zip(widths, (9, 12, 15), strict=True):
        losses = 0.1 * w**-1.5 * np.exp(0.2 * rng.standard_normal((n, steps.size))) * (steps / 80.0) ** -0.3
        budgets.append(WidthBudget(w, 3 * w + 1, steps, losses, aggregate(losses, kind, axis=0), 40, 0.0))
    options = FitOptions(aggregate=kind, resamples=200, seed=4, x_axis="width")
    x = np.array(widths, dtype=float)
    _, low, high = alpha_by_step(budgets, x, steps, options)
    picks = resample_picks([b.losses.shape[0] for b in budgets], 200, 4)
    boot = np.stack([aggregate(b.losses[drawn], kind, axis=1) for b, drawn in zip(budgets, picks, strict=True)], -1)
    plain = [percentile_ci(-_slopes(np.log(x), np.log(boot[:, i, :]), False))[:2] for i in range(steps.size)]
    assert np.array_equal(np.stack([low, high], axis=1), np.array(plain))
