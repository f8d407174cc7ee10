"""The science layer: aggregates, power-law fits with bootstrap CIs, output variance, seed spread.

Pure functions over numpy arrays (numpy and scipy only), so each one is testable against synthetic
data with a known answer. :func:`analyze_run` applies them to a stored run, finished or still running.
Definitions follow docs/SCIENCE.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, stats

from scaletui.bootstrap import bootstrap_aggregates, bootstrap_columns, bootstrap_variances
from scaletui.grid import AXES
from scaletui.intrinsic import IntrinsicDimension, two_nn_dimension

AGGREGATES = ("median", "mean", "geomean")
X_AXES = ("width", "params")
HUBER_DELTA = 1e-3  # Besiroglu et al. (2024): Huber loss on log-loss residuals with delta = 1e-3
DEFAULT_RESAMPLES = 2000  # every face's bootstrap: thousands are cheap here (SCIENCE.md)
BOOTSTRAP_SEED = 0  # every face draws the same resamples, so the same run shows the same CI everywhere
CONVERGENCE_WINDOW = 0.10  # the last 10% of steps
CONVERGENCE_THRESHOLD = 0.05  # a model whose loss fell by more than 5% over that window is still learning
SETTLED_CHANGE = 0.10  # a width is settled when its aggregate test loss moved less than this over the last doubling
BASIN_GAP = 1.0  # decades: sorted log10 losses further apart than this start a new basin
BROKEN_BIC_MARGIN = 10.0  # BIC drop a broken power law needs before it is preferred to one slope
SELECTION_SPREAD = 0.25  # dropped fractions further apart than this between widths: the exclusion selects by outcome


# --- aggregation ---------------------------------------------------------------------------------


def aggregate(values: np.ndarray, kind: str = "median", axis: int = -1) -> np.ndarray:
    """Median (robust to a failed seed, as Liu & Tegmark report), mean, or geometric mean."""
    if kind == "median":
        return np.median(values, axis=axis)
    if kind == "mean":
        return np.mean(values, axis=axis)
    if kind == "geomean":
        return np.exp(np.mean(np.log(values), axis=axis))
    raise ValueError(f"aggregate must be one of {', '.join(AGGREGATES)}; got {kind!r}")


@dataclass(frozen=True, kw_only=True)
class FitOptions:
    """The choices behind every number shown for a run. The CLI, the exports, the report and every screen
    of the TUI analyse a run through :func:`analyze_run` with one of these, so the same options give the
    same α, CI, V slope and counts on every face; the defaults are what a face shows unless told otherwise.

    All seeds by default: the per-width aggregate is taken over every finite (non-diverged) model. A model
    whose training loss was still falling at the end (:func:`still_falling`) is flagged and counted per
    width, but kept: dropping it selects by outcome (where stuck models sit flat in a bad basin and good
    ones are still improving, a convergence filter keeps the failures). ``exclude_unconverged`` drops
    them anyway; the faces then say how many went at each width and warn when the dropped fractions of
    two widths differ by more than SELECTION_SPREAD.
    """

    x_axis: str = "params"
    axis: str = "width"  # the sweep's axis the curve runs along (scaletui/grid.py): width, data or depth
    aggregate: str = "median"
    min_width: int | None = None
    max_width: int | None = None
    offset: bool = False
    robust: bool = False
    resamples: int = DEFAULT_RESAMPLES
    seed: int = BOOTSTRAP_SEED
    exclude_unconverged: bool = False

    def __post_init__(self) -> None:
        if self.x_axis not in X_AXES:
            raise ValueError(f"x must be one of {', '.join(X_AXES)}; got {self.x_axis!r}")
        if self.axis not in AXES:
            raise ValueError(f"axis must be one of {', '.join(AXES)}; got {self.axis!r}")
        if self.aggregate not in AGGREGATES:
            raise ValueError(f"aggregate must be one of {', '.join(AGGREGATES)}; got {self.aggregate!r}")

    def in_range(self, width: int) -> bool:
        """The one width-range rule: fits, slopes and listings all use the widths this admits."""
        return (self.min_width is None or width >= self.min_width) and (
            self.max_width is None or width <= self.max_width
        )


@dataclass(frozen=True)
class WidthStats:
    """Final test loss over the usable seeds of one width, and why the others were left out."""

    width: int
    n_params: int
    seeds: int  # finished models
    used: int  # models entering aggregates and fits: finite, and not dropped
    diverged: int
    unconverged: int  # finite models flagged still falling: counted, kept unless excluded
    dropped: int  # of those, left out of aggregates and fits by ``exclude_unconverged``
    median: float
    mean: float
    geomean: float
    q25: float
    q75: float
    min: float
    max: float

    def value(self, kind: str) -> float:
        return {"median": self.median, "mean": self.mean, "geomean": self.geomean}[kind]

    @property
    def dropped_fraction(self) -> float:
        """The share of this width's finite models that ``exclude_unconverged`` left out."""
        finite = self.seeds - self.diverged
        return self.dropped / finite if finite else 0.0


