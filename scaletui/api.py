"""The notebook API: a saved run's numbers as numpy arrays, or pandas DataFrames when pandas is installed.

A grid over width × data size × depth is easiest to explore in a notebook, so the reader the CLI and the TUI
use is offered here as a small, stable surface::

    import scaletui
    run = scaletui.open_run("latest", runs_dir="runs")
    run.models()                         # one array per column: width, n_train, depth, seed, test_loss, …
    run.frame("per-width", x="data")     # the `scaletui export` table as a DataFrame
    [curve.label for curve in run.analysis(x="data")]
    run.joint().alpha

Every number comes from the same functions as ``scaletui fit`` and ``scaletui export`` (the tables are the
export's own rows), so a notebook, the CLI and the TUI agree to the last digit. Nothing here imports torch,
Textual or Typer; pandas is imported only by the methods that return DataFrames.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from scaletui.analysis import FitOptions, RunAnalysis, analyze_run
from scaletui.config import Config
from scaletui.export import FORMATS, export_csv
from scaletui.grid import Fixed, RunSlice, axis_of, slices
from scaletui.joint import JOINT_RESAMPLES, JointFit, analyze_joint
from scaletui.store import Run, resolve_run
from scaletui.store import list_runs as _list_runs

if TYPE_CHECKING:  # pandas is optional: only the *_frame methods need it
    import pandas

__all__ = ["Curve", "OpenedRun", "RunInfo", "list_runs", "open_run"]


def _as_path(runs_dir: str | Path) -> Path:
    return Path(runs_dir).expanduser()


def _pandas() -> Any:
    try:
        import pandas  # lazy: optional, and slow to import
    except ImportError:
        hint = "pip install 'scaletui[notebook]' (or use the numpy methods)"
        raise ImportError(f"DataFrames need pandas: {hint}") from None
    return pandas


def _options(x: str, **options: Any) -> FitOptions:
    """FitOptions from keyword arguments named as ``scaletui fit``'s flags are (min_width, offset, …)."""
    axis, x_axis = axis_of(x)
    return FitOptions(x_axis=x_axis, axis=axis, **options)


@dataclass(frozen=True)
class RunInfo:
    """One run of a runs directory, as ``scaletui ls`` lists it; ``error`` says why a damaged one cannot open."""

    id: str
    path: Path
    name: str | None
    status: str | None
    created: float
    finished_models: int
    error: str | None


@dataclass(frozen=True)
class Curve:
    """One curve of a run along an axis: the other coordinates it holds fixed, and its analysis (α with its
    CI, the per-point statistics, V) — what ``scaletui fit`` prints for it."""

    label: str
    axis: str
    fixed: Fixed
    analysis: RunAnalysis

    @property
    def x(self) -> np.ndarray:
        """The x of each point: width, N, D or depth."""
        return np.array([self.analysis.x_of(s) for s in self.analysis.widths], dtype=float)

    @property
    def loss(self) -> np.ndarray:
        """The aggregate test loss at each point (median over seeds unless the options said otherwise)."""
        return np.array([s.value(self.analysis.aggregate) for s in self.analysis.widths])

    @property
    def alpha(self) -> float:
        return float("nan") if self.analysis.fit is None else self.analysis.fit.alpha

    @property
    def ci(self) -> tuple[float, float]:
        fit = self.analysis.fit
        return (float("nan"), float("nan")) if fit is None else (fit.ci_low, fit.ci_high)


