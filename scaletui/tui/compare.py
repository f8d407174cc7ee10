"""Compare runs: their median test loss vs N on one log–log plot, and each fit's α, CI and R² in a table.

The fits (with a bootstrap CI) are computed in a thread worker that only reads the store. plotext keeps
global state, so the picture is drawn on the UI thread, by the plot (tui/plot.py) for its own size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Header
from textual.worker import Worker, WorkerState

from scaletui import plots
from scaletui.analysis import DEFAULT_RESAMPLES, PowerLawFit, analyze_run
from scaletui.config import widths_label
from scaletui.grid import slices
from scaletui.present import count
from scaletui.store import Run, StoreError
from scaletui.tui.plot import Plot, ansi
from scaletui.tui.textual_patches import KeysFooter, MeasuredDataTable


@dataclass(frozen=True)
class RunFit:
    """One run's per-width medians and loss fit, as plain data for the UI thread."""

    id: str
    name: str
    widths: str
    n_params: tuple[int, ...]
    medians: tuple[float, ...]
    fit: PowerLawFit | None
    error: str | None  # why there is no fit, or why the run cannot be read
    verdict: str | None = None  # 'not one power law: local slopes …' when the local slopes disagree
    curve: str = ""  # in a run over a grid: the data size and depth of this curve against N ("D=64")


def read_fits(run_dir: Path) -> list[RunFit]:
    """Fit one run against N: one curve, or one per data size and depth of a grid, so runs with different
    grids compare curve by curve; a run that cannot be read comes back with its reason instead of raising."""
    try:
        run = Run(run_dir)
        # the default options: the α that `scaletui fit` prints, curve by curve
        curves = [(part.label, analyze_run(part, with_outputs=False)) for part in slices(run, "width")]
    except StoreError as exc:
        return [RunFit(run_dir.name, "", "", (), (), None, str(exc))]
    fits = []
    for label, analysis in curves:
        verdict = analysis.local.verdict() if analysis.local is not None else None
        points = [s for s in analysis.widths if s.used and math.isfinite(s.median) and s.median > 0]
        fits.append(
            RunFit(
                id=run.id,
                name=run.config.name,
                widths=widths_label(run.config.model.widths),
                n_params=tuple(s.n_params for s in points),
                medians=tuple(s.median for s in points),
                fit=analysis.fit,
                error=analysis.fit_error,
                verdict=verdict,
                curve=label,
            )
        )
    return fits


def legend_titles(fits: list[RunFit]) -> list[str]:
    """Each run's name, or its id where runs share a name, so that every legend entry is distinct; a grid's
    curves add their data size and depth."""
    names = {f.name for f in fits if sum(g.name == f.name and g.id != f.id for g in fits) == 0}
    return [(f.name if f.name and f.name in names else f.id) + (f" · {f.curve}" if f.curve else "") for f in fits]


def fit_label(title: str, fit: PowerLawFit | None) -> str:
    """``"name: α=1.02 [0.95, 1.10]"``, the CI left out when there is none, or ``"name: no fit"``."""
    if fit is None:
        return f"{title}: no fit"
    ci = f" [{fit.ci_low:.2f}, {fit.ci_high:.2f}]" if math.isfinite(fit.ci_low) else ""
    return f"{title}: α={fit.alpha:.2f}{ci}"


def compare_plot(fits: list[RunFit], width: int, height: int) -> str:
    """Median test loss vs N for each run in its own colour, with its fitted law dotted beside it."""
    titles = legend_titles(fits)
    curves = [plots.Curve(fit_label(t, f.fit), f.n_params, f.medians, f.fit) for f, t in zip(fits, titles, strict=True)]
    return plots.compare_plot(curves, width, height)


class FitsComputed(Message, bubble=False):
    """The worker fitted every compared run."""

    def __init__(self, fits: list[RunFit]) -> None:
        super().__init__()
        self.fits = fits


class CompareScreen(Screen[None]):
    """Several runs' scaling laws side by side: one plot, one table row per run."""

    BINDINGS = [Binding("escape", "back", "Back")]

    DEFAULT_CSS = """
    CompareScreen #plot {
        min-height: 8;
    }
    CompareScreen #fits {
        height: auto;
        max-height: 40%;
    }
    """

    def __init__(self, runs: list[Path]) -> None:
        super().__init__()
        self.runs = runs

    def compose(self) -> ComposeResult:
        yield Header()
        yield Plot(id="plot")
        table: DataTable[str | Text] = MeasuredDataTable(cursor_type="row", id="fits")
        table.add_columns("name", "α", "95% CI", "R²", "widths", "id", "note")  # the long id after the numbers
        yield table
        yield KeysFooter()

    def on_mount(self) -> None:
        self.sub_title = f"comparing {count(len(self.runs), 'run')}"
        fitting = Text(f"fitting {count(len(self.runs), 'run')} ({DEFAULT_RESAMPLES} bootstrap resamples)…")
        self.query_one(Plot).show("fitting", lambda width, height: fitting)
        self.compute_fits()

    @work(thread=True, exclusive=True, group="compare-fits", exit_on_error=False)
    def compute_fits(self) -> None:
        self.post_message(FitsComputed([fit for path in self.runs for fit in read_fits(path)]))

    @on(FitsComputed)
    def show_fits(self, message: FitsComputed) -> None:
        fits = message.fits
        self.query_one(Plot).show(tuple((f.id, f.curve) for f in fits), ansi(lambda w, h: compare_plot(fits, w, h)))
        table = self.query_one("#fits", DataTable)
        table.clear()
        for run_fit in message.fits:
            fit = run_fit.fit
            ci = f"[{fit.ci_low:.3f}, {fit.ci_high:.3f}]" if fit and math.isfinite(fit.ci_low) else "–"
            table.add_row(
                run_fit.name + (f" · {run_fit.curve}" if run_fit.curve else ""),
                Text(f"{fit.alpha:.3f}" if fit else "–", justify="right"),
                ci,
                f"{fit.r2:.4f}" if fit else "–",
                run_fit.widths,
                run_fit.id,
                Text(run_fit.error or run_fit.verdict or "", style="yellow"),
            )

    @on(Worker.StateChanged)
    def worker_failed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            self.notify(f"compare failed: {event.worker.error}", severity="error", markup=False)

    def action_back(self) -> None:
        self.app.pop_screen()
