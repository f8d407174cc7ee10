"""The seed bootstrap: seeds resampled with replacement within each width, in bounded memory and time.

One stream of draws from a seed, group (width) by group: for a group of n seeds, ``resamples`` rows of n
indices, ``rng.integers(0, n, (resamples, n))``. Every face reads its intervals off this one stream (the α
CI, the local slopes, α(step), the seeds view's median and spread, the V slope), so the same run shows the
same CI everywhere.

Why this module exists: 10⁵ models × 2000 resamples is 2·10⁸ resampled values. Materialising them (and the
copies ``np.median`` makes) costs seconds of page faults alone, so the draws are made BLOCK indices at a
time (numpy's bounded integers give the same stream however the rows are split; tests/test_bootstrap.py
checks it), and each statistic is computed from a block without copying the group's values:

- median and quantiles are order statistics: the group is sorted once, each resample's draws are counted
  per rank, and the order statistics read back from the sorted values at the ranks where the running
  count passes the median's (or a quantile's) positions.
  The numbers are those of ``np.median`` / ``np.quantile`` on the resampled values, bit for bit (tested);
- mean and geometric mean reduce each block's rows as ``np.mean`` reduces the whole array (bit for bit);
- the output variance V of a resample is computed from its resample counts with one matrix product. Its
  draws are the same uniform picks as every other statistic's (they were multinomial counts before: the
  same law, other numbers; tests/test_bootstrap.py compares the two).

numpy only: arrays in, numbers out.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

BLOCK = 1 << 20  # drawn indices held at once (8 MiB), whatever the number of seeds


def pick_blocks(
    size: int, resamples: int, rng: np.random.Generator, per_pick: int = 1
) -> Iterator[tuple[slice, np.ndarray]]:
    """One group's draws, ``rng.integers(0, size, (resamples, size))``, as (rows, block) in row blocks of
    about BLOCK values, ``per_pick`` values being gathered for each drawn index."""
    rows = max(1, BLOCK // max(1, size * per_pick))
    for start in range(0, resamples, rows):
        stop = min(start + rows, resamples)
        yield slice(start, stop), rng.integers(0, size, size=(stop - start, size))


def resample_picks(sizes: list[int], resamples: int, seed: int) -> list[np.ndarray]:
    """Every group's draws whole, (resamples, size) each: the plain form the block path must reproduce."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, size, size=(resamples, size)) for size in sizes]


class _Sorted:
    """One group sorted once: each resample's order statistics are read off the ranks of its draws."""

    def __init__(self, values: np.ndarray) -> None:
        order = np.argsort(values, kind="stable")
        self.size = values.size
        self.values = values[order]
        self.rank = np.empty(values.size, dtype=np.intp)
        self.rank[order] = np.arange(values.size)

    def order_statistics(self, drawn: np.ndarray, kth: list[int]) -> np.ndarray:
        """(rows, len(kth)): the rank of each row's kth smallest draw (0-based positions).

        By counting, which costs the same for any number of positions (a partition costs more per
        position): each row's draws counted per rank, the counts summed along the ranks, and the p-th
        smallest is the first rank whose running count passes p. Rows are laid end to end, each offset by
        more than its own total, so one ``searchsorted`` serves every row.
        """
        rows, n = drawn.shape
        ranks = self.rank[drawn]
        ranks += (np.arange(rows) * n)[:, None]
        running = np.bincount(ranks.ravel(), minlength=rows * n).reshape(rows, n).cumsum(axis=1)
        running += (np.arange(rows) * (n + 1))[:, None]
        targets = np.asarray(kth)[None, :] + 1 + (np.arange(rows) * (n + 1))[:, None]
        return np.searchsorted(running.ravel(), targets, side="left") - (np.arange(rows) * n)[:, None]


