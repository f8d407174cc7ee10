"""One training process with a thread per core against one-thread worker processes, through the real runner.

Each repetition runs a sweep with ``execution.workers = 1`` (every shard in the runner's process, a thread
per available core, the default) and with one one-thread worker per core, alternated, so a change in the
machine's load touches both alike. What it measured decided the default (the README's performance section). Two
sweeps: ``fused``, lottery-silu at widths 2–64 × 8 seeds (one hidden layer: the fused kernel);
``general``, the same at two hidden layers and widths 4–32 (the general PyTorch path; width 32 is 72% of
the work); ``general-even``, width 24 at two hidden layers in two shards of 4 seeds (equal work). With ``--busy``
every run has one busy process beside it (a Python loop at normal priority, as a UI or a compile would
be; the runner runs at nice 10). Prints the wall time of each runner process (start to exit, interpreter
and worker start-up included), min and median per case, the load average before and after, and checks
that both ways gave the same numbers (bit for bit on the fused kernel; the general path sums in another
order with another thread count, so there it prints the largest relative difference).

Run from the repository root::

    python benchmarks/bench_workers.py [--repeats 3] [--busy] [--sweeps fused,general,general-even] [--steps N]

``SCALETUI_RUNNER_NICE=0`` in the environment runs the runner at normal priority, level with the busy process.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from scaletui.config import load_config
from scaletui.local_executor import available_cores
from scaletui.presets import resolve_preset
from scaletui.runner import create_run, start_runner
from scaletui.store import Run

SWEEPS = {
    "fused": ("model.widths=[2,4,8,16,32,64]", "model.hidden_layers=1"),
    "general": ("model.widths=[4,8,16,32]", "model.hidden_layers=2"),
    "general-even": ("model.widths=[24]", "model.hidden_layers=2", "execution.seeds_per_shard=4"),
}
STEPS = {"fused": 6000, "general": 1000, "general-even": 2000}


def run_once(runs_dir: Path, sweep: str, steps: int, workers: int) -> tuple[float, Path]:
    overrides = [
        *SWEEPS[sweep],
        "seeds.count=8",
        f"training.steps={steps}",
        f"training.eval_every={max(1, steps // 10)}",
        'device="cpu"',
        f"execution.workers={workers}",
    ]
    run_dir = create_run(runs_dir, load_config(resolve_preset("lottery-silu"), overrides))
    started = time.perf_counter()
    code = start_runner(run_dir).wait()
    seconds = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"the runner of {run_dir} exited with {code}: {Run(run_dir).status().error}")
    return seconds, run_dir


def largest_difference(a: Path, b: Path) -> float:
    x, y = Run(a).models().test_loss, Run(b).models().test_loss
    return float(np.max(np.abs(x - y) / np.maximum(np.abs(x), 1e-300)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--busy", action="store_true", help="one busy process beside every run")
    parser.add_argument("--sweeps", default="fused,general")
    parser.add_argument("--steps", type=int, default=0, help=f"steps per model (default: {STEPS})")
    args = parser.parse_args()
    cores = available_cores()
    cases = [(sweep, workers) for sweep in args.sweeps.split(",") for workers in (1, cores)]
    print(f"{cores} cores; {args.repeats} repetitions, alternated" + (", beside one busy process" * args.busy))
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    times: dict[tuple[str, int], list[float]] = {case: [] for case in cases}
    differences: dict[str, float] = {}
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.busy else None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for repeat in range(args.repeats):
                for sweep in args.sweeps.split(","):
                    steps = args.steps or STEPS[sweep]
                    dirs = {}
                    for workers in (1, cores):
                        seconds, dirs[workers] = run_once(Path(tmp) / f"{repeat}", sweep, steps, workers)
                        times[(sweep, workers)].append(seconds)
                    differences[sweep] = max(differences.get(sweep, 0.0), largest_difference(dirs[1], dirs[cores]))
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"\n{'sweep':<8} {'how':<28} {'min s':>8} {'median s':>9}  runs")
    for (sweep, workers), seconds in times.items():
        how = "1 process × " + f"{cores} threads" if workers == 1 else f"{workers} workers × 1 thread"
        runs = " ".join(f"{s:.1f}" for s in seconds)
        print(f"{sweep:<8} {how:<28} {min(seconds):>8.2f} {statistics.median(seconds):>9.2f}  {runs}")
    for sweep, difference in differences.items():
        print(f"{sweep}: largest relative difference of a final test loss, 1 vs {cores} workers: {difference:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
