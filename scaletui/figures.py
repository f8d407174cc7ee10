"""Pictures of a run for papers and slides: the loss and variance panels as a PNG, SVG or PDF file.

Drawn with matplotlib, an optional extra (``pip install 'scaletui[plot]'``): the terminal plots need none,
and a figure is only ever asked for by ``scaletui plot --out``. The numbers are the run's analysis with the
options given, as ``scaletui fit`` computes them. Nothing here imports Textual.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scaletui.analysis import RunAnalysis
from scaletui.store import ModelTable

FORMATS = (".png", ".svg", ".pdf")


class FiguresUnavailable(RuntimeError):
    """matplotlib is not installed."""


def save_figure(analysis: RunAnalysis, models: ModelTable, title: str, out: Path) -> None:
    """Loss vs N (each seed, the aggregate, the fit) beside output variance and bias², saved to ``out``."""
    if out.suffix.lower() not in FORMATS:
        raise ValueError(f"{out.name}: give a file ending in {', '.join(FORMATS)}")
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display needed, and never a GUI window from a CLI command
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise FiguresUnavailable("`scaletui plot` draws with matplotlib: pip install 'scaletui[plot]'") from exc
    by_params = analysis.x_axis == "params"
    axis = "parameters N" if by_params else "width"
    figure, (loss_ax, var_ax) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    try:
        ok = np.isfinite(models.test_loss) & (models.test_loss > 0) & ~models.diverged
        x_of = (models.n_params if by_params else models.width).astype(float)
        loss_ax.scatter(x_of[ok], models.test_loss[ok], s=8, color="0.6", label="seeds")
        usable = [s for s in analysis.widths if s.used and s.value(analysis.aggregate) > 0]
        xs = np.array([analysis.x_of(s) for s in usable], dtype=float)
        if usable:
            ys = [s.value(analysis.aggregate) for s in usable]
            loss_ax.plot(xs, ys, "o-", color="tab:blue", label=analysis.aggregate)
        if analysis.fit is not None and xs.size:
            xr = np.geomspace(xs.min(), xs.max(), 50)
            fit = analysis.fit
            label = f"fit α = {fit.alpha:.3f} [{fit.ci_low:.3f}, {fit.ci_high:.3f}]"
            loss_ax.plot(xr, fit.predict(xr), "--", color="tab:red", label=label)
        loss_ax.set(xscale="log", yscale="log", xlabel=axis, ylabel="test loss", title="test loss")
        loss_ax.legend()
        n_params = {s.width: s.n_params for s in analysis.widths}
        rows = [v for v in analysis.variance if v.variance > 0]
        vx = np.array([n_params[v.width] if by_params else v.width for v in rows], dtype=float)
        if rows:
            var_ax.plot(vx, [v.variance for v in rows], "s-", color="tab:green", label="V (across seeds)")
            bias = [(x, v.bias2) for x, v in zip(vx, rows, strict=True) if v.bias2 > 0]
            if bias:
                var_ax.plot(*zip(*bias, strict=True), "^-", color="tab:purple", label="bias²")
        slope = analysis.variance_slope
        if slope is not None and vx.size:
            xr = np.geomspace(vx.min(), vx.max(), 50)
            name = "N" if by_params else "width"
            var_ax.plot(xr, slope.predict(xr), "--", color="tab:red", label=f"V ∝ {name}^-{slope.alpha:.2f}")
        var_ax.set(xscale="log", yscale="log", xlabel=axis, ylabel="output", title="variance and bias²")
        if rows:
            var_ax.legend()
        figure.suptitle(title)
        figure.savefig(out)
    finally:
        plt.close(figure)
