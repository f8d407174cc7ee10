"""The engine against its peers and the machine's limit, on one sweep, each contender in a fresh process.

The sweep: ``lottery-silu`` (y = x² on [-2, 2], one hidden SiLU layer, 1000 points, full-batch Adam with a
cosine schedule) at widths 2–64 × 8 seeds for 2000 steps, float64. The contenders:

- ``fused``: ``scaletui.engine.train_shard`` as the runner calls it (the fused kernel where it applies);
- ``general``: the same with ``execution.engine = "general"`` (batched PyTorch, autograd);
- ``loop``: one ``nn.Sequential`` + ``torch.optim.Adam`` per model, one after another, as a research script does;
- ``compile``: all seeds of a width batched, the loss under ``torch.compile`` (backward by AOTAutograd) and
  the Adam update compiled too; compilation is timed apart and left out of its wall time;
- ``jax``: all seeds of a width under ``jax.vmap``, the steps under ``lax.scan``, when JAX is installed
  (compilation likewise left out);
- ``limit``: not a trainer but the machine's measured limit, a microbenchmark of PyTorch's SiLU forward and
  backward (one vectorised pass each) over as many activations as the sweep computes, i.e. the least time
  any trainer needs for the activations alone.

Every contender starts from the same weights (``init_parameters``) and data; the script checks that their
final test losses agree (each model of ``fused`` against ``general``; per-width medians of the others within
10%), prints each time as min and median of the repetitions, and each ratio against ``fused``. With
``--busy`` every repetition runs beside one busy process (a Python loop), to see what contention costs.

Run from the repository root::

    python benchmarks/bench_engine.py [--repeats 3] [--steps 2000] [--contenders fused,general,loop,compile,jax,limit]
        [--busy] [--device cpu|cuda] [--dtype float64]

Exit code 0 when the losses agree, else 1. The targets of issue #12 are printed as met or missed.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path

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
    trainer_class,
)
from scaletui.mlp import forward
from scaletui.presets import resolve_preset

CONTENDERS = ("fused", "general", "loop", "compile", "jax", "limit")
MAX_MEDIAN_DIFF = 0.10  # per-width medians of independent implementations
MAX_MODEL_DIFF = 1e-6  # each model, fused against general: same arithmetic up to rounding
Losses = dict[int, list[float]]  # final test loss of each seed, by width


def build_config(args: argparse.Namespace, engine: str = "auto") -> Config:
    overrides = [
        f"model.widths=[{args.widths}]",
        f"seeds.count={args.seeds}",
        f"training.steps={args.steps}",
        f"training.eval_every={args.steps}",
        f'training.dtype="{args.dtype}"',
        f'device="{args.device}"',
        f'execution.engine="{engine}"',
        "execution.checkpoint_seconds=0",
    ]
    return load_config(resolve_preset("lottery-silu"), overrides)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


# --- the contenders: each returns (seconds, losses, extra facts) ------------------------------------------


def run_engine(problem: Problem) -> tuple[float, Losses, dict]:
    losses: Losses = {}
    started = time.perf_counter()
    for shard in plan_shards(problem.config):
        for event in train_shard(problem, shard):
            if isinstance(event, ShardFinished):
                losses.setdefault(shard.width, []).extend(event.test_loss.tolist())
    sync(problem.device)
    seconds = time.perf_counter() - started
    return seconds, losses, {"trainer": trainer_class(problem.config, problem.device).__name__}


def run_loop(problem: Problem) -> tuple[float, Losses, dict]:
    """One model at a time, the textbook way: nn.Sequential, torch.optim.Adam, full-batch MSE."""
    cfg = problem.config
    assert problem.x_train is not None and problem.y_train is not None
    losses: Losses = {}
    started = time.perf_counter()
    for width in cfg.model.widths:
        for seed in range(cfg.seeds.count):
            model = nn.Sequential(nn.Linear(cfg.target.input_dim, width), nn.SiLU(), nn.Linear(width, 1))
            model = model.to(problem.device, problem.dtype)
            w0, b0, w1, b1 = init_parameters(cfg, width, (seed,))
            with torch.no_grad():
                for target, source in zip(model.parameters(), (w0[0].T, b0[0, 0], w1[0].T, b1[0, 0]), strict=True):
                    target.copy_(source)
            optimizer = torch.optim.Adam(model.parameters(), lr=cfg.training.lr)
            for step in range(cfg.training.steps):
                for group in optimizer.param_groups:
                    group["lr"] = learning_rate(cfg, step)
                optimizer.zero_grad()
                nn.functional.mse_loss(model(problem.x_train).squeeze(-1), problem.y_train).backward()
                optimizer.step()
            with torch.no_grad():
                loss = nn.functional.mse_loss(model(problem.x_test).squeeze(-1), problem.y_test).item()
            losses.setdefault(width, []).append(loss)
    sync(problem.device)
    return time.perf_counter() - started, losses, {}


def run_compiled(problem: Problem) -> tuple[float, Losses, dict]:
    """All seeds of a width batched; loss and Adam update under torch.compile, one compiled step per width."""
    cfg = problem.config
    x, y = problem.x_train, problem.y_train
    assert x is not None and y is not None
    act = cfg.model.activation

    def loss_of(params: list[torch.Tensor]) -> torch.Tensor:
        return ((forward(params, x, act) - y) ** 2).mean(dim=-1).sum()

    def adam(params, grads, m, v, lr, t):  # lr and t are 0-dim tensors: new values never recompile
        with torch.no_grad():
            for p, g, mi, vi in zip(params, grads, m, v, strict=True):
                mi.mul_(0.9).add_(g, alpha=0.1)
                vi.mul_(0.999).addcmul_(g, g, value=0.001)
                p.sub_(mi / ((vi / (1 - 0.999**t)).sqrt() + 1e-8) * (lr / (1 - 0.9**t)))

    compiled_loss, compiled_adam = torch.compile(loss_of), torch.compile(adam)
    compile_seconds, losses = 0.0, {}
    started = time.perf_counter()
    for width in cfg.model.widths:
        params = [
            p.to(problem.device, problem.dtype).requires_grad_(True)
            for p in init_parameters(cfg, width, tuple(range(cfg.seeds.count)))
        ]
        m = [torch.zeros_like(p) for p in params]
        v = [torch.zeros_like(p) for p in params]
        for step in range(cfg.training.steps):
            began = time.perf_counter()
            grads = torch.autograd.grad(compiled_loss(params), params)
            lr = torch.tensor(learning_rate(cfg, step), dtype=problem.dtype, device=problem.device)
            t = torch.tensor(step + 1.0, dtype=problem.dtype, device=problem.device)
            compiled_adam(params, grads, m, v, lr, t)
            if step < 2:  # the first two calls compile (the second for the dynamic step count)
                sync(problem.device)
                compile_seconds += time.perf_counter() - began
        with torch.no_grad():
            out = forward([p.detach() for p in params], problem.x_test, act)
            losses[width] = ((out - problem.y_test) ** 2).mean(dim=-1).double().cpu().tolist()
    sync(problem.device)
    return time.perf_counter() - started - compile_seconds, losses, {"compile_seconds": compile_seconds}


def run_jax(problem: Problem) -> tuple[float, Losses, dict]:
    """All seeds of a width under jax.vmap, all steps under lax.scan; the first call per width compiles."""
    import jax

    jax.config.update("jax_enable_x64", problem.dtype == torch.float64)
    import jax.numpy as jnp

    cfg = problem.config
    assert problem.x_train is not None and problem.y_train is not None
    x, y = jnp.asarray(problem.x_train.cpu().numpy()), jnp.asarray(problem.y_train.cpu().numpy())
    x_test, y_test = jnp.asarray(problem.x_test.cpu().numpy()), jnp.asarray(problem.y_test.cpu().numpy())
    rates = jnp.asarray([learning_rate(cfg, s) for s in range(cfg.training.steps)])

    def predict(p, inputs):
        w0, b0, w1, b1 = p
        return (jax.nn.silu(inputs @ w0 + b0) @ w1 + b1)[:, 0]

    def train(p):
        def step(carry, lr_t):
            p, m, v = carry
            lr, t = lr_t
            g = jax.grad(lambda q: jnp.mean((predict(q, x) - y) ** 2))(p)
            m = jax.tree.map(lambda mi, gi: 0.9 * mi + 0.1 * gi, m, g)
            v = jax.tree.map(lambda vi, gi: 0.999 * vi + 0.001 * gi * gi, v, g)
            p = jax.tree.map(
                lambda pi, mi, vi: pi - mi / (jnp.sqrt(vi / (1 - 0.999**t)) + 1e-8) * (lr / (1 - 0.9**t)), p, m, v
            )
            return (p, m, v), None

        zeros = jax.tree.map(jnp.zeros_like, p)
        steps = jnp.arange(1, cfg.training.steps + 1, dtype=rates.dtype)
        (p, _, _), _ = jax.lax.scan(step, (p, zeros, zeros), (rates, steps))
        return jnp.mean((predict(p, x_test) - y_test) ** 2)

    trained = jax.jit(jax.vmap(train))
    compile_seconds, losses = 0.0, {}
    started = time.perf_counter()
    for width in cfg.model.widths:
        params = tuple(jnp.asarray(p.numpy()) for p in init_parameters(cfg, width, tuple(range(cfg.seeds.count))))
        began = time.perf_counter()
        trained.lower(params).compile()
        compile_seconds += time.perf_counter() - began
        losses[width] = np.asarray(trained(params).block_until_ready()).tolist()
    return time.perf_counter() - started - compile_seconds, losses, {"compile_seconds": compile_seconds}


def run_limit(problem: Problem) -> tuple[float, Losses, dict]:
    """Seconds the sweep's activations take through PyTorch's vectorised SiLU forward and backward alone."""
    cfg = problem.config
    units = sum(cfg.model.widths) * cfg.seeds.count
    z = torch.randn(cfg.data.n_train, units, dtype=problem.dtype, device=problem.device)
    grad, forward_out, backward_out = torch.ones_like(z), torch.empty_like(z), torch.empty_like(z)

    def one_pass() -> None:  # into buffers of its own: the allocator is no part of the limit
        torch.ops.aten.silu.out(z, out=forward_out)
        torch.ops.aten.silu_backward.grad_input(grad, z, grad_input=backward_out)

    repeats = 50
    for _ in range(3):
        one_pass()
    sync(problem.device)
    started = time.perf_counter()
    for _ in range(repeats):
        one_pass()
    sync(problem.device)
    per_pass = (time.perf_counter() - started) / repeats
    rate = z.numel() / per_pass
    return per_pass * cfg.training.steps, {}, {"activations_per_second": rate}


RUNNERS = {
    "fused": run_engine,
    "general": run_engine,
    "loop": run_loop,
    "compile": run_compiled,
    "jax": run_jax,
    "limit": run_limit,
}


def one(args: argparse.Namespace) -> None:
    """The child: one contender, one repetition, a line of JSON on stdout."""
    if args.one == "jax":
        try:
            import jax  # noqa: F401
        except ImportError:
            print(json.dumps({"skipped": "JAX is not installed"}))
            return
    cfg = build_config(args, "general" if args.one == "general" else "auto")
    problem = prepare_problem(cfg, torch.device(args.device))
    seconds, losses, facts = RUNNERS[args.one](problem)
    print(json.dumps({"seconds": seconds, "losses": {str(w): v for w, v in losses.items()}, **facts}))


def width2_overhead(args: argparse.Namespace, engine: str) -> float:
    """Microseconds per step for width 2 × the sweep's seeds alone: what a step costs beyond its arithmetic."""
    child = argparse.Namespace(**{**vars(args), "widths": "2"})
    problem = prepare_problem(build_config(child, engine), torch.device(args.device))
    return min(run_engine(problem)[0] for _ in range(3)) / child.steps * 1e6


