"""Batched engine vs. a plain per-model PyTorch loop, on the same sweep, in one process.

Measures the wall time of training every (width, seed) model of a modest ``lottery-silu`` sweep
(y = x² on [-2, 2], one hidden SiLU layer, full-batch Adam with a cosine schedule, float64 on the CPU)
two ways: with ``scaletui.engine.train_shard`` (all seeds of a width as one batched tensor set), and
with one ``nn.Sequential`` + ``torch.optim.Adam`` per model, trained one after another as a typical
research script does. Both start from the same weights (``init_parameters``) and see the same data, so
their final test losses must agree; the script checks the per-width medians and reports the speed-up.

Run from the repository root::

    python benchmarks/bench_engine.py [--steps 2000] [--seeds 8] [--widths 2,4,8,16,32,64] [--dtype float64]

Exit code 0 when the medians agree (within 10% relative) and the speed-up is at least 2x, else 1.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from scaletui.config import Config, load_config
from scaletui.engine import (
    Problem,
    ShardFinished,
    init_parameters,
    learning_rate,
    plan_shards,
    prepare_problem,
    train_shard,
)
from scaletui.presets import resolve_preset

Losses = dict[int, np.ndarray]  # final test loss of each seed, by width
MAX_RELATIVE_DIFF = 0.10
MIN_SPEEDUP = 2.0


def run_batched(problem: Problem) -> Losses:
    """Final test loss per model, by width, from the engine."""
    losses: dict[int, list[np.ndarray]] = {}
    for shard in plan_shards(problem.config):
        for event in train_shard(problem, shard):
            if isinstance(event, ShardFinished):
                losses.setdefault(shard.width, []).append(event.test_loss)
    return {w: np.concatenate(parts) for w, parts in losses.items()}


def train_one(problem: Problem, width: int, seed: int) -> float:
    """One model, the textbook way: nn.Sequential, torch.optim.Adam, full-batch MSE."""
    cfg = problem.config
    assert problem.x_train is not None and problem.y_train is not None
    d = cfg.target.input_dim
    model = nn.Sequential(nn.Linear(d, width), nn.SiLU(), nn.Linear(width, 1)).to(problem.dtype)
    w0, b0, w1, b1 = init_parameters(cfg, width, (seed,))
    with torch.no_grad():
        model[0].weight.copy_(w0[0].T)
        model[0].bias.copy_(b0[0, 0])
        model[2].weight.copy_(w1[0].T)
        model[2].bias.copy_(b1[0, 0])
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.training.lr)
    for step in range(cfg.training.steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(cfg, step)
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(problem.x_train).squeeze(-1), problem.y_train)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return nn.functional.mse_loss(model(problem.x_test).squeeze(-1), problem.y_test).item()


def run_loop(problem: Problem) -> Losses:
    cfg = problem.config
    return {w: np.array([train_one(problem, w, s) for s in range(cfg.seeds.count)]) for w in cfg.model.widths}


def timed(fn: Callable[[Problem], Losses], problem: Problem) -> tuple[Losses, float]:
    started = time.perf_counter()
    result = fn(problem)
    return result, time.perf_counter() - started


def build_config(args: argparse.Namespace) -> Config:
    overrides = [
        f"model.widths=[{args.widths}]",
        f"seeds.count={args.seeds}",
        f"training.steps={args.steps}",
        f"training.eval_every={args.steps}",
        f'training.dtype="{args.dtype}"',
        "device=cpu",
    ]
    return load_config(resolve_preset("lottery-silu"), overrides)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--widths", default="2,4,8,16,32,64", help="comma-separated hidden widths")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float64")
    cfg = build_config(parser.parse_args())
    t = cfg.training
    assert cfg.model.hidden_layers == 1, "the per-model loop only builds one-hidden-layer MLPs"
    assert t.batch_size == 0, "the per-model loop trains full batch"

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device cpu")
    print(
        f"lottery-silu: widths {list(cfg.model.widths)}, {cfg.seeds.count} seeds, {t.steps} steps, "
        f"{t.optimizer} lr={t.lr:g} {t.schedule}, {t.dtype}, n_train={cfg.data.n_train}"
    )
    problem = prepare_problem(cfg, torch.device("cpu"))
    batched, batched_s = timed(run_batched, problem)
    loop, loop_s = timed(run_loop, problem)

    print(f"\n{'width':>6} {'batched median':>15} {'loop median':>15} {'rel diff':>10}")
    worst = 0.0
    for w in cfg.model.widths:
        a, b = float(np.median(batched[w])), float(np.median(loop[w]))
        rel = abs(a - b) / max(abs(a), abs(b), 1e-300)
        worst = max(worst, rel)
        print(f"{w:>6} {a:>15.6e} {b:>15.6e} {rel:>10.2e}")
    speedup = loop_s / batched_s
    print(f"\nmax relative difference of medians: {worst:.2e}")
    print(f"batched: {batched_s:.1f} s   per-model loop: {loop_s:.1f} s   speed-up: {speedup:.1f}x")

    failures = []
    if not worst <= MAX_RELATIVE_DIFF:
        failures.append(f"medians differ by {worst:.1%} relative (limit {MAX_RELATIVE_DIFF:.0%})")
    if speedup < MIN_SPEEDUP:
        failures.append(f"speed-up {speedup:.2f}x is below {MIN_SPEEDUP:g}x")
    for failure in failures:
        print(f"FAIL: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
