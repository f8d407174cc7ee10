"""Batched MLP ensembles and the training loop.

All seeds of one width train together as one set of batched tensors (leading dimension = model), so a
sweep costs a handful of kernels per step instead of a Python loop over models. Every model draws its
initialisation and its data order from generators seeded by (base seed, width, seed index) alone, so a
model trains the same whether it is alone or one of hundreds in a batch, and a sweep that adds a data size
or a depth leaves every other model's result unchanged. A seed's network starts from the same draws at
every data size (and, up to its extra layers, every depth): common random numbers, so the difference
between two data sizes is the data's, not the initialisation's.

Each data size trains on the first n points of one training set drawn from the run's base seed: the inputs
are drawn row by row and the label noise in fixed blocks, so a smaller set is exactly a prefix of a larger
one (the sets are nested) and does not depend on which other sizes the sweep holds.

Training is a generator of events: the caller (the runner) decides what to store and when to stop.
Every ``execution.checkpoint_seconds`` it also yields the shard's whole training state at a step boundary
(:class:`Checkpointed`); handed back as ``resume``, that state continues the shard bit for bit. When the
caller asks it to stop (``stop``), it yields that state at the next boundary and ends there, so a stop that
is asked for loses no step.
"""

from __future__ import annotations

import itertools
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch

from scaletui import fused
from scaletui.config import Config, ConfigError, evaluates_at, parameter_count
from scaletui.levenberg import LevenbergMarquardt
from scaletui.mlp import ACTIVATION_SLOPES, TORCH_ACTIVATIONS, forward, layer_sizes, output_layer
from scaletui.targets import Target, build_target

# The generator streams of model_seed(base, width, seed, stream): each model's initialisation and data order,
# and, with width and seed 0, the run's shared test inputs and training set.
INIT_STREAM, DATA_STREAM = 0, 1
TEST_SET_STREAM, TRAIN_SET_STREAM, TRAIN_NOISE_STREAM = 7, 3, 5
# Label noise is drawn this many numbers at a time: torch.randn's first n numbers depend on n (it fills in
# vectorised groups), a block's never do, so every data size's noise is a prefix of the largest's.
NOISE_BLOCK = 4096
# Random draws are made in chunks of about this many numbers per model: a constant of the config,
# never of the batch, so that a model's stream does not depend on what it is batched with.
CHUNK_NUMBERS = 1 << 16
# Unit activations (forward and backward) a fused call must hold per thread it starts: a few milliseconds.
FUSED_WORK_PER_THREAD = 1 << 22
FUSED_CALL_SECONDS = 0.5  # at most this long in one fused call, as far as the seconds per step so far tell


def model_seed(base: int, width: int, seed_index: int, stream: int) -> int:
    """A 63-bit seed for one model's stream, well mixed from its coordinates in the sweep."""
    words = np.random.SeedSequence([base, width, seed_index, stream]).generate_state(2)
    return (int(words[0]) << 31) ^ int(words[1])


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA without it is an error, not a silent fallback."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", "cuda was requested but no CUDA device is available (use auto or cpu)")
    return torch.device(name)


def dtype_of(name: str) -> torch.dtype:
    return {"float32": torch.float32, "float64": torch.float64}[name]


class CheckpointError(ValueError):
    """A saved training state that does not fit the shard it was handed to; the message names the array."""


State = dict[str, np.ndarray]


def saved(tensor: torch.Tensor) -> np.ndarray:
    """A tensor as an array of its own: never a view of a buffer that training goes on changing."""
    return tensor.detach().cpu().clone().numpy()


def _dtype_name(tensor: torch.Tensor) -> str:
    return str(tensor.dtype).removeprefix("torch.")


def restored(state: State, key: str, like: torch.Tensor) -> torch.Tensor:
    """The saved array ``key`` as a tensor of ``like``'s shape, dtype and device, or a CheckpointError naming it."""
    if key not in state:
        raise CheckpointError(f"it has no {key!r}")
    value = torch.from_numpy(np.array(state[key]))
    if value.shape != like.shape or value.dtype != like.dtype:
        found, needed = f"{_dtype_name(value)} {tuple(value.shape)}", f"{_dtype_name(like)} {tuple(like.shape)}"
        raise CheckpointError(f"{key!r} is {found}, the shard needs {needed}")
    return value.to(like.device)


@dataclass
class Problem:
    """The data every model of a run shares: target, training set (unless fresh) and test set."""

    config: Config
    target: Target
    device: torch.device
    dtype: torch.dtype
    x_train: torch.Tensor | None
    y_train: torch.Tensor | None
    x_test: torch.Tensor
    y_test: torch.Tensor