class OpenedRun:
    """A saved run (finished or still being written), read through the store's reader."""

    def __init__(self, run: Run) -> None:
        self._run = run
        self.id: str = run.id
        self.dir: Path = run.dir
        self.config: Config = run.config
        self.meta: dict[str, Any] = run.meta

    def __repr__(self) -> str:
        return f"<scaletui run {self.id} ({self.status})>"

    @property
    def status(self) -> str:
        """running, finished, stopped, failed, dead, …: read afresh each time."""
        return self._run.status().status

    def models(self) -> dict[str, np.ndarray]:
        """Every finished model: width, n_train, depth, seed, n_params, train_loss, test_loss, diverged_step
        (-1 where it stayed finite), wall_seconds; NaN losses for diverged models."""
        return {f.name: getattr(table, f.name) for table in [self._run.models()] for f in dataclasses.fields(table)}

    def curves(self, width: int | None = None, n_train: int | None = None, depth: int | None = None) -> dict:
        """Loss curves, one row per (model, evaluated step): width, n_train, depth, seed, step, train_loss,
        test_loss; all of them or those of one width, data size or depth."""
        table = self._run.curves(width, n_train, depth)
        return {f.name: getattr(table, f.name) for f in dataclasses.fields(table)}

    def outputs(
        self, width: int, n_train: int | None = None, depth: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Seeds (models,) and their outputs on the test set (models, n_test); n_train and depth may be left
        out where the run has one of each."""
        return self._run.outputs(width, n_train, depth)

    def test_set(self) -> tuple[np.ndarray, np.ndarray]:
        """The test inputs (n_test, input_dim) and targets (n_test,)."""
        return self._run.test_set()

    def curves_along(self, x: str = "params") -> list[RunSlice]:
        """The run's curves along ``x`` (width, params, data, depth): one per value of the other coordinates."""
        return slices(self._run, axis_of(x)[0])

    def analysis(self, x: str = "params", **options: Any) -> list[Curve]:
        """Each curve's analysis along ``x``; keyword options as ``scaletui fit``'s flags: aggregate,
        min_width, max_width, offset, robust, resamples, seed, exclude_unconverged."""
        chosen = _options(x, **options)
        curves = slices(self._run, chosen.axis)
        return [Curve(curve.label, curve.axis, curve.fixed, analyze_run(curve, chosen)) for curve in curves]

    def joint(self, depth: int | None = None, **options: Any) -> JointFit:
        """L = E + A·N^-α + B·D^-β over the widths × data sizes at one depth (``scaletui fit --joint``)."""
        options.setdefault("resamples", JOINT_RESAMPLES)
        return analyze_joint(self._run, _options("params", **options), depth)

    def table(self, what: str = "per-width", x: str = "params", **options: Any) -> dict[str, np.ndarray]:
        """A ``scaletui export`` table (per-seed, per-width, curves, fit, budget, seeds) as one array per column:
        numbers as floats or integers, words as strings; the same rows the CSV holds."""
        rows = list(csv.reader(io.StringIO(self._export(what, x, **options))))
        header, body = rows[0], rows[1:]
        return {name: _column([row[i] for row in body]) for i, name in enumerate(header)}

    def frame(self, what: str = "per-width", x: str = "params", **options: Any) -> pandas.DataFrame:
        """:meth:`table` as a pandas DataFrame."""
        return _pandas().read_csv(io.StringIO(self._export(what, x, **options)))

    def models_frame(self) -> pandas.DataFrame:
        """:meth:`models` as a pandas DataFrame."""
        return _pandas().DataFrame(self.models())

    def curves_frame(self, width: int | None = None, n_train: int | None = None, depth: int | None = None):
        """:meth:`curves` as a pandas DataFrame."""
        return _pandas().DataFrame(self.curves(width, n_train, depth))

    def _export(self, what: str, x: str, **options: Any) -> str:
        if what not in FORMATS:
            raise ValueError(f"what must be one of {', '.join(FORMATS)}; got {what!r}")
        buffer = io.StringIO()
        export_csv([self._run], what, buffer, _options(x, **options))
        return buffer.getvalue()


def _column(cells: list[str]) -> np.ndarray:
    """A CSV column as integers, floats (empty cells as NaN), booleans, or else strings."""
    for kind in (int, float):
        try:
            return np.array([kind(c) if c != "" else np.nan for c in cells], dtype=kind if kind is float else None)
        except (ValueError, TypeError):
            continue
    if cells and set(cells) <= {"true", "false"}:
        return np.array([c == "true" for c in cells])
    return np.array(cells, dtype=object)


def open_run(ref: str | Path, runs_dir: str | Path = "runs") -> OpenedRun:
    """A run by id, unique id prefix, name, path, or ``latest``, as every command accepts it."""
    return OpenedRun(Run(resolve_run(_as_path(runs_dir), str(ref))))


def list_runs(runs_dir: str | Path = "runs") -> list[RunInfo]:
    """Every run in ``runs_dir``, oldest first; damaged ones are listed with the reason, never raised."""
    return [
        RunInfo(
            item.id,
            item.path,
            item.run.config.name if item.run else None,
            item.status.status if item.status else None,
            item.created,
            item.finished_models,
            item.error,
        )
        for item in _list_runs(_as_path(runs_dir))
    ]
