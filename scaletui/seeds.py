"""The seed distribution at scale: does seed-to-seed quality concentrate as nets grow, or stay long-tailed?

Per width, over the finished, finite models: quantiles of the test loss, the best-of-k curve (the loss
one expects from the best of k seeds), the basin fractions, and Hill estimates of both tails. Across
widths: how the median and the spread (the inter-quartile range) scale, each with a seed-bootstrap CI.
Then one verdict, backed by those CIs: "mediocristan" (the spread shrinks and the tails are thin) or
"extremistan" (a tail stays heavy: a few seeds dominate). docs/SCIENCE.md gives the definitions and the
reasons behind each rule; the constants below are the rules.

Units matter (SCIENCE.md, "In which units to ask"): the spread is measured in the chosen units, log10 of
the loss by default; the Hill estimates are always of the loss itself (unlucky side) and of its inverse
(lucky side), which is the same as the exponential tail of log-loss. In rank units every width has the
same spread by construction, so the verdict is then given in log-loss and says so.

Pure numpy and scipy: arrays in, numbers out, like :mod:`scaletui.analysis`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.special import gammaln

from scaletui.analysis import (
    FitOptions,
    PowerLawFit,
    fit_aggregates,
    percentile_ci,
    width_basins,
)
from scaletui.bootstrap import bootstrap_median_and_quantiles

UNITS = ("log", "loss", "rank")
UNIT_LABELS = {"log": "log10 loss", "loss": "loss", "rank": "rank within the width"}
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
BEST_OF = (1, 10, 100)
MIN_TAIL_SEEDS = 50  # below this the Hill estimate rests on fewer than 7 order statistics: refused
TAIL_RULE = "Hill index over the ⌊√seeds⌋ most extreme; heavy when its 95% interval lies below 2, thin above"
HEAVY_INDEX = 2.0  # a tail index below 2 means infinite variance: the mean of the seeds is ruled by its extremes
Z95 = 1.959963984540054  # the normal 97.5% quantile: Hill's CI is index ± Z95 · standard error


def tail_k(n: int) -> int:
    """The stated rule for Hill's k (how many of the largest values make the tail): ⌊√n⌋. It grows with n
    (the estimate's variance falls as 1/k) while k/n → 0 (its bias from the body of the distribution falls)."""
    return math.isqrt(n)


@dataclass(frozen=True)
class TailIndex:
    """A Hill estimate of one tail's index a (P(X > x) ∝ x^−a): small a is a heavy tail."""

    side: str  # "lucky" (the inverse loss: jackpots) or "unlucky" (the loss: failures)
    index: float
    stderr: float  # index / √k, the estimate's asymptotic standard error for a Pareto tail
    k: int

    @property
    def ci(self) -> tuple[float, float]:
        return self.index - Z95 * self.stderr, self.index + Z95 * self.stderr

    @property
    def verdict(self) -> str:
        """heavy: the whole 95% interval below 2; thin: above 2; undecided: it straddles 2."""
        low, high = self.ci
        if high < HEAVY_INDEX:
            return "heavy"
        if low > HEAVY_INDEX:
            return "thin"
        return "undecided"


def hill_index(values: np.ndarray, side: str, k: int) -> TailIndex:
    """Hill's estimator on the ``k`` largest of positive ``values``: a = 1 / mean(log(x_(i) / x_(k+1))).

    Exact maximum likelihood when the values above x_(k+1) are Pareto; raises ValueError (a one-line
    reason) when there are not k + 1 values or the tail is all ties.
    """
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values) & (values > 0)]
    if values.size <= k:
        raise ValueError(f"the {side} tail has {values.size} values; Hill with k = {k} needs {k + 1}")
    top = np.sort(values)[::-1][: k + 1]
    mean_log_excess = float(np.mean(np.log(top[:k] / top[k])))
    if mean_log_excess <= 0:
        raise ValueError(f"the {k} largest values are tied: no tail to measure")
    index = 1.0 / mean_log_excess
    return TailIndex(side, index, index / math.sqrt(k), k)


def expected_best_of(losses: np.ndarray, k: int) -> float:
    """The expected lowest loss among k seeds drawn without replacement from these: the unbiased estimate
    of E[min of k] from n ≥ k samples. The i-th smallest of n is the minimum of a k-subset with probability
    C(n−i, k−1) / C(n, k)."""
    x = np.sort(np.asarray(losses, dtype=float))
    n = x.size
    if not 1 <= k <= n:
        raise ValueError(f"best of {k} needs at least {k} seeds; there are {n}")
    i = np.arange(1, n - k + 2)  # positions that can be a k-subset's minimum
    log_weight = (gammaln(n - i + 1) - gammaln(k) - gammaln(n - i - k + 2)) - (
        gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)
    )
    return float(np.sum(np.exp(log_weight) * x[: n - k + 1]))


