"""Runs written straight through the real store with losses of a known law: truth for the analysis faces."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from scaletui.config import Group
from scaletui.store import Run, RunWriter
from tests.conftest import smoke_config

STEPS = 100
CURVE_STEPS = (0, 25, 50, 90, 100)


def _started(runs_dir: Path, cfg, run_id: str) -> tuple[RunWriter, np.ndarray]:
    """A new run of ``cfg`` with its test set, 64 points of y = x² on [-2, 2]: its writer and the inputs."""
    writer = RunWriter.create(runs_dir, cfg, run_id=run_id)
    x = np.linspace(-2, 2, 64)
    writer.write_test_set(x[:, None], x**2)
    return writer, x


def lottery_run(
    runs_dir: Path,
    *,
    widths: tuple[int, ...] = (2, 4, 8, 16),
    stuck: dict[int, int] | None = None,
    seeds: int = 20,
    alpha: float = 2.0,
    law: Callable[[float], float] | None = None,
    run_id: str = "lottery",
    finished: bool = True,
    weights: bool = False,
    diverged: dict[int, int] | None = None,
) -> Run:
    """Good models follow L = 0.1·w^(−alpha) (or ``law(w)``) and are still falling at the end (their loss
    fell 20% over the last 10% of steps); ``stuck[w]`` models per width sit flat in a bad basin at L ≈ 0.3,
    the situation where a convergence filter keeps the failures and drops the good ones. With
    ``finished=False`` the run is left running, its runner this process. ``weights=True`` stores random
    one-hidden-layer weights, for the tickets screen (the losses do not come from them). ``diverged[w]`` of
    the last seeds per width diverged at step 50 (their losses NaN)."""
    stuck = {2: 7, 4: 4, 8: 1, 16: 0} if stuck is None else stuck
    diverged = diverged or {}
    cfg = smoke_config(f"seeds.count={seeds}", f"model.widths={list(widths)}", f"training.steps={STEPS}")
    writer, x = _started(runs_dir, cfg, run_id)
    rng = np.random.default_rng(0)
    ids = list(range(seeds))
    for w in widths:
        final = (law(w) if law else 0.1 * w**-alpha) * np.exp(0.1 * rng.standard_normal(seeds))
        bad = np.arange(seeds) < stuck.get(w, 0)
        final[bad] = 0.3 * np.exp(0.2 * rng.standard_normal(bad.sum()))
        for step in CURVE_STEPS:
            falling = final * (1 + 2 * (1 - step / STEPS))  # 20% above the final loss at step 90
            curve = np.where(bad, final * (1 + (step == 0)), falling)
            writer.add_curve_points(writer.group(w), ids, step, curve, curve)
        outputs = x**2 + np.sqrt(final)[:, None] * rng.standard_normal((seeds, x.size))
        shapes = {"W0": (seeds, 1, w), "b0": (seeds, 1, w), "W1": (seeds, w, 1), "b1": (seeds, 1, 1)}
        stored = {name: rng.standard_normal(shape) for name, shape in shapes.items()} if weights else {}
        lost = np.arange(seeds) >= seeds - diverged.get(w, 0)
        final[lost] = np.nan
        outputs[lost] = np.nan
        steps = np.where(lost, 50, -1)
        writer.add_shard_result(writer.group(w), ids, 3 * w + 1, final, final, steps, 0.1, outputs, stored)
    if finished:
        writer.mark_ended("finished")
    else:
        writer.mark_running("cpu")
    writer.close()
    return Run(writer.dir)


def grid_run(
    runs_dir: Path,
    *,
    widths: tuple[int, ...] = (2, 4, 8, 16),
    sizes: tuple[int, ...] = (64, 256, 1024),
    seeds: int = 12,
    law: tuple[float, float, float, float, float] = (1e-4, 0.5, 1.0, 20.0, 1.0),
    run_id: str = "grid",
) -> Run:
    """A finished width × data-size run whose median follows L = E + A·N^(−α) + B·D^(−β) (``law`` is
    (E, A, α, B, β)) with log-normal seed noise: truth for the faces of a grid."""
    e, a, alpha, b, beta = law
    cfg = smoke_config(
        f"seeds.count={seeds}", f"model.widths={list(widths)}", f"data.n_train={list(sizes)}", f"training.steps={STEPS}"
    )
    writer, x = _started(runs_dir, cfg, run_id)
    rng = np.random.default_rng(1)
    ids = list(range(seeds))
    for size in sizes:
        for w in widths:
            n = 3 * w + 1
            final = (e + a * n**-alpha + b * size**-beta) * np.exp(0.1 * rng.standard_normal(seeds))
            group = Group(w, size, 1)
            for step in CURVE_STEPS:
                curve = final * (1 + 0.1 * (1 - step / STEPS))
                writer.add_curve_points(group, ids, step, curve, curve)
            outputs = x**2 + np.sqrt(final)[:, None] * rng.standard_normal((seeds, x.size))
            shapes = {"W0": (seeds, 1, w), "b0": (seeds, 1, w), "W1": (seeds, w, 1), "b1": (seeds, 1, 1)}
            weights = {name: rng.standard_normal(shape) for name, shape in shapes.items()}  # for the tickets screen
            writer.add_shard_result(group, ids, n, final, final, np.full(seeds, -1), 0.1, outputs, weights)
    writer.mark_ended("finished")
    writer.close()
    return Run(writer.dir)
