"""A scatter of 10⁵ seeds is thinned to the points that can show before plotext draws it on the UI thread."""

from __future__ import annotations

import numpy as np
import plotext as plt

from scaletui.plots import _thinned


def drawn(xs: np.ndarray, ys: np.ndarray, width: int, height: int) -> list[str]:
    plt.clf()
    plt.plotsize(width, height)
    plt.theme("clear")
    plt.scatter(xs.tolist(), ys.tolist(), marker="dot")
    plt.xlim(float(xs.min()), float(xs.max()))
    plt.ylim(float(ys.min()), float(ys.max()))
    return plt.build().splitlines()


def test_a_dense_scatter_draws_nearly_the_same_characters_from_far_fewer_points():
    rng = np.random.default_rng(0)
    xs = np.repeat(np.arange(8.0), 5000) + 0.3 * rng.random(40_000)
    ys = rng.standard_normal(40_000)
    kept_x, kept_y = _thinned(xs, ys, 80, 24)
    assert kept_x.size < 40_000 / 4
    full, thin = drawn(xs, ys, 80, 24), drawn(kept_x, kept_y, 80, 24)
    pairs = zip("".join(full), "".join(thin), strict=True)
    differing = sum(a != b for a, b in pairs)
    assert differing <= 10  # of 1920 characters


def test_a_sparse_scatter_is_drawn_whole():
    xs, ys = np.arange(100.0), np.arange(100.0) ** 2
    kept_x, kept_y = _thinned(xs, ys, 80, 24)
    assert np.array_equal(kept_x, xs) and np.array_equal(kept_y, ys)
