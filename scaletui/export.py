"""CSV exports: one code path for the CLI and the TUI.

Every format has one header row and one record per row, numbers at full precision (Python's shortest
round-trip repr; ``nan`` where a value is undefined), and a leading ``run`` column so several runs can be
exported into one file.

A run that sweeps data size or depth (or an export along those axes, ``options.axis``) gets each model's
coordinates: ``width`` is followed by ``n_train`` and ``depth``, ``n_params`` stays the parameter count, and
the fit rows say which curve they fitted (``axis`` and the fixed coordinates). A run over width alone
exports exactly the columns it always had.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from scaletui.analysis import FitOptions, analyze_budget, analyze_run
from scaletui.config import parameter_count
from scaletui.grid import RunSlice, slices
from scaletui.seeds import analyze_seeds, width_record, width_seeds
from scaletui.store import Run, atomic_write_bytes

FORMATS = ("per-seed", "per-width", "curves", "fit", "budget", "seeds")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float | np.floating):
        return repr(float(value))
    return str(value)


def _per_seed(run: Run, options: FitOptions) -> Iterator[list[Any]]:
    models = run.models()
    flags = analyze_run(run, options, with_outputs=False).unconverged
    for i in range(len(models)):
        w, s = int(models.width[i]), int(models.seed[i])
        yield [
            run.id,
            w,
            int(models.n_params[i]),
            s,
            models.train_loss[i],
            models.test_loss[i],
            bool(models.diverged[i]),
            int(models.diverged_step[i]),
            flags.get((w, s)),
            models.wall_seconds[i],
        ]


def _per_width(run: Run, options: FitOptions) -> Iterator[list[Any]]:
    analysis = analyze_run(run, options)
    variance = {v.width: v for v in analysis.variance}
    spread = {s.width: s for s in analysis.spread}
    basins = {b.width: b for b in analysis.basins}
    nan = float("nan")
    for st in analysis.widths:
        v, sp, b = variance.get(st.width), spread[st.width], basins[st.width]
        yield [
            run.id,
            st.width,
            st.n_params,
            st.seeds,
            st.used,
            st.diverged,
            st.unconverged,
            st.dropped,
            st.median,
            st.mean,
            st.geomean,
            st.q25,
            st.q75,
            st.min,
            st.max,
            v.variance if v else nan,
            v.bias2 if v else nan,
            v.mean_loss if v else nan,
            sp.median_log10,
            sp.iqr_log10,
            sp.skewness,
            sp.excess_kurtosis,
            sp.max_over_median,
            b.outside,
            b.fraction_outside,
            b.main_median,
            b.variance_main,
        ]


def _curves(run: Run, options: FitOptions) -> Iterator[list[Any]]:
    c = run.curves()
    for i in range(len(c.step)):
        yield [run.id, int(c.width[i]), int(c.seed[i]), int(c.step[i]), c.train_loss[i], c.test_loss[i]]


def _fit(run: Run, options: FitOptions) -> Iterator[list[Any]]:
    analysis = analyze_run(run, options)
    for quantity, fit in (("loss", analysis.fit), ("output_variance", analysis.variance_slope)):
        if fit is None:
            continue
        yield [
            run.id,
            quantity,
            fit.x_axis,
            options.aggregate if quantity == "loss" else "",
            fit.offset,
            fit.robust,
            fit.alpha,
            fit.ci_low,
            fit.ci_high,
            fit.k,
            fit.l_inf,
            fit.r2,
            fit.points,
            fit.resamples,
            options.seed,
            options.min_width,
            options.max_width,
            options.exclude_unconverged,
        ]


def _budget(run: Run, options: FitOptions) -> Iterator[list[Any]]:
    """Per evaluated step and width: the width's aggregate test loss, and α(step) with its CI where the
    step is common to the fitted widths (empty otherwise)."""
    budget = analyze_budget(run, options)
    alpha = {
        int(t): (a, lo, hi)
        for t, a, lo, hi in zip(budget.steps, budget.alpha, budget.ci_low, budget.ci_high, strict=True)
    }
    rows = [(int(t), b.width, agg) for b in budget.widths for t, agg in zip(b.steps, b.aggregate, strict=True)]
    for step, width, agg in sorted(rows):
        yield [run.id, step, width, agg, *alpha.get(step, (None, None, None))]


def _seeds(run: Run, options: FitOptions) -> Iterator[list[Any]]:
    """Per width: the seed distribution in log10 loss (quantiles, best of k, basins, tail indices)."""
    for w in analyze_seeds(run, options, "log").widths:
        yield [run.id, "log10 loss", *width_record(w).values()]


HEADERS = {
    "per-seed": ["run", "width", "n_params", "seed", "train_loss", "test_loss", "diverged", "diverged_step",
                 "unconverged", "wall_seconds"],
    "per-width": ["run", "width", "n_params", "seeds", "used", "diverged", "unconverged", "dropped", "median", "mean",
                  "geomean", "q25", "q75", "min", "max", "output_variance", "bias2", "mean_loss",
                  "median_log10", "iqr_log10", "skewness", "excess_kurtosis", "max_over_median",
                  "outside_main_basin", "fraction_outside", "main_basin_median", "output_variance_main_basin"],
    "curves": ["run", "width", "seed", "step", "train_loss", "test_loss"],
    "fit": ["run", "quantity", "x_axis", "aggregate", "offset", "robust", "alpha", "ci_low", "ci_high", "k",
            "l_inf", "r2", "points", "resamples", "bootstrap_seed", "min_width", "max_width",
            "exclude_unconverged"],
    "budget": ["run", "step", "width", "aggregate", "alpha", "ci_low", "ci_high"],
    "seeds": ["run", "units", *width_record(width_seeds(0, 0, np.ones(0), 0, "log"))],
}  # fmt: skip
_ROWS = {
    "per-seed": _per_seed,
    "per-width": _per_width,
    "curves": _curves,
    "fit": _fit,
    "budget": _budget,
    "seeds": _seeds,
}


# Where each format's axis value stands (the column after which a grid export adds n_train and depth), and
# whether its rows are per model (exported along width, whatever the axis asked) or per point of a curve.
_VALUE_COLUMN = {"per-seed": 1, "per-width": 1, "curves": 1, "budget": 2, "seeds": 2}
_PER_MODEL = ("per-seed", "curves")


def _grid_header(what: str) -> list[str]:
    header = list(HEADERS[what])
    if what == "fit":
        return [header[0], "axis", "width", "n_train", "depth", *header[1:]]
    at = _VALUE_COLUMN[what] + 1
    return [*header[:at], "n_train", "depth", *header[at:]]


def _grid_rows(curve: RunSlice, what: str, options: FitOptions) -> Iterator[list[Any]]:
    """A slice's rows with the true coordinates of each: width, data size, depth, and N."""
    if what == "fit":
        f = curve.fixed
        for row in _ROWS[what](curve, options):
            yield [row[0], curve.axis, f.width, f.n_train, f.depth, *row[1:]]
        return
    at = _VALUE_COLUMN[what]
    has_n = "n_params" in HEADERS[what]
    d = curve.full_config.target.input_dim
    for row in _ROWS[what](curve, options):
        group = curve.group(int(row[at]))
        tail = row[at + 1 :]
        if has_n:  # the width slot held the axis's value and N its own idea of N: both become the model's
            tail = [parameter_count(d, group.width, group.depth), *tail[1:]]
        yield [*row[:at], group.width, group.n_train, group.depth, *tail]


