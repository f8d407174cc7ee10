"""Snapshots of a run for the live view, taken off the UI thread.

A snapshot is everything the explorer draws, read from the store in one go. Analysis is recomputed only
when the set of finished models changes, the fit options are changed or the run stops being live; progress
is read on every tick, the loss curves (a table that grows all run long) at most every CURVES_SECONDS
unless the analysis changed. Each result carries a version, unique in the process, that a picture of it is
keyed by: a plot is drawn again exactly when what it shows was read or computed again. While the run is
live the bootstrap uses LIVE_RESAMPLES (the screen says so); once it is not, the analysis is exactly
``scaletui fit``'s with the same options: the defaults unless the explorer's fit controls (ctrl+g) changed
them, same resamples, same seed. Nothing here imports Textual.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from scaletui.analysis import (
    BudgetAnalysis,
    FitOptions,
    RunAnalysis,
    WidthBudget,
    alpha_budget,
    analyze_run,
    width_budgets,
)
from scaletui.config import Config, Group
from scaletui.grid import RunSlice, slices
from scaletui.store import ModelTable, Run, RunStatus

LIVE_RESAMPLES = 500  # while a run is live its analysis is redone often: a cheaper bootstrap, marked on screen
CURVES_SECONDS = 2.0  # new curve points alone are read, and α(step) refitted on them, at most this often
VERSIONS = itertools.count(1)  # one sequence for every watcher: a version never names two runs' results


def watch_options(options: FitOptions, live: bool) -> FitOptions:
    """The explorer's options as chosen (the defaults unless its fit controls changed them), with fewer
    resamples while the run is live."""
    return replace(options, resamples=LIVE_RESAMPLES) if live else options


@dataclass
class RunSnapshot:
    """What the explorer shows of one run at one moment."""

    run_dir: Path
    run_id: str
    config: Config
    status: RunStatus
    models: ModelTable  # the selected curve's (every model of a run over width alone)
    analysis: RunAnalysis  # the selected curve's
    analysis_version: int  # a new number whenever the analysis was redone
    budgets: list[WidthBudget]  # per width, the aggregate test loss at every evaluated step
    budget: BudgetAnalysis  # α(step) on those curves
    curves_version: int  # a new number whenever the curves were read again (and α(step) refitted on them)
    fraction: float
    steps_done: dict[Group, int]  # each (width, data size, depth)'s step
    events: list[tuple[int, float, str, str]] = field(default_factory=list)
    checkpoints: list[dict] = field(default_factory=list)  # the unfinished shards' latest checkpoints
    # Every curve of the run along the chosen axis, labelled by its other coordinates (one, unlabelled, for a
    # run over width alone), and which of them the table, the α line and the budget show.
    curves: list[tuple[str, RunAnalysis]] = field(default_factory=list)
    selected: int = 0
    eta: float | None = None  # seconds left, as the store estimates them; None until a rate is measured


class RunWatcher:
    """Follows one run directory; call :meth:`snapshot` from a worker thread.

    The heavy parts (the run's analysis and α(step), both bootstraps) run here, off the UI thread, and
    only when what they depend on changed: the analysis when the finished models, the options or liveness
    change; the curves and α(step) then too, and when new curve points arrived, but then at most every
    CURVES_SECONDS. Reading less matters beyond this thread: it holds the interpreter's lock while it
    builds rows, and every millisecond of that delays the UI thread's next frame.
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.last_event = 0
        self._analysis_key: tuple[int, FitOptions, bool] | None = None
        self._analyses: list[tuple[str, RunAnalysis]] = []
        self._analysis: RunAnalysis | None = None
        self._analysis_version = 0
        self._curves_key: tuple[tuple[int, FitOptions, bool], int, int] | None = None  # + points, curve
        self._budgets: list[WidthBudget] = []
        self._budget: BudgetAnalysis | None = None
        self._curves_at = 0.0
        self._curves_version = 0

    def snapshot(self, chosen: FitOptions, curve: int = 0) -> RunSnapshot:
        """Raises StoreError when the run cannot be read (damaged or deleted). ``curve`` picks which of a grid's
        curves along the chosen axis the table, the α line and the budget show."""
        run = Run(self.run_dir)
        status = run.status()
        models = run.models()
        options = watch_options(chosen, status.is_live)
        key = (len(models), chosen, status.is_live)
        along: list[RunSlice] = slices(run, chosen.axis)
        selected = min(max(curve, 0), len(along) - 1)
        if self._analysis is None or key != self._analysis_key:
            self._analyses = [(part.label, analyze_run(part, options)) for part in along]
            self._analysis_key = key
            self._analysis_version = next(VERSIONS)
        self._analysis = self._analyses[selected][1]
        now = time.monotonic()
        moved = self._curves_key is None or key != self._curves_key[0] or selected != self._curves_key[2]
        if moved or now - self._curves_at >= CURVES_SECONDS:
            part = along[selected]
            curves = part.curves()
            curves_key = (key, len(curves.step), selected)
            if curves_key != self._curves_key:
                self._budgets = width_budgets(curves, part.parameter_counts(), options.aggregate)
                # α(step) is a plain power law at each step (as `fit --budget` refuses --offset): no offset.
                self._budget = alpha_budget(self._budgets, replace(options, offset=False))
                self._curves_key = curves_key
                self._curves_version = next(VERSIONS)
            self._curves_at = now
        events = run.events(self.last_event)
        if events:
            self.last_event = events[-1][0]
        fraction, steps = run.progress_fraction()
        assert self._budget is not None  # read above on the first snapshot
        if len(along) > 1:  # the selected curve's own models, for its per-seed points
            models = along[selected].models()
        return RunSnapshot(self.run_dir, run.id, run.config, status, models, self._analysis,
                           self._analysis_version, self._budgets, self._budget, self._curves_version, fraction,
                           steps, events, run.checkpoints(), self._analyses, selected,
                           run.remaining_seconds(status))  # fmt: skip