def _median_positions(n: int) -> list[int]:
    """The positions ``np.median`` averages: the middle one, or the two middle ones."""
    return [n // 2] if n % 2 else [n // 2 - 1, n // 2]


def _quantile_positions(n: int, q: float) -> tuple[int, int, float]:
    """``np.quantile``'s default (linear, Hyndman & Fan 7): the neighbours of (n − 1)·q and the weight between."""
    virtual = (n - 1) * q
    below = min(int(np.floor(virtual)), n - 1)
    return below, min(below + 1, n - 1), float(virtual - np.floor(virtual))


def _lerp(low: np.ndarray, high: np.ndarray, gamma: float) -> np.ndarray:
    """numpy's own interpolation between neighbours: ``np.quantile`` of the pair at gamma is exactly it."""
    return np.quantile(np.stack([low, high]), gamma, axis=0)


def _median_of(values: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """The median from the ranks at :func:`_median_positions` (columns): ``np.median``'s (a + b) / 2."""
    if ranks.shape[1] == 1:
        return values[ranks[:, 0]]
    return (values[ranks[:, 0]] + values[ranks[:, 1]]) / 2


def bootstrap_aggregates(groups: list[np.ndarray], kind: str, resamples: int, seed: int) -> np.ndarray:
    """(resamples, groups): each group's median, mean or geometric mean over its resampled seeds, as
    ``aggregate(values[picks], kind, axis=1)`` gives it for :func:`resample_picks`' picks."""
    rng = np.random.default_rng(seed)
    out = np.empty((resamples, len(groups)))
    for j, values in enumerate(groups):
        values = np.asarray(values, dtype=float)
        if kind == "median":
            ranked, kth = _Sorted(values), _median_positions(values.size)
            for rows, drawn in pick_blocks(values.size, resamples, rng):
                out[rows, j] = _median_of(ranked.values, ranked.order_statistics(drawn, kth))
        elif kind in ("mean", "geomean"):
            summed = np.log(values) if kind == "geomean" else values
            for rows, drawn in pick_blocks(values.size, resamples, rng):
                out[rows, j] = np.mean(summed[drawn], axis=1)
            if kind == "geomean":
                out[:, j] = np.exp(out[:, j])
        else:
            raise ValueError(f"aggregate must be median, mean or geomean; got {kind!r}")
    return out


def bootstrap_median_and_quantiles(
    groups: list[np.ndarray], transformed: list[np.ndarray], quantiles: tuple[float, ...], resamples: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """From one draw: each group's resampled median, (resamples, groups), and the ``quantiles`` of the same
    resamples in other units, (quantiles, resamples, groups); ``transformed[j]`` is ``groups[j]`` in those
    units, element by element (log10 loss, or the loss itself).

    The quantiles are read from the same order statistics as the median when the transform keeps the
    order of the sorted group (log10 does); otherwise they are computed from the transformed resamples.
    Either way they equal ``np.quantile(transformed[picks], q, axis=1)``.
    """
    rng = np.random.default_rng(seed)
    medians = np.empty((resamples, len(groups)))
    quantile_out = np.empty((len(quantiles), resamples, len(groups)))
    for j, (values, units) in enumerate(zip(groups, transformed, strict=True)):
        values = np.asarray(values, dtype=float)
        ranked = _Sorted(values)
        in_units = np.asarray(units, dtype=float)[np.argsort(values, kind="stable")]
        ordered = bool(np.all(np.diff(in_units) >= 0))
        middle = _median_positions(values.size)
        neighbours = [_quantile_positions(values.size, q) for q in quantiles]
        kth = sorted({*middle, *(p for low, high, _ in neighbours for p in (low, high))})
        column = {position: i for i, position in enumerate(kth)}
        for rows, drawn in pick_blocks(values.size, resamples, rng):
            ranks = ranked.order_statistics(drawn, kth)
            medians[rows, j] = _median_of(ranked.values, ranks[:, [column[p] for p in middle]])
            for i, (q, (low, high, gamma)) in enumerate(zip(quantiles, neighbours, strict=True)):
                if ordered:
                    pair = in_units[ranks[:, column[low]]], in_units[ranks[:, column[high]]]
                    quantile_out[i, rows, j] = _lerp(*pair, gamma)
                else:
                    quantile_out[i, rows, j] = np.quantile(np.asarray(units, dtype=float)[drawn], q, axis=1)
    return medians, quantile_out


def bootstrap_variances(outputs: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """V = mean over test points of the population variance across seeds, for each resample of the seeds
    (rows of outputs): (resamples,). Each block of draws becomes resample counts, and V of a resample is
    mean_x E_c[(f − m)²] − mean_x (E_c[f − m])², m the all-seed mean at x (centring keeps the difference
    accurate where the outputs are far larger than their spread), E_c the count-weighted mean."""
    outputs = np.asarray(outputs, dtype=float)
    seeds = outputs.shape[0]
    centred = outputs - outputs.mean(axis=0)
    square = (centred * centred).mean(axis=1)  # (seeds,): mean over x of each seed's squared deviation
    out = np.empty(resamples)
    for rows, drawn in pick_blocks(seeds, resamples, rng):
        count = drawn.shape[0]
        offsets = (np.arange(count) * seeds)[:, None]
        weights = np.bincount((drawn + offsets).ravel(), minlength=count * seeds).reshape(count, seeds) / seeds
        first = weights @ centred  # (rows, x): each resample's mean deviation at every x
        out[rows] = np.maximum(weights @ square - (first * first).mean(axis=1), 0.0)
    return out


def bootstrap_columns(table: np.ndarray, kind: str, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(resamples, columns) for one group whose rows are seeds: each column's median, mean or geometric mean
    over the resampled rows, one draw of rows serving every column (α(step): the columns are the steps), as
    ``aggregate(table[picks], kind, axis=1)`` gives it."""
    seeds, columns = table.shape
    out = np.empty((resamples, columns))
    if kind == "median":
        ranked = [_Sorted(table[:, c]) for c in range(columns)]
        kth = _median_positions(seeds)
        for rows, drawn in pick_blocks(seeds, resamples, rng):
            for c, column in enumerate(ranked):
                out[rows, c] = _median_of(column.values, column.order_statistics(drawn, kth))
        return out
    if kind not in ("mean", "geomean"):
        raise ValueError(f"aggregate must be median, mean or geomean; got {kind!r}")
    summed = np.log(table) if kind == "geomean" else table
    for rows, drawn in pick_blocks(seeds, resamples, rng, per_pick=columns):
        out[rows] = np.mean(summed[drawn], axis=1)
    return np.exp(out) if kind == "geomean" else out