def label_noise(base: int, n: int) -> torch.Tensor:
    """The first n numbers of the run's label-noise stream, N(0, 1): the same whatever n, up to n."""
    gen = torch.Generator().manual_seed(model_seed(base, 0, 0, TRAIN_NOISE_STREAM))
    blocks = -(-n // NOISE_BLOCK)
    return torch.cat([torch.randn(NOISE_BLOCK, generator=gen, dtype=torch.float64) for _ in range(blocks)])[:n]


def prepare_problem(cfg: Config, device: torch.device) -> Problem:
    """Build the target and draw the data sets of one cell of the sweep (``cfg.cell(...)``) from the run's base
    seed: the test set every cell shares, and the first ``data.n_train`` points of the run's training set."""
    n_train = cfg.data.n_train
    if isinstance(n_train, tuple) or isinstance(cfg.model.hidden_layers, tuple):
        raise ValueError("prepare_problem takes one cell of the sweep: pass cfg.cell(n_train, depth)")
    target = build_target(cfg.target)
    dtype = dtype_of(cfg.training.dtype)
    x_test = target.test_inputs(cfg.data.n_test, model_seed(cfg.seeds.base, 0, 0, TEST_SET_STREAM), torch.float64)
    y_test = target(x_test)
    x_train = y_train = None
    if not cfg.data.fresh:
        gen = torch.Generator().manual_seed(model_seed(cfg.seeds.base, 0, 0, TRAIN_SET_STREAM))
        x_train = target.sample_inputs(n_train, gen, torch.float64)  # row by row: a prefix of any larger draw
        y_train = target(x_train)
        if cfg.data.noise > 0:
            y_train = y_train + cfg.data.noise * label_noise(cfg.seeds.base, n_train)
        x_train, y_train = x_train.to(device, dtype), y_train.to(device, dtype)
    return Problem(cfg, target, device, dtype, x_train, y_train, x_test.to(device, dtype), y_test.to(device, dtype))


def prepare_problems(cfg: Config, device: torch.device) -> dict[tuple[int, int], Problem]:
    """Every cell's problem, keyed by (data size, depth)."""
    return {(n, d): prepare_problem(cfg.cell(n, d), device) for n, d in cfg.cells}


def init_parameters(cfg: Config, width: int, seeds: tuple[int, ...]) -> list[torch.Tensor]:
    """Weights and biases for the given seeds, as [W0, b0, W1, b1, ...] with a leading model dimension.

    Drawn in float64 on the CPU from each model's own generator, so float32 and float64 runs, and CPU
    and CUDA runs, start from the same point.
    """
    sizes = layer_sizes(cfg.target.input_dim, width, cfg.model.hidden_layers)
    per_model: list[list[torch.Tensor]] = []
    for s in seeds:
        gen = torch.Generator().manual_seed(model_seed(cfg.seeds.base, width, s, INIT_STREAM))
        tensors = []
        for fan_in, fan_out in itertools.pairwise(sizes):
            if cfg.model.init == "torch":  # nn.Linear's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for both
                bound = 1 / math.sqrt(fan_in)
                w = (torch.rand((fan_in, fan_out), generator=gen, dtype=torch.float64) * 2 - 1) * bound
                b = (torch.rand((1, fan_out), generator=gen, dtype=torch.float64) * 2 - 1) * bound
            elif cfg.model.init == "normal":
                w = torch.randn((fan_in, fan_out), generator=gen, dtype=torch.float64) / math.sqrt(fan_in)
                b = torch.zeros((1, fan_out), dtype=torch.float64)
            else:  # xavier (Glorot) uniform
                bound = math.sqrt(6 / (fan_in + fan_out))
                w = (torch.rand((fan_in, fan_out), generator=gen, dtype=torch.float64) * 2 - 1) * bound
                b = torch.zeros((1, fan_out), dtype=torch.float64)
            tensors += [w, b]
        per_model.append(tensors)
    return [torch.stack(group) for group in zip(*per_model, strict=True)]


def learning_rate(cfg: Config, step: int) -> float:
    """The schedule: linear warm-up, then constant, cosine to zero, or step decay."""
    t = cfg.training
    if step < t.warmup_steps:
        return t.lr * (step + 1) / t.warmup_steps
    after = step - t.warmup_steps
    if t.schedule == "cosine":
        span = max(1, t.steps - t.warmup_steps)
        return t.lr * 0.5 * (1 + math.cos(math.pi * after / span))
    if t.schedule == "step":
        return t.lr * t.step_gamma ** (after // t.step_every)
    return t.lr


class FlatParameters:
    """All of a shard's weights in one contiguous leaf tensor, handed to the model as shaped views.

    One flat buffer lets the optimiser update every layer of every model in a few kernels per step,
    which is most of what a step costs for small nets.
    """

    def __init__(self, tensors: list[torch.Tensor]) -> None:
        self.shapes = [t.shape for t in tensors]
        self.flat = torch.cat([t.reshape(-1) for t in tensors]).requires_grad_(True)
        models = tensors[0].shape[0]
        device = tensors[0].device
        # Which model each element belongs to: every tensor is laid out model-major.
        self.model_of = torch.cat(
            [torch.arange(models, device=device).repeat_interleave(t[0].numel()) for t in tensors]
        )

    def views(self) -> list[torch.Tensor]:
        return self.views_of(self.flat, self.shapes)

    @staticmethod
    def views_of(flat: torch.Tensor, shapes: list[torch.Size]) -> list[torch.Tensor]:
        """``flat`` cut into tensors of the given shapes, in order, without copying."""
        out, offset = [], 0
        for shape in shapes:
            n = shape.numel()
            out.append(flat[offset : offset + n].view(shape))
            offset += n
        return out


class BatchedOptimizer:
    """Adam or SGD over the flat parameters. Both are elementwise, so each model keeps its own state.

    ``alive`` (one bool per model) freezes diverged models: their parameters are never touched again.
    """

    def __init__(self, params: FlatParameters, cfg: Config) -> None:
        self.params = params
        self.kind = cfg.training.optimizer
        self.momentum = cfg.training.momentum
        self.betas = (0.9, 0.999)
        self.eps = 1e-8
        self.t = 0
        self.m = torch.zeros_like(params.flat)
        self.v = torch.zeros_like(params.flat) if self.kind == "adam" else self.m

    @torch.no_grad()
    def step(self, lr: float, alive: torch.Tensor) -> None:
        self.t += 1
        flat = self.params.flat
        grad = flat.grad
        assert grad is not None
        if self.kind == "adam":
            b1, b2 = self.betas
            self.m.mul_(b1).add_(grad, alpha=1 - b1)
            self.v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
            denominator = (self.v / (1 - b2**self.t)).sqrt_().add_(self.eps)
            update = (self.m / denominator).mul_(lr / (1 - b1**self.t))
        elif self.momentum > 0:
            self.m.mul_(self.momentum).add_(grad)
            update = self.m * lr
        else:
            update = grad * lr
        flat.sub_(
            torch.where(alive[self.params.model_of], update, torch.zeros((), dtype=flat.dtype, device=flat.device))
        )
        flat.grad = None

    def state_dict(self) -> State:
        """The step count and the moments: Adam's two, SGD's momentum (plain SGD keeps none)."""
        state = {"optimizer_step": np.array(self.t, dtype=np.int64)}
        if self.kind == "adam" or self.momentum > 0:
            state["moment1"] = saved(self.m)
        if self.kind == "adam":
            state["moment2"] = saved(self.v)
        return state

    @torch.no_grad()
    def load_state(self, state: State) -> None:
        self.t = int(restored(state, "optimizer_step", torch.tensor(0)))
        if self.kind == "adam" or self.momentum > 0:
            self.m.copy_(restored(state, "moment1", self.m))
        if self.kind == "adam":
            self.v.copy_(restored(state, "moment2", self.v))


@dataclass(frozen=True)
class Shard:
    """A unit of work: some seeds of one width at one data size and depth. Shards are independent and can run
    anywhere; :func:`plan_shards` names every shard's cell. The engine trains whatever problem it is handed,
    so a test that trains one problem directly may leave the cell at 0."""

    width: int
    seeds: tuple[int, ...]
    n_train: int = 0
    depth: int = 0

    @property
    def cell(self) -> tuple[int, int]:
        return self.n_train, self.depth


@dataclass
class Evaluated:
    """Losses of a shard's models at one step (NaN for diverged models)."""

    shard: Shard
    step: int
    train_loss: np.ndarray
    test_loss: np.ndarray


@dataclass
class Progressed:
    """A cheap tick between evaluations, so progress and heartbeats stay current."""

    shard: Shard
    step: int


@dataclass
class ShardFinished:
    """Final per-model results of a shard."""

    shard: Shard
    train_loss: np.ndarray
    test_loss: np.ndarray
    diverged_step: np.ndarray  # -1 where the model stayed finite
    outputs: np.ndarray  # (models, n_test) on the test set, float64
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    wall_seconds: float = 0.0


@dataclass
class Checkpointed:
    """A shard's whole training state at the boundary after ``step`` steps, taken when a checkpoint was due.

    Everything the next steps depend on: weights, optimiser state, the data stream's generators and position,
    which models live and when the others diverged. Plain arrays, so a reader never needs torch to hold one.
    """

    shard: Shard
    step: int
    state: State
    stopping: bool = False  # taken because a stop was asked for: the shard's training ends with it


class StopFlag(Protocol):
    """What :func:`train_shard` looks at after each call of the trainer: a :class:`threading.Event` in the
    runner's process, a :func:`multiprocessing.Event` in a worker."""

    def is_set(self) -> bool: ...


@dataclass
class Resumed:
    """A shard took up a saved state and goes on from ``step``; or, with ``refused``, why it could not (it
    then starts from step 0)."""

    shard: Shard
    step: int
    refused: str | None = None


Event = Evaluated | Progressed | Checkpointed | Resumed | ShardFinished


@dataclass
class ShardFailed:
    """What an executor reports when a shard could not finish: its worker died, or its training raised. The
    engine never yields it; ``reason`` is one line for the event log."""

    shard: Shard
    reason: str


class DataStream:
    """Each model's training batches, drawn from its own generator in config-sized chunks."""

    def __init__(self, problem: Problem, shard: Shard) -> None:
        cfg = problem.config
        self.problem = problem
        self.batch = cfg.training.batch_size
        self.generators = [
            torch.Generator().manual_seed(model_seed(cfg.seeds.base, shard.width, s, DATA_STREAM)) for s in shard.seeds
        ]
        self.queue_x: torch.Tensor | None = None
        self.queue_y: torch.Tensor | None = None
        self.position = 0
        # The generators' states before the chunk in the queue was drawn: a checkpoint saves these and the
        # position rather than the chunk itself, which can be far bigger than the models.
        self.chunk_states: list[torch.Tensor] = []
        if cfg.data.fresh:
            self.chunk_steps = max(1, CHUNK_NUMBERS // (self.batch * cfg.target.input_dim))
        else:
            self.chunk_steps = cfg.data.n_train // self.batch  # one epoch of batches, no partial batch

    def _refill(self) -> None:
        p, cfg = self.problem, self.problem.config
        n = self.chunk_steps * self.batch
        self.chunk_states = [g.get_state() for g in self.generators]
        if cfg.data.fresh:
            xs, noises = [], []
            for gen in self.generators:
                xs.append(p.target.sample_inputs(n, gen, torch.float64))
                if cfg.data.noise > 0:
                    noises.append(torch.randn(n, generator=gen, dtype=torch.float64))
            x = torch.stack(xs)  # (models, n, d)
            y = p.target(x.reshape(-1, x.shape[-1])).reshape(x.shape[:2])
            if noises:
                y = y + cfg.data.noise * torch.stack(noises)
            self.queue_x, self.queue_y = x.to(p.device, p.dtype), y.to(p.device, p.dtype)
        else:
            assert p.x_train is not None and p.y_train is not None
            order = torch.stack([torch.randperm(cfg.data.n_train, generator=g)[:n] for g in self.generators])
            order = order.to(p.device)
            self.queue_x, self.queue_y = p.x_train[order], p.y_train[order]
        self.position = 0

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        x, y, _ = self.take(1)
        return x, y

    def take(self, count: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Up to ``count`` consecutive batches from the current chunk, as (models, taken × batch, …) views,
        and how many were taken (fewer where the chunk ends)."""
        if self.queue_x is None or self.position >= self.chunk_steps:
            self._refill()
        assert self.queue_x is not None and self.queue_y is not None
        taken = min(count, self.chunk_steps - self.position)
        lo, hi = self.position * self.batch, (self.position + taken) * self.batch
        self.position += taken
        return self.queue_x[:, lo:hi], self.queue_y[:, lo:hi], taken

    def state_dict(self) -> State:
        drawn = self.queue_x is not None
        states = self.chunk_states if drawn else [g.get_state() for g in self.generators]
        return {
            "stream_states": torch.stack(states).numpy(),
            "stream_drawn": np.array(drawn),
            "stream_position": np.array(self.position, dtype=np.int64),
        }

    def load_state(self, state: State) -> None:
        """Put every generator back where the current chunk began and draw that chunk again."""
        states = restored(state, "stream_states", torch.stack([g.get_state() for g in self.generators]))
        drawn = bool(restored(state, "stream_drawn", torch.tensor(False)))
        position = int(restored(state, "stream_position", torch.tensor(0)))
        if not 0 <= position <= self.chunk_steps:
            raise CheckpointError(f"'stream_position' {position} is outside a chunk of {self.chunk_steps} batches")
        try:
            for generator, saved_state in zip(self.generators, states, strict=True):
                generator.set_state(saved_state.clone())
        except RuntimeError as exc:  # a state the generator cannot take
            raise CheckpointError(f"'stream_states' cannot be taken up ({exc})") from None
        self.queue_x = self.queue_y = None
        if drawn:
            self._refill()
        self.position = position


def _mse(params: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor, activation: str) -> torch.Tensor:
    """Per-model mean squared error, shape (models,); x and y may be shared or per model."""
    return ((forward(params, x, activation) - y) ** 2).mean(dim=-1)


@torch.no_grad()
def evaluate_outputs(params: list[torch.Tensor], x: torch.Tensor, activation: str) -> torch.Tensor:
    """Outputs on a shared input set, in blocks so wide ensembles on big test sets fit in memory."""
    models, width = params[0].shape[0], params[0].shape[-1]
    block = max(1, (1 << 24) // max(1, models * width))
    return torch.cat([forward(params, x[i : i + block], activation) for i in range(0, x.shape[0], block)], dim=1)


def _eval_losses(problem: Problem, params: list[torch.Tensor], running_train: torch.Tensor | None):
    act = problem.config.model.activation
    test = ((evaluate_outputs(params, problem.x_test, act) - problem.y_test) ** 2).mean(dim=-1)
    if problem.x_train is not None:
        train = ((evaluate_outputs(params, problem.x_train, act) - problem.y_train) ** 2).mean(dim=-1)
    else:
        train = running_train if running_train is not None else test
    return train, test


class GradientTrainer:
    """Adam or SGD on minibatches, fresh samples or the full training set."""

    def __init__(self, problem: Problem, shard: Shard, start: list[torch.Tensor]) -> None:
        self.problem = problem
        self.flat = FlatParameters(start)
        self.optimizer = BatchedOptimizer(self.flat, problem.config)
        self.stream = DataStream(problem, shard) if problem.config.training.batch_size > 0 else None

    def views(self) -> list[torch.Tensor]:
        return self.flat.views()

    def advance(
        self, first: int, count: int, alive: torch.Tensor, diverged_at: torch.Tensor, running: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Steps ``first`` to ``first + count - 1``; returns which models live and when the others diverged.
        ``running``, when given, gains each live model's loss at every step (in place)."""
        for index in range(first, first + count):
            loss, still_alive = self.step(index, alive)
            diverged_at = torch.where(alive & ~still_alive, index, diverged_at)
            alive = still_alive
            if running is not None:
                running += torch.where(alive, loss, torch.zeros_like(loss))
        return alive, diverged_at

    def step(self, index: int, alive: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One update of every live model; returns the losses before it and which models stay alive."""
        p, act = self.problem, self.problem.config.model.activation
        if self.stream is None:
            assert p.x_train is not None and p.y_train is not None
            loss = _mse(self.flat.views(), p.x_train, p.y_train, act)
        else:
            loss = _mse(self.flat.views(), *self.stream.next_batch(), act)
        alive = alive & torch.isfinite(loss)
        kept = torch.where(alive, loss, torch.zeros_like(loss))
        kept.sum().backward()
        self.optimizer.step(learning_rate(p.config, index), alive)
        return kept.detach(), alive

    def state_dict(self) -> State:
        state = {"params": saved(self.flat.flat), **self.optimizer.state_dict()}
        return {**state, **self.stream.state_dict()} if self.stream is not None else state

    @torch.no_grad()
    def load_state(self, state: State) -> None:
        self.flat.flat.copy_(restored(state, "params", self.flat.flat))
        self.optimizer.load_state(state)
        if self.stream is not None:
            self.stream.load_state(state)


class FusedTrainer(GradientTrainer):
    """One hidden layer, Adam or SGD, on the CPU: many steps per call of the fused kernel (scaletui/fused.py).

    Same buffers as the general path (the flat parameters, the optimiser's moments and step count, the data
    stream), so its checkpoints are the general path's and each path reads the other's.
    """

    def __init__(self, problem: Problem, shard: Shard, start: list[torch.Tensor]) -> None:
        super().__init__(problem, shard, start)
        cfg = problem.config
        self.shape = (len(shard.seeds), cfg.target.input_dim, shard.width)
        self.threads = torch.get_num_threads()

    def _threads(self, point_steps: int) -> int:
        """Helper threads only for calls long enough to pay for them: on a busy machine a new thread can wait
        a scheduler slice (milliseconds) before it runs, and the call waits for it."""
        models, _, width = self.shape
        return max(1, min(self.threads, models, models * width * point_steps // FUSED_WORK_PER_THREAD))

    @torch.no_grad()
    def advance(
        self, first: int, count: int, alive: torch.Tensor, diverged_at: torch.Tensor, running: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        cfg, opt = self.problem.config, self.optimizer
        alive, diverged_at = alive.contiguous(), diverged_at.contiguous()
        step = first
        while step < first + count:
            if self.stream is None:
                assert self.problem.x_train is not None and self.problem.y_train is not None
                x, y, taken = self.problem.x_train, self.problem.y_train, first + count - step
                points, strides = x.shape[0], (0, 0, 0, 0)
            else:
                x, y, taken = self.stream.take(first + count - step)
                points = self.stream.batch
                strides = (x.stride(0), points * x.shape[-1], y.stride(0), points)
            rates = torch.tensor([learning_rate(cfg, i) for i in range(step, step + taken)], dtype=torch.float64)
            fused.train_steps(
                self.flat.flat.detach(),
                opt.m,
                opt.v,
                (*self.shape, points),
                x,
                y,
                strides,
                rates,
                step,
                opt.t,
                cfg,
                alive,
                diverged_at,
                running,
                self._threads(points * taken),
            )
            opt.t += taken
            step += taken
        return alive, diverged_at


class TensorFusedTrainer(GradientTrainer):
    """The fused step as a handful of batched tensor operations, for CUDA, where the C++ kernel does not run.

    The kernel's arithmetic: forward, the backward written out (as ``mlp.output_jacobian`` does) instead of
    autograd's graph, gradients written into one flat buffer the optimiser updates in place: fewer kernels
    per step than the general path and no graph to build, but still one Python call per step. Its speed on
    a GPU has not been measured yet (benchmarks/gpu_check.sh).
    """

    def __init__(self, problem: Problem, shard: Shard, start: list[torch.Tensor]) -> None:
        super().__init__(problem, shard, start)
        self.grad = torch.zeros_like(self.flat.flat, requires_grad=False)
        self.grad_views = FlatParameters.views_of(self.grad, self.flat.shapes)
        activation = problem.config.model.activation
        self.act, self.slope = TORCH_ACTIVATIONS[activation], ACTIVATION_SLOPES[activation]

    @torch.no_grad()
    def step(self, index: int, alive: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.problem
        w0, b0, w1, b1 = (v.detach() for v in self.flat.views())
        if self.stream is None:
            assert p.x_train is not None and p.y_train is not None
            x, y = p.x_train.expand(w0.shape[0], *p.x_train.shape), p.y_train
        else:
            x, y = self.stream.next_batch()
        z = torch.baddbmm(b0, x, w0)  # (models, n, width)
        a = self.act(z)
        out = output_layer(a, w1, b1)  # (models, n)
        residual = out - y
        loss = (residual * residual).mean(dim=-1)
        alive = alive & torch.isfinite(loss)
        # d loss / d output, zero (not NaN) for frozen models, so their moments stay as the general path's.
        g = torch.where(
            alive[:, None], residual * (2 / residual.shape[-1]), torch.zeros((), dtype=z.dtype, device=z.device)
        )
        g_w0, g_b0, g_w1, g_b1 = self.grad_views
        torch.sum(a * g[..., None], dim=1, out=g_w1[..., 0])
        torch.sum(g, dim=1, out=g_b1[:, 0, 0])
        dz = g[..., None] * w1.transpose(-1, -2) * self.slope(z)
        torch.sum(dz, dim=1, keepdim=True, out=g_b0)
        torch.bmm(x.transpose(-1, -2), dz, out=g_w0)
        self.flat.flat.grad = self.grad
        self.optimizer.step(learning_rate(p.config, index), alive)
        return torch.where(alive, loss, torch.zeros_like(loss)), alive


class LevenbergTrainer:
    """Levenberg–Marquardt on the full training set (config validation guarantees full batch, small P)."""

    def __init__(self, problem: Problem, start: list[torch.Tensor]) -> None:
        assert problem.x_train is not None and problem.y_train is not None
        self.solver = LevenbergMarquardt(start, problem.x_train, problem.y_train, problem.config.model.activation)

    def views(self) -> list[torch.Tensor]:
        return self.solver.views()

    def step(self, index: int, alive: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.solver.step(alive)

    advance = GradientTrainer.advance

    def state_dict(self) -> State:
        return {k: saved(v) for k, v in self.solver.state_dict().items()}

    def load_state(self, state: State) -> None:
        self.solver.load_state({k: restored(state, k, v) for k, v in self.solver.state_dict().items()})


Trainer = GradientTrainer | FusedTrainer | TensorFusedTrainer | LevenbergTrainer


def uses_fused_kernel(cfg: Config, device: torch.device) -> bool:
    """The fused kernel where the config is its case and it builds here; else the general path."""
    return fused.applies(cfg, device) and fused.kernel_problem() is None


def engine_notice(cfg: Config, device: torch.device) -> str | None:
    """One line for the event log when the fused kernel applies to the config but cannot be used here."""
    if not fused.applies(cfg, device) or (problem := fused.kernel_problem()) is None:
        return None
    return f"{problem}; training on the general PyTorch path, which is several times slower"


def trainer_class(cfg: Config, device: torch.device) -> type[Trainer]:
    """Which trainer a config gets on a device: the one place that choice is made."""
    if cfg.training.optimizer == "lm":
        return LevenbergTrainer
    if uses_fused_kernel(cfg, device):
        return FusedTrainer
    if fused.fits(cfg) and device.type == "cuda":
        return TensorFusedTrainer
    return GradientTrainer


def make_trainer(problem: Problem, shard: Shard, start: list[torch.Tensor]) -> Trainer:
    cls = trainer_class(problem.config, problem.device)
    return LevenbergTrainer(problem, start) if cls is LevenbergTrainer else cls(problem, shard, start)


def _next_boundary(cfg: Config, step: int, progress_every: int) -> int:
    """The first step after ``step`` at which an evaluation or a progress tick is due, or the last step."""
    for done in range(step + 1, cfg.training.steps):
        if done % progress_every == 0 or evaluates_at(cfg.training, done):
            return done
    return cfg.training.steps


def train_shard(
    problem: Problem,
    shard: Shard,
    initial: list[torch.Tensor] | None = None,
    progress_every: int = 50,
    resume: State | None = None,
    stop: StopFlag | None = None,
) -> Iterator[Event]:
    """Train one shard to the end, yielding evaluations, progress ticks, checkpoints and, last, the final results.

    ``initial`` overrides the seeded initialisation (tests use it to plant a diverging model). ``resume``, the
    state of an earlier :class:`Checkpointed` of this shard, continues training from its step exactly as if it
    had never stopped; a state that does not fit is refused (said in the :class:`Resumed` event) and the shard
    starts over. The caller may stop early by closing the generator; nothing is left half-done on its side.

    ``stop``, once set, ends the training at the next step boundary with a :class:`Checkpointed` marked
    ``stopping`` (no :class:`ShardFinished`): the same state a timed checkpoint there would hold, so a resume
    from it is bit for bit a run never stopped. It is looked at after each call of the trainer: one step on
    the general path, at most FUSED_CALL_SECONDS (as far as the seconds per step so far tell) on the fused
    kernel, which is how long a stop waits.
    """
    cfg = problem.config
    steps = cfg.training.steps
    started = time.perf_counter()
    start = initial if initial is not None else init_parameters(cfg, shard.width, shard.seeds)
    trainer = make_trainer(problem, shard, [p.to(problem.device, problem.dtype) for p in start])
    models = len(shard.seeds)
    alive = torch.ones(models, dtype=torch.bool, device=problem.device)
    diverged_at = torch.full((models,), -1, dtype=torch.long, device=problem.device)
    fresh = problem.x_train is None
    running = torch.zeros(models, dtype=problem.dtype, device=problem.device)
    running_count = 0
    nan = torch.full((), float("nan"), dtype=problem.dtype, device=problem.device)

    def evaluated(step: int) -> Evaluated:
        mean_batch = running / running_count if running_count else None
        train, test = _eval_losses(problem, trainer.views(), mean_batch)
        train, test = torch.where(alive, train, nan), torch.where(alive, test, nan)
        return Evaluated(shard, step, train.double().cpu().numpy(), test.double().cpu().numpy())

    def snapshot(done: int) -> State:
        return {
            **trainer.state_dict(),
            "step": np.array(done, dtype=np.int64),
            "alive": saved(alive),
            "diverged_step": saved(diverged_at),
            "running_loss": saved(running),
            "running_count": np.array(running_count, dtype=np.int64),
            "seconds": np.array(time.perf_counter() - started),
        }

    first = 0
    if resume is not None:
        try:
            first = int(restored(resume, "step", torch.tensor(0)))
            if not 0 <= first < steps:
                raise CheckpointError(f"its step {first} is not one of this shard's 0–{steps - 1}")
            trainer.load_state(resume)
            alive = restored(resume, "alive", alive)
            diverged_at = restored(resume, "diverged_step", diverged_at)
            running = restored(resume, "running_loss", running)
            running_count = int(restored(resume, "running_count", torch.tensor(0)))
            started -= float(restored(resume, "seconds", torch.tensor(0.0, dtype=torch.float64)))
        except CheckpointError as exc:
            yield Resumed(shard, 0, refused=str(exc))
            yield from train_shard(problem, shard, initial, progress_every, stop=stop)
            return
        yield Resumed(shard, first)
    last = evaluated(0) if first == 0 else None
    if last is not None:
        yield last
    every = cfg.execution.checkpoint_seconds
    due = time.monotonic() + every if every else math.inf
    # The fused kernel takes every step up to the next boundary in one call, or fewer when a checkpoint falls
    # due sooner or the call would outlast FUSED_CALL_SECONDS (a stop request waits for the call to end); both
    # estimated from the seconds per step so far. The general path goes one step at a time.
    many = isinstance(trainer, FusedTrainer)
    seconds_per_step = math.inf
    step = first
    while step < steps:
        count = _next_boundary(cfg, step, progress_every) - step if many else 1
        if many:
            until = min(due - time.monotonic(), FUSED_CALL_SECONDS)
            count = max(1, min(count, int(until / seconds_per_step)))
        began = time.perf_counter()
        # Models whose loss is no longer finite are frozen without a device sync: all of it stays on device.
        alive, diverged_at = trainer.advance(step, count, alive, diverged_at, running if fresh else None)
        seconds_per_step = max(1e-9, (time.perf_counter() - began) / count)
        if fresh:  # with infinite data the training loss is the mean of the batches since the last evaluation
            running_count += count
        done = step = step + count
        if evaluates_at(cfg.training, done):
            last = evaluated(done)
            yield last
            running.zero_()
            running_count = 0
        elif done % progress_every == 0:
            yield Progressed(shard, done)
        # One clock read per call (tens of nanoseconds against a step's tens of microseconds or more): a
        # Levenberg–Marquardt step can take a second, so waiting for the next progress tick could miss a
        # checkpoint by most of a minute.
        if stop is not None and done < steps and stop.is_set():
            yield Checkpointed(shard, done, snapshot(done), stopping=True)
            return
        if time.monotonic() >= due and done < steps:
            yield Checkpointed(shard, done, snapshot(done))
            due = time.monotonic() + every

    assert last is not None  # the last step is always evaluated
    params = trainer.views()
    outputs = evaluate_outputs(params, problem.x_test, cfg.model.activation)
    outputs = torch.where(alive[:, None], outputs, nan)
    weights = {f"{'W' if i % 2 == 0 else 'b'}{i // 2}": p.detach().double().cpu().numpy() for i, p in enumerate(params)}
    yield ShardFinished(
        shard=shard,
        train_loss=last.train_loss,
        test_loss=last.test_loss,
        diverged_step=diverged_at.cpu().numpy(),
        outputs=outputs.double().cpu().numpy(),
        weights=weights,
        wall_seconds=time.perf_counter() - started,
    )


def estimate_shard_bytes(cfg: Config, width: int, models: int) -> int:
    """A generous estimate of the memory one shard of ``models`` models at ``width`` needs while training."""
    itemsize = 8 if cfg.training.dtype == "float64" else 4
    d, layers = cfg.target.input_dim, cfg.model.hidden_layers
    state = 6 * models * parameter_count(d, width, layers)  # weights, grads, Adam's m and v, two temporaries
    batch = cfg.training.batch_size or cfg.data.n_train
    activations = 6 * models * batch * width * layers  # pre-activations, activations, their gradients
    evaluation = 3 * (1 << 24)  # evaluate_outputs works in blocks of about 2^24 numbers
    stream = 0
    if cfg.data.fresh:
        stream = 2 * models * max(1, CHUNK_NUMBERS // (batch * d)) * batch * (d + 1)
    elif cfg.training.batch_size:
        stream = 2 * models * cfg.data.n_train * (d + 1)
    data = 2 * (cfg.data.n_test + (0 if cfg.data.fresh else cfg.data.n_train)) * (d + 1)
    if cfg.training.optimizer == "lm":  # per model: the Jacobian (twice, while it is built) and a square system,
        n, p = cfg.data.n_train, parameter_count(d, width, layers)  # its damped copy and Cholesky factor
        state += models * (2 * n * p + 3 * min(n, p) ** 2)
    if cfg.execution.checkpoint_seconds > 0:  # a checkpoint's copy of the training state, then its file's bytes
        p = parameter_count(d, width, layers)
        if cfg.training.optimizer == "lm":  # the weights and the linearisation a refused step keeps
            n = cfg.data.n_train
            saved_numbers = 3 * p + min(n, p) ** 2 + (n * p if n < p else p)
        else:  # the weights and the moments: Adam's two, SGD's momentum
            saved_numbers = p * {"adam": 3}.get(cfg.training.optimizer, 2 if cfg.training.momentum else 1)
        state += 2 * models * saved_numbers
    return itemsize * (state + activations + evaluation + stream + data)


def available_memory(device: torch.device) -> int:
    """Bytes the device can give us now: free CUDA memory, or the kernel's MemAvailable on the CPU."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def plan_shards(cfg: Config, memory_budget: int | None = None) -> list[Shard]:
    """Split the sweep into shards, the one place that is decided: each width of each (data size, depth) cell
    with all its seeds, or with fewer when that would not fit in ``memory_budget``, then at most
    ``execution.seeds_per_shard`` seeds in each.

    Results do not depend on the split (each model has its own generators), so shrinking is safe;
    a width where even one model would not fit is refused with the estimate.
    """
    seeds = tuple(range(cfg.seeds.count))
    most = cfg.execution.seeds_per_shard or len(seeds)
    shards = []
    for n_train, depth in cfg.cells:
        cell = cfg.cell(n_train, depth)
        for w in cfg.model.widths:
            size = min(len(seeds), most)
            if memory_budget is not None:
                one = estimate_shard_bytes(cell, w, 1)
                if one > memory_budget:
                    where = f" at {n_train} samples, depth {depth}" if cfg.is_grid else ""
                    raise ConfigError(
                        "model.widths",
                        f"width {w}{where} needs about {_gib(one)} for a single model; {_gib(memory_budget)} is "
                        "available (use smaller widths, a batch size, or fewer test points)",
                    )
                while size > 1 and estimate_shard_bytes(cell, w, size) > memory_budget:
                    size = (size + 1) // 2
            shards += [Shard(w, seeds[i : i + size], n_train, depth) for i in range(0, len(seeds), size)]
    return shards