def selection_warning(widths: list[WidthStats]) -> str | None:
    """One line when dropping still-falling models left out shares of the widths that differ by more than
    SELECTION_SPREAD: the kept models are then chosen by how they trained, which biases the fit."""
    judged = [s for s in widths if s.seeds > s.diverged]
    if not judged or not any(s.dropped for s in judged):
        return None
    most = max(judged, key=lambda s: s.dropped_fraction)
    least = min(judged, key=lambda s: s.dropped_fraction)
    if most.dropped_fraction - least.dropped_fraction <= SELECTION_SPREAD:
        return None
    return (
        f"dropping still-falling models selects by outcome: dropped {most.dropped}/{most.seeds - most.diverged} "
        f"at width {most.width}, {least.dropped}/{least.seeds - least.diverged} at width {least.width}"
    )


def usable_losses(losses: np.ndarray, diverged: np.ndarray, excluded: np.ndarray) -> np.ndarray:
    """The losses that enter aggregates and fits: finite, positive, not diverged, not excluded."""
    return losses[~diverged & ~excluded & np.isfinite(losses) & (losses > 0)]


def width_stats(
    width: int,
    n_params: int,
    losses: np.ndarray,
    diverged: np.ndarray,
    unconverged: np.ndarray,
    exclude_unconverged: bool = False,
) -> WidthStats:
    """Summaries of one width's final losses; diverged (and, when asked, unconverged) models are counted, not used."""
    dropped = unconverged & ~diverged & exclude_unconverged
    usable = usable_losses(losses, diverged, dropped)
    nan = float("nan")
    if usable.size:
        q25, median, q75 = np.quantile(usable, [0.25, 0.5, 0.75])
        summary = (
            float(median),
            float(usable.mean()),
            float(np.exp(np.log(usable).mean())),
            float(q25),
            float(q75),
        )
        extremes = (float(usable.min()), float(usable.max()))
    else:
        summary, extremes = (nan,) * 5, (nan, nan)
    return WidthStats(
        width,
        n_params,
        len(losses),
        int(usable.size),
        int(diverged.sum()),
        int((unconverged & ~diverged).sum()),
        int(dropped.sum()),
        summary[0],
        summary[1],
        summary[2],
        summary[3],
        summary[4],
        *extremes,
    )


# --- power-law fits --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PowerLawFit:
    """L ≈ k·x^(−α) (+ L∞ when ``offset``), fitted in log–log space, with a bootstrap 95% CI for α."""

    alpha: float
    k: float
    l_inf: float  # 0 without an offset
    r2: float  # of log L, in log space
    ci_low: float = float("nan")
    ci_high: float = float("nan")
    resamples: int = 0
    x_axis: str = "params"
    offset: bool = False
    robust: bool = False
    points: int = 0
    axis: str = "width"  # the sweep's axis the fitted curve runs along: width, data or depth

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.l_inf + self.k * np.asarray(x, dtype=float) ** (-self.alpha)