def export_csv(runs: Iterable[Run], what: str, out: TextIO, options: FitOptions = FitOptions()) -> int:
    """Write one CSV of the given format for the runs; returns the number of records."""
    if what not in FORMATS:
        raise ValueError(f"export format must be one of {', '.join(FORMATS)}; got {what!r}")
    runs = list(runs)
    grid = options.axis != "width" or any(run.config.is_grid for run in runs)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_grid_header(what) if grid else HEADERS[what])
    count = 0
    for run in runs:
        if grid:
            axis = "width" if what in _PER_MODEL else options.axis
            rows: Iterable[list[Any]] = (row for curve in slices(run, axis) for row in _grid_rows(curve, what, options))
        else:
            rows = _ROWS[what](run, options)
        for row in rows:
            writer.writerow([_cell(v) for v in row])
            count += 1
    return count


def export_to_file(
    runs: list[Run], what: str, path: Path, options: FitOptions = FitOptions(), force: bool = False
) -> int:
    """Export to a file, atomically, refusing to replace an existing one unless ``force``."""
    if (path.exists() or path.is_symlink()) and not force:  # a dangling link is still something to replace
        raise FileExistsError(f"{path} exists; pass --force to replace it")
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory")
    buffer = io.StringIO()
    count = export_csv(runs, what, buffer, options)
    atomic_write_bytes(path, buffer.getvalue().encode())
    return count
