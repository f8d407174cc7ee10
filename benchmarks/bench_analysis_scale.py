"""How long the analysis faces take on a run of many models: issue 13's "10⁵ models without the UI slowing".

Writes a synthetic run through the real store (``RunWriter``, as the runner writes one) into a temporary
directory: widths 2–256 (8, doubling), ``--models`` models spread evenly over them, losses lognormal around
0.1·w^−1 with a few stuck seeds per width at L ≈ 0.3 (two basins), outputs on ``--n-test`` test points whose
spread across seeds follows the loss, and ``--evals`` evaluations per model on its loss curve. Then times,
each ``--repeats`` times on a fresh ``Run`` (the store is read every time, as a face reads it):

- ``analyze_run``: what ``scaletui show`` / ``fit`` and the explorer compute (with outputs: V, bias², basins);
- ``analyze_run_no_outputs``: the same without reading the outputs (listings, ``export --what per-seed``);
- ``analyze_run_mean``: ``fit --aggregate mean`` (no outputs);
- ``analyze_seeds``: ``scaletui seeds`` and the seeds screen's worker;
- ``export_per_width`` and ``export_seeds``: ``scaletui export --what per-width|seeds`` into memory;
- ``snapshot``: the explorer's worker taking one snapshot of the finished run (analysis, curves, α(step));
- ``seeds_plot`` and ``loss_plot``: the pictures the seeds screen and the explorer draw on the UI thread.

Prints min and median seconds per operation. ``--profile OP`` runs OP once under cProfile and prints where
the time went. Run from the repository root::

    python benchmarks/bench_analysis_scale.py [--models 100000] [--repeats 3] [--n-test 256] [--evals 5]
        [--only analyze_run,analyze_seeds] [--profile analyze_seeds]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from scaletui.analysis import FitOptions, analyze_run
from scaletui.config import load_config
from scaletui.export import export_csv
from scaletui.plots import loss_plot, seeds_plot
from scaletui.presets import resolve_preset
from scaletui.seeds import analyze_seeds
from scaletui.store import Run, RunWriter
from scaletui.tui.watch import RunWatcher

WIDTHS = (2, 4, 8, 16, 32, 64, 128, 256)
STEPS = 100
SHARD = 1000  # seeds per stored shard: large widths are split into shards by the runner too


def write_run(runs_dir: Path, models: int, n_test: int, evals: int, seed: int = 0) -> Path:
    """A finished run of ``models`` models over WIDTHS, written through the store."""
    per_width = max(1, models // len(WIDTHS))
    eval_every = max(1, STEPS // max(1, evals - 1))
    cfg = load_config(
        resolve_preset("smoke"),
        [
            f"seeds.count={per_width}",
            f"model.widths={list(WIDTHS)}",
            f"training.steps={STEPS}",
            f"training.eval_every={eval_every}",
            f"data.n_test={n_test}",
        ],
    )
    writer = RunWriter.create(runs_dir, cfg, run_id="scale")
    x = np.linspace(-2, 2, n_test)
    writer.write_test_set(x[:, None], x**2)
    rng = np.random.default_rng(seed)
    steps = list(range(0, STEPS + 1, eval_every))
    for w in WIDTHS:
        group = writer.group(w)
        final = 0.1 / w * np.exp(0.5 * rng.standard_normal(per_width))
        stuck = rng.random(per_width) < 0.02
        final[stuck] = 0.3 * np.exp(0.2 * rng.standard_normal(stuck.sum()))
        for first in range(0, per_width, SHARD):
            ids = list(range(first, min(first + SHARD, per_width)))
            part = final[ids]
            for step in steps:
                curve = part * (1 + 2 * (1 - step / STEPS))
                writer.add_curve_points(group, ids, step, curve, curve)
            outputs = x**2 + np.sqrt(part)[:, None] * rng.standard_normal((len(ids), n_test))
            writer.add_shard_result(group, ids, 3 * w + 1, part, part, np.full(len(ids), -1), 0.1, outputs, {})
    writer.mark_ended("finished")
    writer.close()
    return writer.dir


def operations(run_dir: Path) -> dict[str, Callable[[], object]]:
    def export(what: str) -> Callable[[], object]:
        return lambda: export_csv([Run(run_dir)], what, io.StringIO())

    seeds = analyze_seeds(Run(run_dir))
    analysis = analyze_run(Run(run_dir), with_outputs=False)
    models = Run(run_dir).models()
    return {
        "analyze_run": lambda: analyze_run(Run(run_dir)),
        "analyze_run_no_outputs": lambda: analyze_run(Run(run_dir), with_outputs=False),
        "analyze_run_mean": lambda: analyze_run(Run(run_dir), FitOptions(aggregate="mean"), with_outputs=False),
        "analyze_seeds": lambda: analyze_seeds(Run(run_dir)),
        "export_per_width": export("per-width"),
        "export_seeds": export("seeds"),
        "snapshot": lambda: RunWatcher(run_dir).snapshot(FitOptions()),
        "seeds_plot": lambda: seeds_plot(seeds, 160, 18, color=True),
        "loss_plot": lambda: loss_plot(analysis, models, 120, 30),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-test", type=int, default=256)
    parser.add_argument("--evals", type=int, default=5, help="evaluations per model's loss curve")
    parser.add_argument("--only", help="comma-separated operations (default: all)")
    parser.add_argument("--profile", help="run this operation once under cProfile and print the top entries")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="scaletui-bench-") as tmp:
        started = time.perf_counter()
        run_dir = write_run(Path(tmp), args.models, args.n_test, args.evals)
        run = Run(run_dir)
        print(
            f"{len(run.models())} models, {len(WIDTHS)} widths, {args.n_test} test points, {args.evals} evaluations "
            f"per model; written in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        ops = operations(run_dir)
        if args.profile:
            profiler = cProfile.Profile()
            profiler.runcall(ops[args.profile])
            pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(30)
            return 0
        chosen = args.only.split(",") if args.only else list(ops)
        for name in chosen:
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                ops[name]()
                times.append(time.perf_counter() - t0)
            print(f"{name:24s} min {min(times):7.3f} s   median {statistics.median(times):7.3f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