def measure(args: argparse.Namespace, name: str) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", name]
    for key in ("steps", "seeds", "widths", "dtype", "device"):
        cmd += [f"--{key}", str(getattr(args, key))]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or ["no output"]
        return {"skipped": f"failed: {lines[-1]}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def busy_process() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--widths", default="2,4,8,16,32,64", help="comma-separated hidden widths")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float64")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--busy", action="store_true", help="run every repetition beside one busy process")
    parser.add_argument("--one", choices=CONTENDERS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one(args)
        return 0

    names = [n for n in args.contenders.split(",") if n]
    cfg = build_config(args)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, {args.dtype}")
    print(f"lottery-silu: widths {list(cfg.model.widths)} × {cfg.seeds.count} seeds × {args.steps} steps, full batch")
    print(
        f"{args.repeats} repetitions, each contender in a fresh process, alternated"
        + (", beside a busy process" * args.busy)
    )
    results: dict[str, list[dict]] = {n: [] for n in names}
    busy = busy_process() if args.busy else None
    try:
        for _ in range(args.repeats):
            for name in names:  # alternated, so a change in the machine's load touches every contender alike
                results[name].append(measure(args, name))
        overhead = {e: width2_overhead(args, e) for e in ("auto", "general") if {"fused", "general"} & set(names)}
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()

    times: dict[str, tuple[float, float]] = {}
    print(f"\n{'contender':<10} {'min s':>9} {'median s':>9} {'÷ fused':>9}  notes")
    for name in names:
        runs = [r for r in results[name] if "seconds" in r]
        if not runs:
            print(f"{name:<10} {'–':>9} {'–':>9} {'–':>9}  {results[name][0].get('skipped', '')}")
            continue
        seconds = [r["seconds"] for r in runs]
        times[name] = (min(seconds), statistics.median(seconds))
        notes = []
        if "compile_seconds" in runs[0]:
            notes.append(f"compiling {statistics.median(r['compile_seconds'] for r in runs):.1f} s not counted")
        if "activations_per_second" in runs[0]:
            notes.append(f"{statistics.median(r['activations_per_second'] for r in runs) / 1e9:.2f} G SiLU act/s")
        if "trainer" in runs[0]:
            notes.append(runs[0]["trainer"])
        ratio = f"{times[name][1] / times['fused'][1]:.2f}" if "fused" in times else "–"
        print(f"{name:<10} {times[name][0]:>9.2f} {times[name][1]:>9.2f} {ratio:>9}  {'; '.join(notes)}")
    for engine, micro in overhead.items():
        print(f"width 2 × {args.seeds} seeds, {'fused' if engine == 'auto' else engine}: {micro:.1f} µs per step")

    agree = check_losses(results)
    report_targets(times, overhead)
    return 0 if agree else 1


def check_losses(results: dict[str, list[dict]]) -> bool:
    losses = {n: r[0]["losses"] for n, r in results.items() if r and r[0].get("losses")}
    if not losses:
        return True
    agree = True
    if "fused" in losses and "general" in losses:
        a = np.concatenate([losses["fused"][w] for w in sorted(losses["fused"], key=int)])
        b = np.concatenate([losses["general"][w] for w in sorted(losses["general"], key=int)])
        worst = float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))
        agree &= worst <= MAX_MODEL_DIFF
        print(f"\nfused vs general, model by model: max relative difference {worst:.1e} (limit {MAX_MODEL_DIFF:g})")
    reference = "fused" if "fused" in losses else next(iter(losses))
    for name, other in losses.items():
        if name == reference:
            continue
        worst = max(
            abs(np.median(other[w]) - np.median(losses[reference][w]))
            / max(abs(np.median(other[w])), abs(np.median(losses[reference][w])), 1e-300)
            for w in losses[reference]
        )
        agree &= worst <= MAX_MEDIAN_DIFF
        print(f"{name} vs {reference}: per-width medians differ by at most {worst:.1e} relative")
    print("final losses agree" if agree else "FAIL: final losses disagree")
    return agree


def report_targets(times: dict[str, tuple[float, float]], overhead: dict[str, float]) -> None:
    if "fused" not in times:
        return
    fused = times["fused"][1]

    def line(what: str, value: float, goal: str, met: bool) -> None:
        print(f"  {what:<42} {value:>7.2f}   goal {goal:<8} {'met' if met else 'MISSED'}")

    print("\nissue #12's targets (medians):")
    if "limit" in times:
        line("fused ÷ the SiLU limit", fused / times["limit"][1], "≤ 1.5", fused / times["limit"][1] <= 1.5)
    peers = [times[p][1] for p in ("compile", "jax") if p in times]
    if peers:
        line("fastest peer ÷ fused", min(peers) / fused, "≥ 2", min(peers) / fused >= 2)
    if "loop" in times:
        line("per-model loop ÷ fused", times["loop"][1] / fused, "(≥ 8 e2e)", times["loop"][1] / fused >= 8)
    if "auto" in overhead:
        line("width-2 µs per step (fused)", overhead["auto"], "< 30", overhead["auto"] < 30)
    if not math.isfinite(fused):
        print("  (no fused time)")


if __name__ == "__main__":
    sys.exit(main())