def _ols_slopes(lx: np.ndarray, ly: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Weighted least squares of each row of ly (rows, points) on lx: (slope, intercept) per row."""
    w = np.ones_like(ly) if weights is None else weights
    sw = w.sum(axis=-1)
    mx = (w * lx).sum(axis=-1) / sw
    my = (w * ly).sum(axis=-1) / sw
    dx = lx - mx[..., None]
    slope = (w * dx * (ly - my[..., None])).sum(axis=-1) / (w * dx * dx).sum(axis=-1)
    return slope, my - slope * mx


def _huber_lines(lx: np.ndarray, ly: np.ndarray, delta: float, iterations: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """The Huber M-estimate of a line per row, by iteratively reweighted least squares (convex: one optimum)."""
    slope, intercept = _ols_slopes(lx, ly)
    for _ in range(iterations):
        residual = np.abs(ly - (intercept[..., None] + slope[..., None] * lx))
        weights = np.where(residual <= delta, 1.0, delta / np.maximum(residual, 1e-300))
        new_slope, new_intercept = _ols_slopes(lx, ly, weights)
        converged = np.allclose(new_slope, slope, rtol=0, atol=1e-12)
        slope, intercept = new_slope, new_intercept
        if converged:
            break
    return slope, intercept


def _slopes(lx: np.ndarray, ly: np.ndarray, robust: bool) -> np.ndarray:
    """The slope of each row of ly on lx: least squares, or the Huber line (δ = HUBER_DELTA) when robust."""
    return (_huber_lines(lx, ly, HUBER_DELTA) if robust else _ols_slopes(lx, ly))[0]


def _fit_offset(lx: np.ndarray, ly: np.ndarray, robust: bool, starts: list[np.ndarray]) -> np.ndarray:
    """(α, log k, log L∞) minimising squared or Huber log residuals of log(L∞ + k·x^−α), best of many starts.

    Trust-region least squares with the analytic Jacobian; its ``huber`` loss with ``f_scale = δ`` is exactly
    the Huber loss with threshold δ. The floor is bounded 40 e-folds below the smallest loss, so a fit with
    no visible floor stops there instead of wandering toward L∞ = 0.
    """

    def residual(p: np.ndarray) -> np.ndarray:
        return ly - np.logaddexp(p[2], p[1] - p[0] * lx)

    def jacobian(p: np.ndarray) -> np.ndarray:
        share = 1.0 / (1.0 + np.exp(p[2] - (p[1] - p[0] * lx)))  # the power term's share of the model
        return -np.stack([-lx * share, share, 1.0 - share], axis=1)

    lower = np.array([-5.0, -np.inf, ly.min() - 40.0])
    upper = np.array([20.0, np.inf, ly.max()])
    best, best_cost = starts[0], math.inf
    for start in starts:
        result = optimize.least_squares(
            residual,
            np.clip(start, lower + 1e-9, upper - 1e-9),
            jac=jacobian,
            bounds=(lower, upper),
            loss="huber" if robust else "linear",
            f_scale=HUBER_DELTA,
            x_scale="jac",
            max_nfev=200,
        )
        if result.cost < best_cost:
            best, best_cost = result.x, result.cost
    return best


def _offset_starts(lx: np.ndarray, ly: np.ndarray) -> list[np.ndarray]:
    """A grid of starting points (Besiroglu et al.): exponents and floors spanning the plausible range."""
    starts = []
    for alpha in (0.25, 0.5, 1.0, 2.0, 4.0):
        for floor_drop in (1.0, 3.0, 8.0):
            log_l_inf = ly.min() - floor_drop
            log_k = ly[np.argmin(lx)] + alpha * lx.min()
            starts.append(np.array([alpha, log_k, log_l_inf]))
    return starts


def _r2(ly: np.ndarray, predicted: np.ndarray) -> float:
    total = float(((ly - ly.mean()) ** 2).sum())
    return float("nan") if total == 0 else 1.0 - float(((ly - predicted) ** 2).sum()) / total


def fit_power_law(x: np.ndarray, y: np.ndarray, *, offset: bool = False, robust: bool = False) -> PowerLawFit:
    """Fit one curve of positive values; x and y are 1-D of equal length (at least 2, 3 with an offset)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(y) & (y > 0) & (x > 0)
    x, y = x[keep], y[keep]
    need = 3 if offset else 2
    if len(x) < need or len(np.unique(x)) < need:
        raise ValueError(f"a power-law fit needs at least {need} widths with a usable loss; have {len(np.unique(x))}")
    lx, ly = np.log(x), np.log(y)
    if offset:
        alpha, log_k, log_l_inf = _fit_offset(lx, ly, robust, _offset_starts(lx, ly))
        predicted = np.logaddexp(log_l_inf, log_k - alpha * lx)
        return PowerLawFit(
            float(alpha),
            math.exp(log_k),
            math.exp(log_l_inf),
            _r2(ly, predicted),
            offset=True,
            robust=robust,
            points=len(x),
        )
    slope, intercept = _huber_lines(lx, ly, HUBER_DELTA) if robust else _ols_slopes(lx, ly)
    slope, intercept = float(slope), float(intercept)
    return PowerLawFit(-slope, math.exp(intercept), 0.0, _r2(ly, intercept + slope * lx), robust=robust, points=len(x))


def bootstrap_alpha(x: np.ndarray, boot: np.ndarray, fit: PowerLawFit) -> np.ndarray:
    """α refitted to each row of resampled aggregates (resamples, len(x)), the way ``fit`` was fitted."""
    lx = np.broadcast_to(np.log(np.asarray(x, dtype=float)), boot.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        ly = np.log(boot)
    if not fit.offset:
        return -_slopes(lx, ly, fit.robust)
    start = [np.array([fit.alpha, math.log(fit.k), math.log(max(fit.l_inf, 1e-300))])]
    return np.array([_fit_offset(lx[i], ly[i], fit.robust, start)[0] for i in range(boot.shape[0])])


def percentile_ci(values: np.ndarray) -> tuple[float, float, int]:
    """The 2.5 and 97.5 percentiles of the finite values, and how many there were (NaNs when none)."""
    values = values[np.isfinite(values)]
    if not values.size:
        return float("nan"), float("nan"), 0
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high), int(values.size)


def fit_aggregates(
    x: np.ndarray,
    point: np.ndarray,
    boot: np.ndarray,
    *,
    offset: bool = False,
    robust: bool = False,
    x_axis: str = "params",
) -> PowerLawFit:
    """Fit the aggregates ``point`` and take the 95% CI from the refits of the resampled ``boot`` rows."""
    x = np.asarray(x, dtype=float)
    fit = fit_power_law(x, point, offset=offset, robust=robust)
    low, high, count = percentile_ci(bootstrap_alpha(x, boot, fit)) if boot.shape[0] else (math.nan, math.nan, 0)
    return PowerLawFit(fit.alpha, fit.k, fit.l_inf, fit.r2, low, high, count, x_axis, offset, robust, fit.points)


def fit_with_ci(
    x: np.ndarray,
    groups: list[np.ndarray],
    *,
    kind: str = "median",
    offset: bool = False,
    robust: bool = False,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    x_axis: str = "params",
) -> PowerLawFit:
    """Fit the aggregate of each group (one group of seed losses per x) and attach a percentile 95% CI."""
    point = np.array([aggregate(g, kind) for g in groups])
    boot = bootstrap_aggregates(groups, kind, resamples, seed)
    return fit_aggregates(x, point, boot, offset=offset, robust=robust, x_axis=x_axis)


# --- local slopes -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalSlope:
    """α over a few neighbouring widths (two: a pair; three: a window) with its bootstrap 95% CI."""

    widths: tuple[int, ...]
    alpha: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class BrokenPowerLaw:
    """Two slopes meeting at a break, continuous in log–log, against one slope by BIC on log residuals.

    Preferred only when it lowers the BIC by more than BROKEN_BIC_MARGIN (10: "very strong" evidence on
    Kass and Raftery's scale): with 5–10 widths and a break searched over a grid, a plain BIC drop picks the
    broken law for about half of clean single power laws; a margin of 10 for about 4% of them (measured on
    50 synthetic replicas, tests/test_analysis.py).
    """

    alpha_below: float
    alpha_above: float
    break_x: float
    bic_one: float
    bic_broken: float

    @property
    def preferred(self) -> bool:
        return self.bic_one - self.bic_broken > BROKEN_BIC_MARGIN


@dataclass(frozen=True)
class LocalSlopes:
    """Pair and window slopes of one run's aggregates, from the same resamples as the α CI.

    The rule: the curve is *not one power law* when two pair slopes have 95% CIs that do not overlap.
    """

    pairs: list[LocalSlope]
    windows: list[LocalSlope]
    broken: BrokenPowerLaw | None

    @property
    def one_law(self) -> bool | None:
        """False when two pair CIs do not overlap; None when there is nothing to compare (or no CIs)."""
        ranged = [p for p in self.pairs if math.isfinite(p.ci_low)]
        if len(ranged) < 2:
            return None
        return max(p.ci_low for p in ranged) <= min(p.ci_high for p in ranged)

    def verdict(self) -> str | None:
        """'not one power law: local slopes 0.4–4.6' when the rule says so, else None."""
        if self.one_law is not False:
            return None
        alphas = [p.alpha for p in self.pairs]
        return f"not one power law: local slopes {min(alphas):.1f}–{max(alphas):.1f}"


def _slopes_over(lx: np.ndarray, ly: np.ndarray, span: int) -> np.ndarray:
    """α by OLS over every run of ``span`` consecutive points; ly is (..., points): (..., points − span + 1)."""
    out = [-_ols_slopes(lx[j : j + span], ly[..., j : j + span])[0] for j in range(lx.size - span + 1)]
    return np.stack(out, axis=-1) if out else np.empty((*ly.shape[:-1], 0))


def broken_power_law(x: np.ndarray, y: np.ndarray, grid: int = 60) -> BrokenPowerLaw | None:
    """Fit log y = c + s₁·min(log x − b, 0) + s₂·max(log x − b, 0) for b on a grid between the second and the
    second-to-last x (linear least squares at each b), and one line; compare by BIC = n·ln(RSS/n) + k·ln n
    with k = 2 for the line and 4 for the broken law (c, s₁, s₂, b). Needs 5+ points (one left over)."""
    lx, ly = np.log(np.asarray(x, dtype=float)), np.log(np.asarray(y, dtype=float))
    n = lx.size
    if n < 5:
        return None
    floor = n * 1e-24  # log residuals below float precision are all equally good

    def bic(rss: float, k: int) -> float:
        return n * math.log(max(rss, floor) / n) + k * math.log(n)

    slope, intercept = _ols_slopes(lx, ly)
    one = float(((ly - intercept - slope * lx) ** 2).sum())
    best = (math.inf, 0.0, 0.0, 0.0)
    for b in np.linspace(lx[1], lx[-2], grid):
        design = np.stack([np.ones(n), np.minimum(lx - b, 0), np.maximum(lx - b, 0)], axis=1)
        coef, *_ = np.linalg.lstsq(design, ly, rcond=None)
        rss = float(((ly - design @ coef) ** 2).sum())
        if rss < best[0]:
            best = (rss, float(b), -float(coef[1]), -float(coef[2]))
    rss, b, below, above = best
    return BrokenPowerLaw(below, above, math.exp(b), bic(one, 2), bic(rss, 4))


def local_slopes(widths: list[int], x: np.ndarray, point: np.ndarray, boot: np.ndarray) -> LocalSlopes:
    """Pair slopes between consecutive x and window slopes over three, each with the percentile 95% CI of
    the same slope on every row of ``boot`` (the resampled aggregates the α CI uses)."""
    lx = np.log(np.asarray(x, dtype=float))
    ly = np.log(np.asarray(point, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        lb = np.log(boot)
    result = []
    for span in (2, 3):
        alphas, boot_alphas = _slopes_over(lx, ly, span), _slopes_over(lx, lb, span)
        result.append(
            [
                LocalSlope(tuple(widths[j : j + span]), float(alphas[j]), *percentile_ci(boot_alphas[:, j])[:2])
                for j in range(alphas.size)
            ]
        )
    return LocalSlopes(result[0], result[1], broken_power_law(x, point))


# --- output variance and bias -----------------------------------------------------------------------


@dataclass(frozen=True)
class BiasVariance:
    """docs/SCIENCE.md's exact decomposition at one width: mean_s L = bias² + V (population variance over seeds)."""

    width: int
    seeds: int
    mean_loss: float  # mean over seeds of each model's test MSE
    bias2: float  # mean_x (mean_s f − f*)²: the seed-averaged ensemble's loss
    variance: float  # V = mean_x Var_s f


def bias_variance(width: int, outputs: np.ndarray, target: np.ndarray) -> BiasVariance:
    """outputs (seeds, n_test) of finite models; target (n_test,)."""
    outputs = np.asarray(outputs, dtype=float)
    ensemble = outputs.mean(axis=0)
    return BiasVariance(
        width=width,
        seeds=outputs.shape[0],
        mean_loss=float(((outputs - target) ** 2).mean()),
        bias2=float(((ensemble - target) ** 2).mean()),
        variance=float(outputs.var(axis=0).mean()),
    )


def variance_fit(
    x: np.ndarray,
    outputs_by_width: list[np.ndarray],
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    x_axis: str = "width",
) -> PowerLawFit:
    """Slope of V against x (V ∝ x^−slope) with a seed-bootstrap 95% CI: 1 is the lottery-ticket prediction."""
    x = np.asarray(x, dtype=float)
    v = np.array([o.var(axis=0).mean() for o in outputs_by_width])
    point = fit_power_law(x, v)
    rng = np.random.default_rng(seed)
    boot = np.stack([bootstrap_variances(o, resamples, rng) for o in outputs_by_width], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ly = np.log(boot)
    keep = np.all(np.isfinite(ly), axis=1)
    slopes, _ = _ols_slopes(np.broadcast_to(np.log(x), ly[keep].shape), ly[keep])
    low, high = np.percentile(-slopes, [2.5, 97.5]) if keep.any() else (float("nan"), float("nan"))
    return PowerLawFit(
        point.alpha, point.k, 0.0, point.r2, float(low), float(high), int(keep.sum()), x_axis, points=point.points
    )


# --- seed distribution and convergence -----------------------------------------------------------------


@dataclass(frozen=True)
class SeedSpread:
    """The distribution of log10 L over seeds at one width: thin-tailed or jackpot-driven?"""

    width: int
    seeds: int
    median_log10: float
    iqr_log10: float
    skewness: float
    excess_kurtosis: float
    max_over_median: float


def seed_spread(width: int, losses: np.ndarray) -> SeedSpread:
    """Skewness and excess kurtosis are the bias-corrected sample estimates (NaN below 3 and 4 seeds)."""
    losses = losses[np.isfinite(losses) & (losses > 0)]
    nan = float("nan")
    if losses.size == 0:
        return SeedSpread(width, 0, nan, nan, nan, nan, nan)
    logs = np.log10(losses)
    q25, q75 = np.quantile(logs, [0.25, 0.75])
    flat = np.ptp(logs) == 0
    skew = float(stats.skew(logs, bias=False)) if logs.size >= 3 and not flat else nan
    kurt = float(stats.kurtosis(logs, fisher=True, bias=False)) if logs.size >= 4 and not flat else nan
    median = float(np.median(losses))
    return SeedSpread(
        width, int(losses.size), float(np.median(logs)), float(q75 - q25), skew, kurt, float(losses.max() / median)
    )


def still_falling(
    steps: np.ndarray,
    losses: np.ndarray,
    total_steps: int,
    window: float = CONVERGENCE_WINDOW,
    threshold: float = CONVERGENCE_THRESHOLD,
) -> bool | None:
    """The convergence rule: True when the training loss fell by more than ``threshold`` (relative to its
    final value) over the last ``window`` of the steps; None when no evaluation falls in a position to tell.
    """
    finite = np.isfinite(losses)
    steps, losses = steps[finite], losses[finite]
    if steps.size < 2 or steps[-1] < total_steps:
        return None
    before = steps <= total_steps * (1 - window)
    if not before.any():
        return None
    return bool(fell_too_much(losses[before][-1], losses[-1], threshold))


def fell_too_much(earlier, final, threshold: float = CONVERGENCE_THRESHOLD):
    """The still-falling test itself, elementwise: the loss fell by more than ``threshold`` of its final value."""
    return (np.asarray(earlier) - np.asarray(final)) > threshold * np.asarray(final)


# --- basins ------------------------------------------------------------------------------------------


def basin_groups(losses: np.ndarray, gap: float = BASIN_GAP) -> list[np.ndarray]:
    """The basin rule: sort the log10 losses and cut wherever two neighbours are more than ``gap`` decades
    apart. Returns each group's indices into ``losses`` (positive and finite), lowest losses first."""
    order = np.argsort(losses)
    logs = np.log10(losses[order])
    cuts = np.nonzero(np.diff(logs) > gap)[0] + 1
    return [order[chunk] for chunk in np.split(np.arange(len(order)), cuts)] if len(order) else []


def main_basin(losses: np.ndarray, gap: float = BASIN_GAP) -> np.ndarray:
    """A mask of the main basin: the largest group of :func:`basin_groups`, the lower-loss one on a tie
    (``max`` keeps the first of equals, and groups come lowest first)."""
    mask = np.zeros(len(losses), dtype=bool)
    groups = basin_groups(losses, gap)
    if groups:
        mask[max(groups, key=len)] = True
    return mask


@dataclass(frozen=True)
class Basins:
    """One width's finite models split into basins: how many fell outside the main one, and the main
    basin's own median and output variance beside V over all seeds (a mean over seeds that a few stuck
    models can dominate)."""

    width: int
    models: int  # finite models
    groups: int
    outside: int  # models outside the main basin
    main_median: float
    variance_all: float  # NaN without outputs (or fewer than 2 finite models)
    variance_main: float  # V over the main basin's models; NaN below 2 of them

    @property
    def fraction_outside(self) -> float:
        return self.outside / self.models if self.models else float("nan")


def width_basins(
    width: int, losses: np.ndarray, outputs: np.ndarray | None = None, target: np.ndarray | None = None
) -> Basins:
    """Basins of one width from its finite models' losses and, when given, their outputs (rows aligned)."""
    nan = float("nan")
    if losses.size == 0:
        return Basins(width, 0, 0, 0, nan, nan, nan)
    main = main_basin(losses)
    v_all = v_main = nan
    if outputs is not None and target is not None:
        if len(outputs) >= 2:
            v_all = bias_variance(width, outputs, target).variance
        if main.sum() >= 2:
            v_main = bias_variance(width, outputs[main], target).variance
    return Basins(
        width,
        int(losses.size),
        len(basin_groups(losses)),
        int((~main).sum()),
        float(np.median(losses[main])),
        v_all,
        v_main,
    )


def theory_slopes(intrinsic_dim: int, hidden_layers: int, x_axis: str) -> dict[str, float]:
    """Reference exponents (docs/SCIENCE.md), stated against N and converted to width when asked.

    With one hidden layer N ∝ w, so the exponents are the same; with more, N ∝ w² and α_w = 2·α_N.
    """
    scale = 2.0 if x_axis == "width" and hidden_layers > 1 else 1.0
    return {
        f"4/d = {4 / intrinsic_dim:.3g} (resolution, piecewise linear)": scale * 4 / intrinsic_dim,
        f"2/d = {2 / intrinsic_dim:.3g} (resolution, piecewise constant)": scale * 2 / intrinsic_dim,
        "1 (variance-limited)": scale * 1.0,
    }


# --- the budget axis ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WidthBudget:
    """One width's aggregate test loss at every evaluated step, and whether it has settled.

    Evaluated steps are those (≥ 1: step 0 is the initialisation, not a budget) where every finite model
    of the width has a point; a model with any non-finite test loss (diverged) is left out. *Settled*: the
    aggregate at the last step T changed by less than SETTLED_CHANGE relative to the largest evaluated step
    T' ≤ T/2, |agg(T)/agg(T') − 1| < 0.10; with no such T' it is not judged (None).
    """

    width: int
    n_params: int
    steps: np.ndarray  # (steps,)
    losses: np.ndarray  # (models, steps): each finite model's test loss
    aggregate: np.ndarray  # (steps,)
    half_step: int | None  # T', the step one doubling before the last
    change: float  # agg(T)/agg(T') − 1, NaN when not judged

    @property
    def settled(self) -> bool | None:
        return None if self.half_step is None else bool(abs(self.change) < SETTLED_CHANGE)


def last_doubling(steps: np.ndarray) -> tuple[int, int | None]:
    """The last step T and the largest step T' ≤ T/2 (at least 1), or None when there is none."""
    last = int(steps[-1])
    earlier = steps[(steps >= 1) & (steps <= last / 2)]
    return last, int(earlier[-1]) if earlier.size else None


def width_budgets(
    curves, n_params: dict[int, int], kind: str = "median", excluded: frozenset[tuple[int, int]] = frozenset()
) -> list[WidthBudget]:
    """Per width, from a store CurveTable: the evaluated steps and the aggregate test loss at each.

    ``excluded`` (width, seed) models are left out (the still-falling ones, when the options drop them).
    """
    out = []
    for w in np.unique(curves.width):
        mask = curves.width == w
        seeds, steps = curves.seed[mask], curves.step[mask]
        keep = ~np.isin(seeds, [s for v, s in excluded if v == w])
        seeds, steps, test = seeds[keep], steps[keep], curves.test_loss[mask][keep]
        model_ids, rows = np.unique(seeds, return_inverse=True)
        step_ids, cols = np.unique(steps, return_inverse=True)
        table = np.full((model_ids.size, step_ids.size), np.nan)
        table[rows, cols] = test
        present = np.zeros_like(table, dtype=bool)
        present[rows, cols] = True
        finite = np.bincount(rows, weights=~np.isfinite(test), minlength=model_ids.size) == 0
        table, present = table[finite], present[finite]
        evaluated = present.all(axis=0) & (step_ids >= 1) & (table > 0).all(axis=0)
        if not finite.any() or not evaluated.any():
            continue
        steps_w, losses = step_ids[evaluated], table[:, evaluated]
        agg = aggregate(losses, kind, axis=0)
        _, half = last_doubling(steps_w)
        change = float(agg[-1] / agg[np.searchsorted(steps_w, half)] - 1) if half is not None else math.nan
        out.append(WidthBudget(int(w), n_params[int(w)], steps_w, losses, agg, half, change))
    return out


@dataclass(frozen=True)
class BudgetAnalysis:
    """α against the training budget: α(step) with its bootstrap CI at each step common to the widths.

    *α settled*: |α(T) − α(T')| is below the CI half-width of α(T), T the last common step and T' the
    largest common step ≤ T/2; with no such T' (or no CI) it is not judged (None).
    """

    widths: list[WidthBudget]  # every width with evaluated steps, in range or not
    fitted: list[int]  # the widths α(step) is fitted over
    steps: np.ndarray  # steps common to the fitted widths
    alpha: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    options: FitOptions
    error: str | None = None  # why there is no α(step)

    @property
    def half_step(self) -> int | None:
        return last_doubling(self.steps)[1] if self.steps.size else None

    @property
    def alpha_move(self) -> float:
        """|α(T) − α(T')|; NaN when not judged."""
        half = self.half_step
        return math.nan if half is None else float(abs(self.alpha[-1] - self.alpha[self.steps == half][0]))

    @property
    def ci_half_width(self) -> float:
        return float(self.ci_high[-1] - self.ci_low[-1]) / 2 if self.steps.size else math.nan

    @property
    def alpha_settled(self) -> bool | None:
        move, half_width = self.alpha_move, self.ci_half_width
        return None if not (math.isfinite(move) and math.isfinite(half_width)) else bool(move < half_width)


def alpha_by_step(
    budgets: list[WidthBudget], x: np.ndarray, steps: np.ndarray, options: FitOptions
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """α at each of ``steps`` (common to every budget) with its percentile 95% CI: within each width the
    seeds are resampled once per bootstrap replicate (the α CI's own draws) and re-aggregated at every step,
    so neighbouring steps see the same resampled models."""
    if options.offset:
        raise ValueError("--offset: α(step) is fitted as a plain power law at each step; drop --offset")
    lx = np.log(np.asarray(x, dtype=float))
    columns = [np.searchsorted(b.steps, steps) for b in budgets]
    point = np.log(np.stack([b.aggregate[c] for b, c in zip(budgets, columns, strict=True)], axis=-1))
    alpha = -_slopes(lx, point, options.robust)
    rng = np.random.default_rng(options.seed)
    boot = np.empty((steps.size, options.resamples, len(budgets)))
    for j, (b, c) in enumerate(zip(budgets, columns, strict=True)):
        boot[:, :, j] = bootstrap_columns(b.losses[:, c], options.aggregate, options.resamples, rng).T
    with np.errstate(divide="ignore", invalid="ignore"):
        ly = np.log(boot)
    low, high = np.full(steps.size, np.nan), np.full(steps.size, np.nan)
    for i, step_alphas in enumerate(-_slopes(lx, ly, options.robust)):
        low[i], high[i], _ = percentile_ci(step_alphas)
    return alpha, low, high


def budget_analysis(
    curves,
    n_params: dict[int, int],
    options: FitOptions = FitOptions(),
    excluded: frozenset[tuple[int, int]] = frozenset(),
) -> BudgetAnalysis:
    """The budget axis of a run from its stored curves (pure: a CurveTable and parameter counts in)."""
    return alpha_budget(width_budgets(curves, n_params, options.aggregate, excluded), options)


def alpha_budget(budgets: list[WidthBudget], options: FitOptions) -> BudgetAnalysis:
    """α(step) over the widths in range, at the evaluated steps they all share."""
    fitted = [b for b in budgets if options.in_range(b.width)]
    empty = np.array([])
    if len(fitted) < 2:
        return BudgetAnalysis(
            budgets,
            [],
            empty.astype(int),
            empty,
            empty,
            empty,
            options,
            "α(step) needs 2+ widths in range with evaluated steps",
        )
    steps = fitted[0].steps
    for b in fitted[1:]:
        steps = np.intersect1d(steps, b.steps)
    if not steps.size:
        return BudgetAnalysis(
            budgets,
            [b.width for b in fitted],
            steps,
            empty,
            empty,
            empty,
            options,
            "the widths have no evaluated step in common yet",
        )
    x = np.array([b.width if options.x_axis == "width" else b.n_params for b in fitted], dtype=float)
    alpha, low, high = alpha_by_step(fitted, x, steps, options)
    return BudgetAnalysis(budgets, [b.width for b in fitted], steps, alpha, low, high, options)


# --- a whole run -------------------------------------------------------------------------------------


@dataclass
class RunAnalysis:
    """Everything ``show``, ``fit``, exports and the TUI display for one run."""

    widths: list[WidthStats]
    fit: PowerLawFit | None
    fit_error: str | None
    variance: list[BiasVariance]
    variance_slope: PowerLawFit | None
    spread: list[SeedSpread]
    theory: dict[str, float]
    options: FitOptions
    unconverged: dict[tuple[int, int], bool | None] = field(default_factory=dict)
    intrinsic: IntrinsicDimension | None = None  # TwoNN on the test inputs, for inputs of 2+ dimensions
    basins: list[Basins] = field(default_factory=list)  # per width, over all finite models whatever the options
    local: LocalSlopes | None = None  # slopes between neighbouring widths of the fit, on the same resamples

    @property
    def aggregate(self) -> str:
        return self.options.aggregate

    @property
    def x_axis(self) -> str:
        return self.options.x_axis

    def x_of(self, stats: WidthStats) -> int:
        return stats.width if self.x_axis == "width" else stats.n_params


def convergence_flags(curves, total_steps: int) -> dict[tuple[int, int], bool | None]:
    """Apply :func:`still_falling` to each model's training-loss curve from a store CurveTable."""
    flags: dict[tuple[int, int], bool | None] = {}
    if len(curves.width) == 0:
        return flags
    keys = np.stack([curves.width, curves.seed], axis=1)
    boundaries = np.nonzero(np.any(keys[1:] != keys[:-1], axis=1))[0] + 1
    for chunk in np.split(np.arange(len(curves.width)), boundaries):
        key = (int(curves.width[chunk[0]]), int(curves.seed[chunk[0]]))
        flags[key] = still_falling(curves.step[chunk], curves.train_loss[chunk], total_steps)
    return flags


def analyze_budget(run, options: FitOptions = FitOptions()) -> BudgetAnalysis:
    """The budget axis of a stored run, finished or still being written, with the run's own options."""
    cfg = run.config
    curves = run.curves()
    excluded: frozenset[tuple[int, int]] = frozenset()
    if options.exclude_unconverged:
        excluded = frozenset(k for k, v in convergence_flags(curves, cfg.training.steps).items() if v)
    return budget_analysis(curves, run.parameter_counts(), options, excluded)


def analyze_run(run, options: FitOptions = FitOptions(), *, with_outputs: bool = True) -> RunAnalysis:
    """Analyse a stored run (a :class:`scaletui.store.Run`), using whatever models have finished so far.

    Every face calls this with its :class:`FitOptions`; ``with_outputs=False`` skips reading the output
    arrays (no V, bias², V main or TwoNN), for listings that show α alone.
    """
    cfg = run.config
    models = run.models()
    flags = convergence_flags(run.curves(), cfg.training.steps)
    unconverged = np.array(
        [bool(flags.get((int(w), int(s)))) for w, s in zip(models.width, models.seed, strict=True)], dtype=bool
    )
    stats_list = []
    for w in sorted(set(models.width.tolist())):
        mask = models.width == w
        stats_list.append(
            width_stats(
                w,
                int(models.n_params[mask][0]),
                models.test_loss[mask],
                models.diverged[mask],
                unconverged[mask],
                exclude_unconverged=options.exclude_unconverged,
            )
        )
    fit, fit_error, local = _fit_widths(stats_list, models, unconverged & options.exclude_unconverged, options)
    spread = [seed_spread(s.width, models.test_loss[(models.width == s.width) & ~models.diverged]) for s in stats_list]
    intrinsic, variance, basins, v_fit = None, [], [], None
    if with_outputs and len(models):  # the test set is written before any model can finish
        x, y = run.test_set()
        if x.ndim == 2 and x.shape[1] > 1:
            with contextlib.suppress(ValueError):
                intrinsic = two_nn_dimension(x)
        variance, basins, v_fit = _outputs_by_width(run, stats_list, models, y, options)
    else:
        for s in stats_list:
            mask = models.width == s.width
            basins.append(
                width_basins(
                    s.width,
                    usable_losses(models.test_loss[mask], models.diverged[mask], np.zeros(mask.sum(), dtype=bool)),
                )
            )
    d = cfg.target.intrinsic_dim if cfg.target.kind == "teacher" else cfg.target.input_dim
    if fit is not None:
        fit = dataclasses.replace(fit, axis=options.axis)
    if v_fit is not None:
        v_fit = dataclasses.replace(v_fit, axis=options.axis)
    return RunAnalysis(
        stats_list,
        fit,
        fit_error,
        variance,
        v_fit,
        spread,
        theory_slopes(d, max(cfg.depths), options.x_axis),
        options,
        flags,
        intrinsic,
        basins,
        local,
    )


def _fit_widths(
    stats_list: list[WidthStats], models, dropped: np.ndarray, options: FitOptions
) -> tuple[PowerLawFit | None, str | None, LocalSlopes | None]:
    """The loss fit and the local slopes over the widths in range, from one set of seed resamples."""
    chosen = [s for s in stats_list if options.in_range(s.width)]
    groups = [
        usable_losses(models.test_loss[m], models.diverged[m], dropped[m])
        for m in (models.width == s.width for s in chosen)
    ]
    usable = [(s, g) for s, g in zip(chosen, groups, strict=True) if g.size]
    xs = np.array([s.width if options.x_axis == "width" else s.n_params for s, _ in usable], dtype=float)
    point = np.array([aggregate(g, options.aggregate) for _, g in usable])
    boot = bootstrap_aggregates([g for _, g in usable], options.aggregate, options.resamples, options.seed)
    local = local_slopes([s.width for s, _ in usable], xs, point, boot) if len(usable) >= 2 else None
    try:
        fit = fit_aggregates(xs, point, boot, offset=options.offset, robust=options.robust, x_axis=options.x_axis)
    except ValueError as exc:
        left_out = sum(s.dropped for s in chosen)
        why = [f"{left_out} still-falling models dropped by the exclusion"] if left_out else []
        if len(chosen) < len(stats_list):  # the range chosen, not the run, may be what leaves too few
            low, high = options.min_width, options.max_width
            why.append(f"{len(chosen)} of the run's {len(stats_list)} widths in {low or '…'}–{high or '…'}")
        qualified = f"{exc} ({'; '.join(why)})" if why else str(exc)
        return None, qualified, local
    return fit, None, local


def _outputs_by_width(
    run, stats_list: list[WidthStats], models, target: np.ndarray, options: FitOptions
) -> tuple[list[BiasVariance], list[Basins], PowerLawFit | None]:
    """Per width, from each model's outputs: bias² and V over all finite seeds, the basins with V over the
    main one; and the V slope over the widths in range."""
    variance, basins, v_outputs, v_x = [], [], [], []
    for s in stats_list:
        mask = models.width == s.width
        loss_of = dict(zip(models.seed[mask].tolist(), models.test_loss[mask].tolist(), strict=True))
        seeds, outputs = run.outputs(s.width)
        losses = np.array([loss_of.get(int(seed), np.nan) for seed in seeds])
        finite = np.all(np.isfinite(outputs), axis=1)
        ok = finite & (losses > 0)
        basins.append(width_basins(s.width, losses[ok], outputs[ok], target))
        if finite.sum() >= 2:
            variance.append(bias_variance(s.width, outputs[finite], target))
            if options.in_range(s.width):
                v_outputs.append(outputs[finite])
                v_x.append(s.width if options.x_axis == "width" else s.n_params)
    v_fit = None
    if len(v_outputs) >= 2:
        with contextlib.suppress(ValueError):
            v_fit = variance_fit(np.array(v_x, dtype=float), v_outputs, options.resamples, options.seed, options.x_axis)
    return variance, basins, v_fit
