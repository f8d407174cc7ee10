"""Log–log plots as text, shared by ``scaletui show`` and the TUI.

plotext's own log scales misbehave on repeated redraws, so every plot here draws log10 values on
linear axes and writes its own tick labels (1e-3, 10, 1k…). plotext keeps global state: call these
from one thread at a time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import plotext as plt

from scaletui.analysis import BudgetAnalysis, PowerLawFit, RunAnalysis, WidthBudget
from scaletui.lottery import TicketReport
from scaletui.seeds import UNIT_LABELS, SeedsAnalysis
from scaletui.store import ModelTable


def _si(value: float) -> str:
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:g}{suffix}"
    return f"{value:g}"


def log_ticks(low: float, high: float, large_numbers: bool = False) -> tuple[list[float], list[str]]:
    """Tick positions (log10 values) and labels for a log axis spanning [low, high] in log10 units; at least
    two, so that an axis can be read (the ends themselves when no round value falls in between)."""
    first, last = math.floor(low), math.ceil(high)
    step = max(1, math.ceil((last - first) / 6))
    decades = list(range(first, last + 1, step))
    ticks: list[float] = [float(d) for d in decades if low - 1e-9 <= d <= high + 1e-9]
    if len(ticks) < 2:  # less than a decade in view: add 2× and 5× ticks
        ticks = [
            math.log10(m * 10.0**d)
            for d in range(first - 1, last + 1)
            for m in (1, 2, 5)
            if low - 1e-9 <= math.log10(m * 10.0**d) <= high + 1e-9
        ]
    if len(ticks) < 2 and high > low:
        ticks = [low, high]
    if large_numbers:
        labels = [_si(float(f"{10**t:.2g}")) for t in ticks]
    else:
        digits = 0 if all(abs(10**t - float(f"{10**t:.0e}")) < 1e-9 * 10**t for t in ticks) else 1
        labels = [f"{10**t:.{digits}e}".replace("e-0", "e-").replace("e+0", "e") for t in ticks]
    return ticks, labels


def linear_ticks(low: float, high: float, most: int = 6, large_numbers: bool = True) -> tuple[list[float], list[str]]:
    """Round tick positions (1, 2 or 5 × 10^k apart) on a linear axis over [low, high], at most ``most`` of
    them, labelled as the log axes' large numbers are (20k, 1.5M), or as short decimals: plotext's own are
    the raw values ('765000 1510000', unlike the budget panel's step axis beside it) or '-0.0'."""

    def label(t: float) -> str:
        return _si(float(f"{t:.3g}")) if large_numbers else f"{round(t, 9) + 0.0:g}"  # + 0.0: no "-0"

    if high <= low:
        return [low], [label(low)]
    raw = (high - low) / max(most - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    ticks = [first + i * step for i in range(int((high - first) // step) + 1)]
    return ticks, [label(t) for t in ticks]


def _span(values: list[float]) -> tuple[float, float]:
    """The range an axis shows: the data's, or a decade around a single value (one width, one point)."""
    low, high = min(values), max(values)
    return (low - 0.5, high + 0.5) if high - low < 1e-9 else (low, high)


def _thinned(xs: np.ndarray, ys: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """The points of a scatter that can show: with more points than the plot has characters, one point per
    cell of a grid four times finer than the characters each way (over the points' own span), so 10⁵ seeds
    cost the UI thread what a few thousand do. plotext draws a point per character, so a dropped point
    shared its character with a kept one, save where a fine cell straddles two characters (a dot's edge)."""
    if xs.size <= width * height:
        return xs, ys
    cells = []
    for values, count in ((xs, 4 * width), (ys, 4 * height)):
        low, span = values.min(), np.ptp(values)
        cells.append(
            np.zeros(values.size, dtype=np.int64) if span == 0 else ((values - low) / span * count).astype(int)
        )
    _, keep = np.unique(cells[0] * (4 * height + 1) + cells[1], return_index=True)
    return xs[keep], ys[keep]


def _start(width: int, height: int, color: bool, title: str) -> None:
    plt.clf()
    plt.plotsize(width, height)
    plt.theme("pro" if color else "clear")
    plt.title(title)


def _finish(xs: list[float], ys: list[float], xlabel: str, height: int, legend_rows: int) -> str:
    """Ticks on both log axes, and room above the data for the legend, so that no line runs through it."""
    if xs and ys:
        x_low, x_high = _span(xs)
        y_low, y_high = _span(ys)
        xt, xl = log_ticks(x_low, x_high, large_numbers=True)
        yt, yl = log_ticks(y_low, y_high)
        plt.xticks(xt, xl)
        plt.yticks(yt, yl)
        plt.xlim(x_low, x_high)
        rows = max(height - 5, 1)  # the plot's own rows: less the title, the frame, the ticks and the label
        legend_rows = min(legend_rows, rows // 3)  # a long legend in a short plot would leave no room for data
        headroom = (y_high - y_low) * legend_rows / max(rows - legend_rows, 1)
        plt.ylim(y_low, y_high + headroom)
    plt.xlabel(xlabel)
    return plt.build()


def loss_plot(analysis: RunAnalysis, models: ModelTable, width: int, height: int, color: bool = True) -> str:
    """Test loss vs width or N: each seed, the median, the fitted law, and theory slopes from its start."""
    by_params = analysis.x_axis == "params"
    _start(width, height, color, f"test loss vs {'parameters N' if by_params else 'width'} (log-log)")
    ok = np.isfinite(models.test_loss) & (models.test_loss > 0) & ~models.diverged
    x_of = models.n_params if by_params else models.width
    xs = np.log10(x_of[ok].astype(float))
    ys = np.log10(models.test_loss[ok])
    all_x, all_y = ([float(xs.min()), float(xs.max())], [float(ys.min()), float(ys.max())]) if xs.size else ([], [])
    legend = 0
    if xs.size:
        plt.scatter(*(v.tolist() for v in _thinned(xs, ys, width, height)), marker="dot", color="gray", label="seeds")
        legend += 1
    usable = [s for s in analysis.widths if s.used and s.value(analysis.aggregate) > 0]
    if usable:
        mx = [math.log10(analysis.x_of(s)) for s in usable]
        my = [math.log10(s.value(analysis.aggregate)) for s in usable]
        plt.plot(mx, my, marker="braille", color="cyan", label=analysis.aggregate)
        legend += 1
        fit = analysis.fit
        if fit is not None and fit.points:
            xr = np.linspace(min(mx), max(mx), 40)
            fy = np.log10(fit.predict(10**xr))
            # Each line its own marker as well as its colour: piped output (`show | less`) has no colour.
            plt.plot(xr.tolist(), fy.tolist(), marker="·", color="red", label=f"fit α={fit.alpha:.2f}")
            legend += 1
            anchor_x, anchor_y = float(xr[0]), float(fy[0])
            floor = min(all_y)
            for slope, marker in zip(sorted(set(analysis.theory.values())), ("-", "+", "x"), strict=False):
                x_end, y_end = max(mx), anchor_y - slope * (max(mx) - anchor_x)
                if y_end < floor:  # stop the reference line at the bottom of the data
                    x_end, y_end = anchor_x + (anchor_y - floor) / slope, floor
                plt.plot([anchor_x, x_end], [anchor_y, y_end], marker=marker, color="yellow", label=f"α={slope:g}")
                legend += 1
    return _finish(all_x, all_y, "N" if by_params else "width", height, legend)


def variance_plot(analysis: RunAnalysis, width: int, height: int, color: bool = True) -> str:
    """Output variance V and bias² vs width (or N), with the fitted variance slope."""
    by_params = analysis.x_axis == "params"
    _start(width, height, color, "output variance V and bias² (log-log)")
    n_params = {s.width: s.n_params for s in analysis.widths}
    rows = [v for v in analysis.variance if v.variance > 0]
    xs = [math.log10(n_params[v.width] if by_params else v.width) for v in rows]
    vs = [math.log10(v.variance) for v in rows]
    bs = [math.log10(v.bias2) for v in rows if v.bias2 > 0]
    bx = [x for x, v in zip(xs, rows, strict=True) if v.bias2 > 0]
    if xs:
        plt.plot(xs, vs, marker="braille", color="green", label="V (across seeds)")
    if bx:
        plt.plot(bx, bs, marker="+", color="magenta", label="bias²")
    fit = analysis.variance_slope
    axis = "N" if by_params else "width"
    if fit is not None and xs:
        xr = np.linspace(min(xs), max(xs), 40)
        plt.plot(
            xr.tolist(),
            np.log10(fit.predict(10**xr)).tolist(),
            marker="·",
            color="red",
            label=f"V ∝ {axis}^{-fit.alpha:.2f}",
        )
    legend = bool(xs) + bool(bx) + (fit is not None and bool(xs))
    return _finish(xs + bx, vs + bs, axis, height, legend)


def curves_plot(budgets: list[WidthBudget], width: int, height: int, color: bool = True) -> str:
    """Each width's aggregate test loss against step (log loss, linear steps): the curves as they train."""
    _start(width, height, color, "median test loss vs step, per width")
    all_x: list[float] = []
    all_y: list[float] = []
    for b in budgets:
        ys = np.log10(b.aggregate).tolist()
        plt.plot(b.steps.tolist(), ys, marker="braille", label=f"w={b.width}")
        all_x += b.steps.tolist()
        all_y += ys
    if all_y:
        yt, yl = log_ticks(min(all_y), max(all_y))
        plt.yticks(yt, yl)
        xt, xl = linear_ticks(min(all_x), max(all_x))
        plt.xticks(xt, xl)
    plt.xlabel("step")
    return plt.build()


def budget_loss_plot(budget: BudgetAnalysis, width: int, height: int, color: bool = True) -> str:
    """Each width's aggregate test loss against the budget, both axes logarithmic."""
    _start(width, height, color, f"{budget.options.aggregate} test loss vs step (log-log)")
    all_x: list[float] = []
    all_y: list[float] = []
    for b in budget.widths:
        xs, ys = np.log10(b.steps).tolist(), np.log10(b.aggregate).tolist()
        plt.plot(xs, ys, marker="braille", label=f"w={b.width}")
        all_x += xs
        all_y += ys
    return _finish(all_x, all_y, "step", height, len(budget.widths))


def alpha_step_plot(budget: BudgetAnalysis, width: int, height: int, color: bool = True) -> str:
    """α against the budget (log steps) with its 95% CI band drawn by its edges."""
    axis = "N" if budget.options.x_axis == "params" else "width"
    _start(width, height, color, f"α vs {axis} at each step, 95% CI")
    if budget.steps.size:
        xs = np.log10(budget.steps).tolist()
        plt.plot(xs, budget.ci_high.tolist(), marker="·", color="gray", label="95% CI")
        plt.plot(xs, budget.ci_low.tolist(), marker="·", color="gray")
        plt.plot(xs, budget.alpha.tolist(), marker="braille", color="cyan", label="α")
        xt, xl = log_ticks(min(xs), max(xs), large_numbers=True)
        plt.xticks(xt, xl)
        shown = [v for v in (*budget.ci_low, *budget.ci_high, *budget.alpha) if math.isfinite(v)]
        if shown:
            yt, yl = linear_ticks(min(shown), max(shown), large_numbers=False)
            plt.yticks(yt, yl)
    plt.xlabel("step")
    return plt.build()


COLORS = ("cyan", "red", "green", "yellow", "magenta", "blue")
MARKERS = ("braille", "•", "+", "x", "o", "*")  # a curve's own marker too: without colour, curves stay apart


@dataclass(frozen=True)
class Curve:
    """One labelled line of a log–log plot of several (runs compared; later, one per data size or depth)."""

    label: str  # the legend's entry
    x: tuple[float, ...]  # positive: N, width, …
    y: tuple[float, ...]  # positive: a loss
    fit: PowerLawFit | None = None  # drawn dotted beside the line, in its colour


def curves_vs_n_plot(
    curves: list[Curve], width: int, height: int, title: str, color: bool = True, x_label: str = "N"
) -> str:
    """Several curves on log–log axes against N (or ``x_label``: width, D, depth), each in its colour and
    marker with its fitted law dotted."""
    _start(width, height, color, title)
    all_x: list[float] = []
    all_y: list[float] = []
    for i, curve in enumerate(curves):
        if not curve.x:
            continue
        hue, marker = COLORS[i % len(COLORS)], MARKERS[i % len(MARKERS)]
        xs = [math.log10(x) for x in curve.x]
        ys = [math.log10(y) for y in curve.y]
        plt.plot(xs, ys, marker=marker, color=hue, label=curve.label)
        if curve.fit is not None:
            xr = np.linspace(min(xs), max(xs), 40)
            plt.plot(xr.tolist(), np.log10(curve.fit.predict(10**xr)).tolist(), marker="·", color=hue)
        all_x += xs
        all_y += ys
    return _finish(all_x, all_y, x_label, height, sum(1 for curve in curves if curve.x))


def compare_plot(curves: list[Curve], width: int, height: int, color: bool = True) -> str:
    """Several runs' median loss vs N, each a curve with its fitted law."""
    return curves_vs_n_plot(curves, width, height, "median test loss vs parameters N (log-log)", color)


def ticket_plot(report: TicketReport, width: int, height: int, color: bool = True) -> str:
    """Each hidden neuron as a point (w, b), paired ones apart from the rest: mirror pairs sit at ±w."""
    plt.clf()
    plt.plotsize(width, height)
    plt.theme("pro" if color else "clear")
    suffix = " (first input coordinate)" if report.input_weights.shape[1] > 1 else ""
    # The axes are named in the title: plotext sets a y label below the axis, where it reads as the x label.
    plt.title(f"hidden neurons: bias b (up) vs input weight w (across){suffix}")
    w, b, paired = report.input_weights[:, 0], report.biases, report.paired
    if (~paired).any():
        plt.scatter(w[~paired].tolist(), b[~paired].tolist(), marker="dot", color="gray", label="unpaired")
    if paired.any():
        plt.scatter(w[paired].tolist(), b[paired].tolist(), marker="x", color="cyan", label="in a mirror pair")
    plt.vertical_line(0, color="gray")
    plt.xlabel("w")
    return plt.build()


def seeds_plot(analysis: SeedsAnalysis, width: int, height: int, color: bool) -> str:
    """Every seed's final loss as a strip per width (log–log; rank units: the rank within the width), with
    the 5–95% and 25–75% quantile bands, the median and the expected best of 10 seeds across widths."""
    axis = "N" if analysis.x_axis == "params" else "width"
    title = f"seeds per width ({UNIT_LABELS[analysis.units]})"
    _start(width, height, color, title)
    shown = [w for w in analysis.widths if w.seeds and w.width in analysis.losses]
    if not shown:
        return plt.build()
    rank = analysis.units == "rank"
    xs_all: list[float] = []
    ys_all: list[float] = []
    centres = [math.log10(w.width if axis == "width" else w.n_params) for w in shown]
    spacing = min(np.diff(centres)) if len(centres) > 1 else 1.0
    for centre, w in zip(centres, shown, strict=True):
        losses = np.sort(analysis.losses[w.width])
        ys = np.linspace(0, 1, losses.size) if rank else np.log10(losses)
        # Spread the strip sideways by rank, deterministically: a picture, not a second random draw.
        jitter = (np.arange(losses.size) * 0.618034 % 1 - 0.5) * 0.5 * spacing
        xs = centre + jitter
        strip = _thinned(xs, ys, max(1, width // len(shown)), height)  # a strip spans at most its share of columns
        plt.scatter(*(v.tolist() for v in strip), marker="dot", color="gray")
        xs_all += [float(xs.min()), float(xs.max())]
        ys_all += [float(ys.min()), float(ys.max())]
    if not rank:
        bands = np.array([w.quantiles for w in shown])  # (widths, 5) in log10 loss or loss
        logs = bands if analysis.units == "log" else np.log10(np.clip(bands, 1e-300, None))
        for column, label, style in (
            (0, "q5–q95", "red"),
            (1, "q25–q75", "orange"),
            (3, None, "orange"),
            (4, None, "red"),
        ):
            plt.plot(centres, logs[:, column].tolist(), color=style, marker="·", label=label)
        plt.plot(centres, logs[:, 2].tolist(), color="cyan", marker="●", label="median")
        best = [(c, math.log10(w.best_of[10])) for c, w in zip(centres, shown, strict=True) if 10 in w.best_of]
        if best:
            plt.plot([c for c, _ in best], [b for _, b in best], color="green", marker="▼", label="best of 10")
            ys_all += [b for _, b in best]
        ys_all += logs[np.isfinite(logs)].tolist()
    if rank:
        xt, xl = log_ticks(min(xs_all), max(xs_all), large_numbers=True)
        plt.xticks(xt, xl)
        plt.xlabel(axis)
        return plt.build()
    return _finish(xs_all, ys_all, axis, height, 4 if best else 3)
