"""Snapshots of a run for the live view, taken off the UI thread.

A snapshot is everything the explorer draws, read from the store in one go. Analysis is recomputed only
when the set of finished models changes, the x axis is switched or the run stops being live; loss curves
and progress are read on every tick. While the run is live the bootstrap uses LIVE_RESAMPLES (the screen
says so); once it is not, the analysis is exactly ``scaletui fit``'s: the default options, same resamples,
same seed. Nothing here imports Textual.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from scaletui.analysis import FitOptions, RunAnalysis, analyze_run
from scaletui.config import Config
from scaletui.store import ModelTable, Run, RunStatus

LIVE_RESAMPLES = 500  # while a run is live its analysis is redone often: a cheaper bootstrap, marked on screen


def watch_options(x_axis: str, live: bool) -> FitOptions:
    """The explorer's options: the defaults on the chosen axis, with fewer resamples while the run is live."""
    options = FitOptions(x_axis=x_axis)
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
    curves: dict[int, tuple[np.ndarray, np.ndarray]]  # width -> (steps, median test loss over seeds)
    fraction: float
    steps_done: dict[int, int]
    events: list[tuple[int, float, str, str]] = field(default_factory=list)

    @property
    def key(self) -> tuple[int, int, str]:
        """Changes whenever something drawn from finished models or curves would change."""
        return len(self.models), sum(len(s) for s, _ in self.curves.values()), self.status.status


def median_curves(run: Run) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per width: the evaluated steps and the median test loss over the seeds still finite there."""
    curves = run.curves()
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for w in np.unique(curves.width):
        mask = curves.width == w
        steps, losses = curves.step[mask], curves.test_loss[mask]
        unique = np.unique(steps)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # every seed diverged at a step: NaN is the answer
            medians = np.array([np.nanmedian(losses[steps == s]) for s in unique])
        out[int(w)] = (unique, medians)
    return out


class RunWatcher:
    """Follows one run directory; call :meth:`snapshot` from a worker thread."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.last_event = 0
        self._analysis_key: tuple[int, str, bool] | None = None
        self._analysis: RunAnalysis | None = None

    def snapshot(self, x_axis: str) -> RunSnapshot:
        """Raises StoreError when the run cannot be read (damaged or deleted)."""
        run = Run(self.run_dir)
        status = run.status()
        models = run.models()
        key = (len(models), x_axis, status.is_live)
        if self._analysis is None or key != self._analysis_key:
            self._analysis = analyze_run(run, watch_options(x_axis, status.is_live))
            self._analysis_key = key
        events = run.events(self.last_event)
        if events:
            self.last_event = events[-1][0]
        fraction, steps = run.progress_fraction()
        return RunSnapshot(
            self.run_dir,
            run.id,
            run.config,
            status,
            models,
            self._analysis,
            median_curves(run),
            fraction,
            steps,
            events,
        )
