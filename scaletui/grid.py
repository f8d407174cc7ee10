"""Slices of a sweep over width × data size × depth, each read like a run that sweeps one axis.

A run may train every width at several data sizes and depths. The analysis (``analyze_run``, the budget,
the seeds) was written for one curve: a loss per value of one axis. A :class:`RunSlice` is that curve taken
out of the grid: the models along one axis (width, data size or depth) with the other two coordinates fixed,
read through the same methods as a :class:`scaletui.store.Run` (``config``, ``models``, ``curves``,
``outputs``, ``test_set``, ``parameter_counts``). Along the data axis the data size stands where the width
stood (a fit with ``x_axis = "width"`` is a fit against D) and N stays each model's parameter count; along
the depth axis the depth stands there. A run that sweeps width alone has one slice along width,
and it reads exactly as the run itself, so every number of such a run is what it was before grids existed.

The analysis stays one function of one curve; the faces ask :func:`slices` for the curves of the axis the
user picked and draw one per value of the other coordinates.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np

from scaletui.config import Config, Group, parameter_count

Axis = Literal["width", "data", "depth"]
AXES: tuple[str, ...] = get_args(Axis)


def _take(table: Any, mask: np.ndarray) -> Any:
    """The rows of a store table (parallel arrays) where ``mask`` holds."""
    return dataclasses.replace(table, **{f.name: getattr(table, f.name)[mask] for f in dataclasses.fields(table)})


@dataclass(frozen=True)
class Fixed:
    """The coordinates a slice holds still: the two that are not its axis."""

    width: int | None = None
    n_train: int | None = None
    depth: int | None = None

    def label(self, cfg: Config) -> str:
        """``D=1000`` or ``depth 2`` or ``width 16, D=100``: only the coordinates the run varies, so a run over
        width alone gives an empty label."""
        parts = []
        if self.width is not None and len(cfg.model.widths) > 1:
            parts.append(f"width {self.width}")
        if self.n_train is not None and len(cfg.data_sizes) > 1:
            parts.append(f"D={self.n_train}")
        if self.depth is not None and len(cfg.depths) > 1:
            parts.append(f"depth {self.depth}")
        return ", ".join(parts)


class RunSlice:
    """One curve of a run: the models along ``axis`` at the ``fixed`` other coordinates (see the module)."""

    def __init__(self, run: Any, axis: Axis, fixed: Fixed) -> None:
        if axis not in AXES:
            raise ValueError(f"axis must be one of {', '.join(AXES)}; got {axis!r}")
        self.run = run
        self.axis = axis
        self.fixed = fixed
        self.id = run.id
        self.meta = run.meta
        full: Config = run.config
        self.full_config = full
        n_train = fixed.n_train if fixed.n_train is not None else full.data_sizes[0]
        depth = fixed.depth if fixed.depth is not None else full.depths[0]
        cell = full.cell(n_train, depth)
        self.values: tuple[int, ...] = {"width": full.model.widths, "data": full.data_sizes, "depth": full.depths}[axis]
        # The analysis reads the swept values where a run keeps its widths.
        self.config = dataclasses.replace(cell, model=dataclasses.replace(cell.model, widths=self.values))

    @property
    def label(self) -> str:
        return self.fixed.label(self.full_config)

    @property
    def dir(self) -> Any:
        return self.run.dir

    def status(self) -> Any:
        return self.run.status()

    def _mask(self, table: Any) -> np.ndarray:
        mask = np.ones(len(table.width), dtype=bool)
        for name in ("width", "n_train", "depth"):
            value = getattr(self.fixed, name)
            if value is not None:
                mask &= getattr(table, name) == value
        return mask

    def _as_axis(self, table: Any) -> Any:
        """Rows of this slice with the axis's value in the width column (and, for models, N beside it)."""
        rows = _take(table, self._mask(table))
        if self.axis == "width":
            return rows
        along = rows.n_train if self.axis == "data" else rows.depth
        order = np.lexsort((rows.seed, along))
        return _take(dataclasses.replace(rows, width=along.copy()), order)

    def models(self) -> Any:
        return self._as_axis(self.run.models())

    def curves(self, width: int | None = None) -> Any:
        curves = self._as_axis(self.run.curves())
        if width is not None:
            curves = _take(curves, curves.width == width)
        if self.axis != "width":  # _as_axis sorts by (value, seed); curves need their steps in order within
            order = np.lexsort((curves.step, curves.seed, curves.width))
            curves = _take(curves, order)
        return curves

    def test_set(self) -> tuple[np.ndarray, np.ndarray]:
        return self.run.test_set()

    def group(self, value: int) -> Group:
        """The store's group of this slice's point at ``value`` on its axis."""
        width = value if self.axis == "width" else self.fixed.width
        n_train = value if self.axis == "data" else self.fixed.n_train
        depth = value if self.axis == "depth" else self.fixed.depth
        assert width is not None
        return Group(
            width,
            n_train if n_train is not None else self.full_config.data_sizes[0],
            depth if depth is not None else self.full_config.depths[0],
        )

    def outputs(self, value: int) -> tuple[np.ndarray, np.ndarray]:
        group = self.group(value)
        return self.run.outputs(group.width, group.n_train, group.depth)

    def weights(self, value: int, seed: int) -> dict[str, np.ndarray]:
        group = self.group(value)
        return self.run.weights(group.width, seed, group.n_train, group.depth)

    def parameter_counts(self) -> dict[int, int]:
        """N (the parameter count) at each value of the axis."""
        d = self.config.target.input_dim
        return {v: parameter_count(d, self.group(v).width, self.group(v).depth) for v in self.values}


def slices(run: Any, axis: Axis = "width") -> list[RunSlice]:
    """The run's curves along ``axis``: one per combination of the other two coordinates the run sweeps."""
    cfg: Config = run.config
    if axis == "width":
        return [RunSlice(run, axis, Fixed(n_train=n, depth=d)) for n, d in cfg.cells]
    if axis == "data":
        return [RunSlice(run, axis, Fixed(width=w, depth=d)) for d in cfg.depths for w in cfg.model.widths]
    if axis == "depth":
        return [RunSlice(run, axis, Fixed(width=w, n_train=n)) for n in cfg.data_sizes for w in cfg.model.widths]
    raise ValueError(f"axis must be one of {', '.join(AXES)}; got {axis!r}")


def curve_of(run: Any, cell: Fixed | None = None) -> Any:
    """A run's curve along width at one data size and depth: the run itself when it sweeps width alone, else
    the slice at ``cell`` (its first data size and depth when none is given)."""
    cfg: Config = run.config
    if not cfg.is_grid:
        return run
    cell = cell or Fixed(n_train=cfg.data_sizes[0], depth=cfg.depths[0])
    return RunSlice(run, "width", Fixed(n_train=cell.n_train, depth=cell.depth))


def axis_of(x: str) -> tuple[Axis, str]:
    """A face's ``--x`` (width, params, data, depth) as the slice axis and the analysis's x axis."""
    if x in ("width", "params"):
        return "width", x
    if x == "data":
        return "data", "width"  # the data size, which stands in the width's place
    if x == "depth":
        return "depth", "width"  # the depth itself, not its parameter count
    raise ValueError(f"x must be one of width, params, data, depth; got {x!r}")