def tail_values(losses: np.ndarray, units: str, side: str) -> np.ndarray:
    """The positive values whose upper tail is the ``side`` tail in ``units``.

    In loss units: the loss (unlucky) and its inverse (lucky). In log units: the distance in decades above
    the median log10 loss (unlucky) or below it (lucky); Hill's index is then that of log-loss itself, and a
    lognormal loss, heavy-looking in loss units, is Gaussian, so thin, here.
    """
    if units == "loss":
        return losses if side == "unlucky" else 1.0 / losses
    logs = np.log10(losses)
    excess = logs - np.median(logs)
    return excess[excess > 0] if side == "unlucky" else -excess[excess < 0]


def in_units(losses: np.ndarray, units: str) -> np.ndarray:
    """One width's positive losses in the chosen units; rank is 0 for the best seed, 1 for the worst."""
    if units == "log":
        return np.log10(losses)
    if units == "loss":
        return np.asarray(losses, dtype=float)
    if units == "rank":
        order = np.argsort(np.argsort(losses, kind="stable"), kind="stable")
        return order / max(len(losses) - 1, 1)
    raise ValueError(f"units must be one of {', '.join(UNITS)}; got {units!r}")


@dataclass(frozen=True)
class WidthSeeds:
    """One width's seed distribution."""

    width: int
    n_params: int
    seeds: int  # finished models with a finite, positive loss
    diverged: int
    quantiles: tuple[float, ...]  # at QUANTILES, in the analysis's units
    median_loss: float
    best_of: dict[int, float]  # k → expected best loss of k seeds, for the k of BEST_OF this width allows
    fraction_outside: float  # of the models outside the main basin (analysis.BASIN_GAP)
    lucky: TailIndex | None
    unlucky: TailIndex | None
    tail_note: str | None  # why the tails were not estimated

    @property
    def iqr(self) -> float:
        return self.quantiles[3] - self.quantiles[1]


@dataclass(frozen=True)
class Trend:
    """quantity ∝ x^slope across widths, by least squares in log–log, with a seed-bootstrap 95% CI."""

    slope: float
    ci_low: float
    ci_high: float
    points: int

    @property
    def direction(self) -> str:
        """shrinks / grows when the whole CI is below / above 0; stays otherwise."""
        if self.ci_high < 0:
            return "shrinks"
        if self.ci_low > 0:
            return "grows"
        return "stays"


@dataclass(frozen=True)
class SeedsAnalysis:
    units: str
    spread_units: str  # the units the spread was measured in: rank falls back to log
    x_axis: str
    widths: list[WidthSeeds]
    median_fit: PowerLawFit | None  # the median loss against x: the α and CI of `scaletui fit`
    spread_trend: Trend | None  # the IQR in spread_units against x
    verdict: list[str]
    losses: dict[int, np.ndarray] = field(default_factory=dict)  # each width's finite, positive losses (pictures)


def width_seeds(width: int, n_params: int, losses: np.ndarray, diverged: int, units: str) -> WidthSeeds:
    """The distribution of one width's finite, positive losses."""
    losses = np.asarray(losses, dtype=float)
    losses = losses[np.isfinite(losses) & (losses > 0)]
    nan = float("nan")
    if losses.size == 0:
        return WidthSeeds(
            width,
            n_params,
            0,
            diverged,
            (nan,) * len(QUANTILES),
            nan,
            {},
            nan,
            None,
            None,
            "no finished model with a finite loss",
        )
    quantiles = tuple(float(q) for q in np.quantile(in_units(losses, units), QUANTILES))
    best = {k: expected_best_of(losses, k) for k in BEST_OF if k <= losses.size}
    lucky = unlucky = None
    note = None
    tail_units = "log" if units == "rank" else units
    try:
        if losses.size < MIN_TAIL_SEEDS:
            raise ValueError(f"a tail index needs at least {MIN_TAIL_SEEDS} seeds; this width has {losses.size}")
        unlucky = hill_index(tail_values(losses, tail_units, "unlucky"), "unlucky", tail_k(losses.size))
        lucky = hill_index(tail_values(losses, tail_units, "lucky"), "lucky", tail_k(losses.size))
    except ValueError as exc:
        note = str(exc)
    return WidthSeeds(
        width,
        n_params,
        int(losses.size),
        diverged,
        quantiles,
        float(np.median(losses)),
        best,
        width_basins(width, losses).fraction_outside,
        lucky,
        unlucky,
        note,
    )


