"""Snapshots of a run for the live view, taken off the UI thread.

A snapshot is everything the explorer draws, read from the store in one go. Analysis is recomputed only
when the set of finished models changes, the fit options are changed or the run stops being live; loss curves
and progress are read on every tick. While the run is live the bootstrap uses LIVE_RESAMPLES (the screen
says so); once it is not, the analysis is exactly ``scaletui fit``'s with the same options: the defaults
unless the explorer's fit controls (ctrl+g) changed them, same resamples, same seed. Nothing here imports Textual.
"""

from __future__ import annotations

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
from scaletui.config import Config
from scaletui.store import ModelTable, Run, RunStatus

LIVE_RESAMPLES = 500  # while a run is live its analysis is redone often: a cheaper bootstrap, marked on screen
BUDGET_SECONDS = 2.0  # new curve points alone refit α(step) at most this often


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
    models: ModelTable
    analysis: RunAnalysis
    budgets: list[WidthBudget]  # per width, the median test loss at every evaluated step: read every tick
    budget: BudgetAnalysis  # α(step): redone when models or curves changed, at most every BUDGET_SECONDS
    budget_version: int  # counts the refits of α(step), so a picture of it knows when it is out of date
    curve_points: int
    fraction: float
    steps_done: dict[int, int]
    events: list[tuple[int, float, str, str]] = field(default_factory=list)
    checkpoints: list[dict] = field(default_factory=list)  # the unfinished shards' latest checkpoints

    @property
    def key(self) -> tuple[int, int, str, int]:
        """Changes whenever something drawn from finished models or curves would change."""
        return len(self.models), self.curve_points, self.status.status, self.budget_version


class RunWatcher:
    """Follows one run directory; call :meth:`snapshot` from a worker thread.

    The heavy parts (the run's analysis and α(step), both bootstraps) run here, off the UI thread, and
    only when what they depend on changed: the analysis when the finished models, the axis or liveness
    change; α(step) also when new curve points arrived, but then at most every BUDGET_SECONDS.
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.last_event = 0
        self._analysis_key: tuple[int, FitOptions, bool] | None = None
        self._analysis: RunAnalysis | None = None
        self._budget_key: tuple[tuple[int, FitOptions, bool], int] | None = None
        self._budget: BudgetAnalysis | None = None
        self._budget_at = 0.0
        self._budget_version = 0

    def snapshot(self, chosen: FitOptions) -> RunSnapshot:
        """Raises StoreError when the run cannot be read (damaged or deleted)."""
        run = Run(self.run_dir)
        status = run.status()
        models = run.models()
        options = watch_options(chosen, status.is_live)
        key = (len(models), chosen, status.is_live)
        if self._analysis is None or key != self._analysis_key:
            self._analysis = analyze_run(run, options)
            self._analysis_key = key
        curves = run.curves()
        budgets = width_budgets(curves, run.parameter_counts(), options.aggregate)
        budget_key = (key, len(curves.step))
        now = time.monotonic()
        moved = self._budget_key is None or key != self._budget_key[0]  # models, axis or liveness: refit at once
        if moved or (budget_key != self._budget_key and now - self._budget_at >= BUDGET_SECONDS):
            # α(step) is a plain power law at each step (as `fit --budget` refuses --offset): the offset is left out.
            budget = alpha_budget(budgets, replace(options, offset=False))
            self._budget, self._budget_key, self._budget_at = budget, budget_key, now
            self._budget_version += 1
        events = run.events(self.last_event)
        if events:
            self.last_event = events[-1][0]
        fraction, steps = run.progress_fraction()
        return RunSnapshot(self.run_dir, run.id, run.config, status, models, self._analysis, budgets, self._budget,
                           self._budget_version, len(curves.step), fraction, steps, events,
                           run.checkpoints())  # fmt: skip