def _loglog_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares slopes of log y on log x, one per row of y (rows with a non-positive value are NaN)."""
    lx = np.log(x) - np.log(x).mean()
    with np.errstate(divide="ignore", invalid="ignore"):
        ly = np.log(y)
        slopes = (ly - ly.mean(axis=-1, keepdims=True)) @ lx / (lx @ lx)  # a zero IQR: −inf, then NaN
    return np.where(np.all(np.isfinite(ly), axis=-1), slopes, np.nan)


def _trend(x: np.ndarray, point: np.ndarray, boot: np.ndarray) -> Trend | None:
    if x.size < 2 or not np.all(point > 0):
        return None
    low, high, count = percentile_ci(_loglog_slopes(x, boot))
    return Trend(float(_loglog_slopes(x, point)), low, high, count)


def seed_trends(
    x: np.ndarray, groups: list[np.ndarray], spread_units: str, options: FitOptions
) -> tuple[PowerLawFit | None, Trend | None]:
    """The median fit and the IQR (in ``spread_units``) against x, both read off one set of seed resamples:
    the analysis's own draws (same stream, same order), so the median's α and CI are the ones ``fit`` and
    ``show`` print for the run. Every group with a seed is in the median fit, as in ``fit`` (a width left
    with one seed still has a median); the IQR trend takes the groups with two or more."""
    x = np.asarray(x, dtype=float)
    point_median = np.array([np.median(g) for g in groups])
    point_iqr = np.array([_iqr(in_units(g, spread_units)) for g in groups])
    boot_median, boot_quartiles = bootstrap_median_and_quantiles(
        groups, [in_units(g, spread_units) for g in groups], (0.25, 0.75), options.resamples, options.seed
    )  # spread units: log or loss, never rank
    boot_iqr = boot_quartiles[1] - boot_quartiles[0]
    median_fit = None
    if x.size >= 2:
        median_fit = fit_aggregates(x, point_median, boot_median, x_axis=options.x_axis)
    spread = np.array([g.size >= 2 for g in groups], dtype=bool)
    return median_fit, _trend(x[spread], point_iqr[spread], boot_iqr[:, spread])


def _iqr(values: np.ndarray, axis: int = -1) -> np.ndarray:
    q25, q75 = np.quantile(values, [0.25, 0.75], axis=axis)
    return q75 - q25


def _runs_of(labels: list[tuple[int, str]]) -> list[tuple[int, int, str]]:
    """Consecutive widths with the same label, as (first width, last width, label)."""
    spans: list[tuple[int, int, str]] = []
    for width, label in labels:
        if spans and spans[-1][2] == label:
            spans[-1] = (spans[-1][0], width, label)
        else:
            spans.append((width, width, label))
    return spans


def _span(first: int, last: int) -> str:
    return f"width {first}" if first == last else f"widths {first}–{last}"


def tail_sentence(widths: list[WidthSeeds], side: str) -> str:
    """Where each tail is heavy, thin or undecided, by runs of neighbouring widths."""
    labels = []
    for w in widths:
        tail = w.lucky if side == "lucky" else w.unlucky
        if tail is not None:
            labels.append((w.width, tail.verdict))
    what = "lucky tail (jackpots)" if side == "lucky" else "unlucky tail (failures)"
    if not labels:
        fewest = min((w.seeds for w in widths), default=0)
        return f"{what}: not estimated (Hill needs at least {MIN_TAIL_SEEDS} seeds per width; this run has {fewest})"
    parts = [f"{label} at {_span(a, b)}" for a, b, label in _runs_of(labels)]
    return f"{what}: " + ", ".join(parts)


def verdict_lines(widths: list[WidthSeeds], spread: Trend | None, spread_units: str, x_axis: str) -> list[str]:
    """The answer in sentences: the spread's direction with its CI, where each tail is heavy or thin, and a
    summary that judges the tails at the widest width that has them (the question is what scale does)."""
    used = [w for w in widths if w.seeds]
    if len(used) < 2:
        return ["too few widths with finished seeds to tell how the spread scales (need 2+)"]
    if spread is None:
        return ["some width's seeds all reached the same loss (an IQR of 0): no spread trend in these units"]
    axis = "N" if x_axis == "params" else "width"
    lines = [
        f"spread of {UNIT_LABELS[spread_units]} {spread.direction} with {axis} over "
        f"{_span(used[0].width, used[-1].width)}: IQR ∝ {axis}^{spread.slope:+.2f} "
        f"[{spread.ci_low:+.2f}, {spread.ci_high:+.2f}]",
        tail_sentence(used, "lucky"),
        tail_sentence(used, "unlucky"),
    ]
    widest = next((w for w in reversed(used) if w.lucky is not None and w.unlucky is not None), None)
    if widest is None:
        lines.append(f"no verdict on the tails; the spread alone {spread.direction}")
        return lines
    heavy = [t for t in (widest.lucky, widest.unlucky) if t is not None and t.verdict == "heavy"]
    if heavy:
        named = " and ".join(f"the {t.side} tail (index {t.index:.2g} ± {t.stderr:.1g})" for t in heavy)
        lines.append(
            f"extremistan at width {widest.width}: {named} is heavy, so a few seeds rule the mean; "
            "compare quantiles, not means"
        )
    elif spread.direction == "shrinks" and widest.lucky.verdict == widest.unlucky.verdict == "thin":
        lines.append(f"mediocristan: the spread shrinks with scale and both tails are thin at width {widest.width}")
    elif spread.direction == "grows":
        lines.append(f"not mediocristan: the spread grows with scale (tails at width {widest.width} not heavy)")
    else:
        lines.append("not settled by these seeds: more seeds per width would narrow the intervals")
    return lines


def analyze_seeds(run, options: FitOptions = FitOptions(), units: str = "log") -> SeedsAnalysis:
    """The seed distribution of a stored run (a :class:`scaletui.store.Run`), finished or still running.

    Uses every finished, finite model (the question is about all seeds, so ``exclude_unconverged`` does not
    apply); the trends and the verdict cover the widths in the options' range.
    """
    if units not in UNITS:
        raise ValueError(f"units must be one of {', '.join(UNITS)}; got {units!r}")
    models = run.models()
    counts = run.parameter_counts()
    widths, groups = [], {}
    for w in sorted(set(models.width.tolist())):
        mask = models.width == w
        losses = models.test_loss[mask & ~models.diverged]
        groups[w] = losses[np.isfinite(losses) & (losses > 0)]
        widths.append(
            width_seeds(
                w, counts.get(w, int(models.n_params[mask][0])), groups[w], int((mask & models.diverged).sum()), units
            )
        )
    spread_units = "log" if units == "rank" else units
    chosen = [w for w in widths if options.in_range(w.width) and w.seeds >= 1]
    x = np.array([w.width if options.x_axis == "width" else w.n_params for w in chosen], dtype=float)
    median_fit, spread_trend = (
        seed_trends(x, [groups[w.width] for w in chosen], spread_units, options) if chosen else (None, None)
    )
    chosen = [w for w in chosen if w.seeds >= 2]  # the spread and the tails need two seeds or more
    return SeedsAnalysis(
        units,
        spread_units,
        options.x_axis,
        widths,
        median_fit,
        spread_trend,
        verdict_lines(chosen, spread_trend, spread_units, options.x_axis),
        groups,
    )


def _tail_record(tail: TailIndex | None) -> dict[str, float | int | str | None]:
    if tail is None:
        return {"index": None, "stderr": None, "k": None, "verdict": None}
    return {"index": tail.index, "stderr": tail.stderr, "k": tail.k, "verdict": tail.verdict}


def width_record(w: WidthSeeds) -> dict[str, object]:
    """One width as plain values (NaN where undefined): the JSON of ``scaletui seeds`` and the CSV's row."""
    record: dict[str, object] = {"width": w.width, "n_params": w.n_params, "seeds": w.seeds, "diverged": w.diverged}
    record |= {f"q{round(q * 100)}": v for q, v in zip(QUANTILES, w.quantiles, strict=True)}
    record |= {"median_loss": w.median_loss, "fraction_outside_main_basin": w.fraction_outside}
    record |= {f"best_of_{k}": w.best_of.get(k, float("nan")) for k in BEST_OF}
    record |= {f"lucky_{key}": v for key, v in _tail_record(w.lucky).items()}
    record |= {f"unlucky_{key}": v for key, v in _tail_record(w.unlucky).items()}
    return record | {"tail_note": w.tail_note}


def _trend_record(trend: Trend | None) -> dict[str, object] | None:
    if trend is None:
        return None
    return {
        "slope": trend.slope,
        "ci_low": trend.ci_low,
        "ci_high": trend.ci_high,
        "resamples": trend.points,
        "direction": trend.direction,
    }


def seeds_record(run_id: str, analysis: SeedsAnalysis) -> dict[str, object]:
    """The whole analysis as plain values, for ``scaletui seeds --json``."""
    return {
        "run": run_id,
        "units": analysis.units,
        "spread_units": analysis.spread_units,
        "x_axis": analysis.x_axis,
        "tail_k_rule": "floor(sqrt(seeds))",
        "heavy_below": HEAVY_INDEX,
        "widths": [width_record(w) for w in analysis.widths],
        "median_fit": None
        if analysis.median_fit is None
        else {
            "alpha": analysis.median_fit.alpha,
            "ci_low": analysis.median_fit.ci_low,
            "ci_high": analysis.median_fit.ci_high,
            "r2": analysis.median_fit.r2,
        },
        "spread_trend": _trend_record(analysis.spread_trend),
        "verdict": analysis.verdict,
    }
