"""The experiment schema: one validated config shared by presets and saved runs.

A preset file and a run's saved ``config.toml`` are the same format, so any run can be re-run from its
directory. Validation names the field (``training.lr``) and, for broken TOML, the file and line.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import re
import tomllib
import unicodedata
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, NamedTuple, get_args, get_origin, get_type_hints

import numpy as np

from scaletui.expressions import ExpressionError, parse_expression

# The choices of every choice field: each type is the field's declared type, each tuple its values in order.
Activation = Literal["silu", "relu", "tanh", "gelu", "sigmoid"]
Init = Literal["torch", "normal", "xavier"]
TargetKind = Literal["builtin", "expression", "teacher"]
Optimizer = Literal["adam", "sgd", "lm"]  # lm: Levenberg–Marquardt, full batch, small nets
Schedule = Literal["constant", "cosine", "step"]
EvalSchedule = Literal["linear", "log"]  # linear: every eval_every steps; log: at round(√2^k) steps
Dtype = Literal["float32", "float64"]
Device = Literal["auto", "cpu", "cuda"]
Executor = Literal["local", "ray"]
Engine = Literal["auto", "general"]  # auto: the fused kernel where a config allows it (scaletui/fused.py)
ACTIVATIONS: tuple[str, ...] = get_args(Activation)
INITS: tuple[str, ...] = get_args(Init)
TARGET_KINDS: tuple[str, ...] = get_args(TargetKind)
OPTIMIZERS: tuple[str, ...] = get_args(Optimizer)
SCHEDULES: tuple[str, ...] = get_args(Schedule)
EVAL_SCHEDULES: tuple[str, ...] = get_args(EvalSchedule)
DTYPES: tuple[str, ...] = get_args(Dtype)
DEVICES: tuple[str, ...] = get_args(Device)
EXECUTORS: tuple[str, ...] = get_args(Executor)
ENGINES: tuple[str, ...] = get_args(Engine)
# A str, not a Literal: the name is checked only when kind = "builtin" (targets.py defines each).
BUILTIN_NAMES = ("square", "cube", "sin", "abs", "exp", "gaussian", "step")

MAX_WIDTH = 1_000_000
MAX_SEEDS = 100_000
MAX_STEPS = 1_000_000_000
MAX_SAMPLES = 100_000_000
MAX_INPUT_DIM = 10_000
MAX_CHECKPOINT_SECONDS = 10_000_000  # about four months: longer means never
MAX_MAGNITUDE = 2**63 - 1  # no field needs more; a larger integer is a typo or an attack, never a setting
LM_MAX_PARAMETERS = 4096  # per model: LM solves a P×P system each step


def setting(
    default: Any, doc: str, *, low: float | None = None, high: float | None = None, choices: tuple[str, ...] = ()
) -> Any:
    """One config field, declared once: its default, its line of documentation (the form's hint, the
    reference printed by ``scaletui config`` and shown in the README), and the range it is always checked
    against, inclusive. Choice fields take their values from a ``Literal`` type instead; ``choices`` only
    lists values of a plain ``str`` field checked elsewhere (``target.name``). Rules that depend on other
    fields (warmup_steps ≤ steps, the teacher's fields) are in the validators below."""
    return field(default=default, metadata={"doc": doc, "low": low, "high": high, "choices": choices})


class ConfigError(ValueError):
    """A config value (or file) that cannot be used; the message names the field and the problem."""

    def __init__(self, where: str, problem: str, source: str | None = None) -> None:
        self.where = where
        self.problem = problem
        self.source = source
        prefix = f"{source}: " if source else ""
        super().__init__(f"{prefix}{where}: {problem}")


@dataclass(frozen=True)
class TargetConfig:
    """The function the networks learn, and where its inputs live."""

    kind: TargetKind = setting("builtin", "builtin | expression | teacher")
    name: str = setting("square", "builtin: summed over the coordinates", choices=BUILTIN_NAMES)
    expression: str = setting("", "a formula in x (or x0..x{d-1}), e.g. x**2 + sin(3*x): whitelisted, never eval'd")
    frequency: float = setting(1.0, "k in sin(k·x) and the gaussian bump exp(-(k·x)²)")
    input_dim: int = setting(1, "coordinates of each input", low=1, high=MAX_INPUT_DIM)
    domain: tuple[float, float] = setting((-2.0, 2.0), "[low, high]: every varying coordinate is uniform on it")
    intrinsic_dim: int = setting(0, "teacher: how many coordinates vary (the data manifold's dimension)")
    teacher_hidden: tuple[int, ...] = setting((64, 64), "teacher: ReLU MLP, weights N(0, 1/fan_in)")
    teacher_seed: int = setting(0, "teacher: the seed of its weights")
    # Without biases every kink passes through the origin and the teacher is positively homogeneous
    # (f(2x) = 2f(x)). 0.1 is the first layer's pre-activation std on the presets' domain ([-0.5, 0.5] on 2-3
    # of 20 coordinates: 0.09-0.11), so the kinks spread over the data (docs/SCIENCE.md).
    teacher_bias_std: float = setting(0.1, "teacher: hidden biases N(0, σ²), so its kinks do not all pass through 0")


@dataclass(frozen=True)
class DataConfig:
    """Training and test samples; ``fresh`` draws new training samples every step (infinite data)."""

    n_train: int | tuple[int, ...] = setting(
        1000, "training samples; a list [100, 1000] sweeps data size", low=1, high=MAX_SAMPLES
    )
    n_train_min: int = setting(0, "the smallest data size of a log-spaced range (instead of n_train)")
    n_train_max: int = setting(0, "the largest data size of a log-spaced range")
    n_train_count: int = setting(0, "how many data sizes: log-spaced, distinct integers")
    fresh: bool = setting(False, "true: new samples every step (needs a batch size)")
    n_test: int = setting(1000, "test samples; 1-D targets: an even grid over the domain", low=1, high=MAX_SAMPLES)
    noise: float = setting(0.0, "std of label noise on training targets")


@dataclass(frozen=True)
class ModelConfig:
    """An MLP family: one activation, varying width (and depth, when hidden_layers is a list)."""

    hidden_layers: int | tuple[int, ...] = setting(
        1, "depth: hidden layers of the same width; a list [1, 2, 3] sweeps depth", low=1, high=64
    )
    activation: Activation = setting("silu", "silu | relu | tanh | gelu | sigmoid")
    init: Init = setting("torch", "torch (nn.Linear's default) | normal | xavier")
    widths: tuple[int, ...] = setting((), "[2, 4, 8], or leave empty and give width_min/width_max/width_count")
    width_min: int = setting(0, "the smallest width of a log-spaced range")
    width_max: int = setting(0, "the largest width of a log-spaced range")
    width_count: int = setting(0, "how many widths: log-spaced, distinct integers")


@dataclass(frozen=True)
class TrainingConfig:
    """Optimiser, schedule and precision. ``batch_size = 0`` means full batch.

    ``eval_schedule`` says when the test loss is measured (see :func:`evaluates_at`): "linear" every
    ``eval_every`` steps; "log" at steps round(√2^k), k = 0, 1, 2, … (1, 2, 3, 4, 6, 8, 11, 16, …), so a
    budget curve α(step) has as many points in each doubling of the budget, early and late. Both always
    evaluate at step 0 and at the last step.
    """

    optimizer: Optimizer = setting(
        "adam", "adam | sgd (momentum) | lm (Levenberg–Marquardt: full batch, ≤ 4096 parameters)"
    )
    lr: float = setting(1e-3, "learning rate, above 0 and at most 100")
    momentum: float = setting(0.0, "sgd: momentum", low=0, high=0.999999)
    schedule: Schedule = setting("constant", "constant | cosine | step (step_every, step_gamma)")
    warmup_steps: int = setting(0, "linear warm-up from 0, at most steps")
    step_every: int = setting(1000, "step schedule: steps between decays", low=1, high=MAX_STEPS)
    step_gamma: float = setting(0.1, "step schedule: the factor of each decay, in (0, 1]")
    steps: int = setting(1000, "optimiser steps of every model", low=1, high=MAX_STEPS)
    batch_size: int = setting(0, "0 = full batch", low=0, high=MAX_SAMPLES)
    dtype: Dtype = setting("float32", "float32 | float64")
    eval_every: int = setting(
        100, "linear eval_schedule: the losses are measured every this many steps", low=1, high=MAX_STEPS
    )
    eval_schedule: EvalSchedule = setting("linear", "linear | log: at steps 1, 2, 3, 4, 6, 8, 11, 16, … and the last")


@dataclass(frozen=True)
class SeedsConfig:
    """How many models per width, and the seed everything else derives from."""

    count: int = setting(8, "models per width", low=1, high=MAX_SEEDS)
    base: int = setting(
        0, "the seed every model's initialisation and data order derive from", low=0, high=MAX_MAGNITUDE
    )


@dataclass(frozen=True)
class ExecutionConfig:
    """Where the shards train: this machine, or a Ray cluster (one task per shard, with these resources).

    ``seeds_per_shard = 0`` keeps a width's seeds together (split only when memory asks for it). Under Ray
    a shard gets a GPU only when ``gpus_per_shard`` is above 0, and then trains on it. Every
    ``checkpoint_seconds`` the runner saves each live shard's whole training state, so a killed run resumes
    mid-width; 0 turns checkpoints off. ``engine = "general"`` trains on the general PyTorch path even where
    the fused one-hidden-layer kernel could (to compare the two, or to step around a kernel that misbehaves).
    ``workers`` above 1 (local executor, CPU) trains shards side by side in worker processes of their own, the
    cores shared out among them; 1, the measured faster way on 2 cores, trains them in the runner's process.
    """

    executor: Executor = setting("local", "local | ray")
    address: str = setting("auto", "ray: auto (this machine's cluster) | HOST:PORT | local (a private instance)")
    cpus_per_shard: float = setting(1.0, "ray: CPUs each shard's task reserves")
    gpus_per_shard: float = setting(0.0, "ray: above 0, the shard trains on its GPU; 0, on the CPU", low=0, high=64)
    seeds_per_shard: int = setting(
        0, "at most this many seeds train together; 0 = a width's seeds together", low=0, high=MAX_SEEDS
    )
    max_retries: int = setting(3, "ray: times a shard whose worker died is run again", low=0, high=100)
    checkpoint_seconds: float = setting(
        60.0, "how often each training shard's whole state is saved (a stop saves it too); 0 = never"
    )
    engine: Engine = setting("auto", "auto: the fused kernel for one-hidden-layer Adam/SGD | general: always PyTorch")
    workers: int = setting(1, "local: processes training shards side by side; 1 = in the runner", low=1, high=1024)


@dataclass(frozen=True)
class Config:
    """A whole experiment. Build with :func:`config_from_dict` or :func:`load_config` to get it validated."""

    name: str = setting("experiment", "the run's display name")
    description: str = setting("", "one line for listings")
    device: Device = setting("auto", "auto (CUDA when present) | cpu | cuda")
    target: TargetConfig = field(default_factory=TargetConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    seeds: SeedsConfig = field(default_factory=SeedsConfig)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)

    @property
    def widths(self) -> tuple[int, ...]:
        return self.model.widths

    @property
    def data_sizes(self) -> tuple[int, ...]:
        """The training-set sizes the sweep trains at: one, unless ``data.n_train`` is a list or a range."""
        return as_values(self.data.n_train)

    @property
    def depths(self) -> tuple[int, ...]:
        """The depths (hidden layers) the sweep trains at: one, unless ``model.hidden_layers`` is a list."""
        return as_values(self.model.hidden_layers)

    @property
    def cells(self) -> tuple[tuple[int, int], ...]:
        """Every (data size, depth) of the grid: each trains all widths × seeds."""
        return tuple((n, d) for n in self.data_sizes for d in self.depths)

    @property
    def is_grid(self) -> bool:
        """Whether the sweep varies more than width (and seed)."""
        return len(self.cells) > 1

    def cell(self, n_train: int, depth: int) -> Config:
        """This config at one data size and depth: what the engine trains one shard with."""
        if n_train not in self.data_sizes or depth not in self.depths:
            raise ValueError(f"({n_train}, {depth}) is not a cell of this sweep")
        return dataclasses.replace(
            self,
            data=dataclasses.replace(self.data, n_train=n_train),
            model=dataclasses.replace(self.model, hidden_layers=depth),
        )


class Group(NamedTuple):
    """One width at one data size and depth: the models of a sweep that differ only in their seed."""

    width: int
    n_train: int
    depth: int


def as_values(value: int | tuple[int, ...]) -> tuple[int, ...]:
    """A field that holds one integer or a list of them, as a tuple."""
    return value if isinstance(value, tuple) else (value,)


SECTIONS: dict[str, type] = {
    "target": TargetConfig,
    "data": DataConfig,
    "model": ModelConfig,
    "training": TrainingConfig,
    "seeds": SeedsConfig,
    "execution": ExecutionConfig,
}


def log_spaced_widths(width_min: int, width_max: int, count: int, where: str = "model.width_count") -> tuple[int, ...]:
    """``count`` distinct integers (widths, or data sizes) from min to max, as evenly spaced in log as
    rounding allows; ``where`` is the count's field, named when they do not fit."""
    if count == 1:
        return (width_min,)
    raw = np.unique(np.round(np.geomspace(width_min, width_max, count)).astype(int))
    if len(raw) == count:
        return tuple(int(w) for w in raw)
    # Rounding merged neighbours at the small end: walk upward, bumping each clash to the next integer.
    widths: list[int] = []
    for w in np.geomspace(width_min, width_max, count):
        candidate = max(round(float(w)), widths[-1] + 1 if widths else width_min)
        widths.append(candidate)
    if widths[-1] > width_max:
        raise ConfigError(where, f"{count} distinct values do not fit in [{width_min}, {width_max}]")
    return tuple(widths)


def _too_large(value: int) -> str:
    return f"is far too large ({len(str(abs(value)))} digits; at most {MAX_MAGNITUDE})"


def _coerce(where: str, value: Any, declared: Any) -> Any:
    """Check one TOML value against a field's declared type (a Python type, a ``Literal`` of choices, or a
    tuple type); numbers must be finite and of sane size."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_MAGNITUDE:
        # Before any float() or format: an unbounded integer would overflow them.
        raise ConfigError(where, _too_large(value))
    if get_origin(declared) is Literal:
        text = _coerce(where, value, str)
        _one_of(where, text, get_args(declared))
        return text
    if declared is str:
        if not isinstance(value, str):
            raise ConfigError(where, f"expected a string, got {value!r}")
        _check_text(where, value)
        return value
    if declared is bool:
        if not isinstance(value, bool):
            raise ConfigError(where, f"expected true or false, got {value!r}")
        return value
    if declared is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer() and math.isfinite(value):
                if abs(value) > MAX_MAGNITUDE:  # 9.3e18 is integral, yet no int64 holds it: saved, it would not reload
                    raise ConfigError(where, _too_large(int(value)))
                return int(value)
            raise ConfigError(where, f"expected an integer, got {value!r}")
        return value
    if declared is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(where, f"expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(where, f"must be a finite number, got {value!r}")
        return float(value)
    if declared == tuple[float, float]:
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise ConfigError(where, f"expected two numbers [low, high], got {value!r}")
        return tuple(_coerce(f"{where}[{i}]", v, float) for i, v in enumerate(value))
    if declared == tuple[int, ...]:
        if not isinstance(value, list | tuple):
            raise ConfigError(where, f"expected a list of integers, got {value!r}")
        return tuple(_coerce(f"{where}[{i}]", v, int) for i, v in enumerate(value))
    if declared == int | tuple[int, ...]:  # one value, or a list of them to sweep
        if isinstance(value, list | tuple):
            if not value:
                raise ConfigError(where, "an empty list: give one integer or a list of them")
            return _coerce(where, value, tuple[int, ...])
        return _coerce(where, value, int)
    raise TypeError(f"{where}: the schema declares {declared!r}, which the reader does not know")


@functools.cache
def declared_types(cls: type) -> dict[str, Any]:
    """A config class's fields and their resolved types (the module's annotations are strings)."""
    return get_type_hints(cls)


def _build(cls: type, raw: Any, where: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(where, f"expected a table, got {raw!r}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}", f"unknown key (known: {', '.join(known)})")
    types = declared_types(cls)
    values = {name: _coerce(f"{where}.{name}", raw[name], types[name]) for name in raw}
    built = cls(**values)
    for f in fields(cls):  # the declared ranges, checked whether the value was given or defaulted
        low, high = f.metadata.get("low"), f.metadata.get("high")
        if low is not None and high is not None:
            value = getattr(built, f.name)
            for i, one in enumerate(value if isinstance(value, tuple) else (value,)):
                _in_range(f"{where}.{f.name}" + (f"[{i}]" if isinstance(value, tuple) else ""), one, low, high)
    return built


def _in_range(where: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ConfigError(where, f"must be between {low:g} and {high:g}, got {value:g}")


def _one_of(where: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(where, f"must be one of {', '.join(choices)}; got {value!r}")


def _validate_target(t: TargetConfig) -> TargetConfig:
    low, high = t.domain
    if not low < high:
        raise ConfigError("target.domain", f"low must be below high, got [{low:g}, {high:g}]")
    if t.teacher_bias_std < 0:
        raise ConfigError(
            "target.teacher_bias_std", f"is a standard deviation and cannot be negative, got {t.teacher_bias_std:g}"
        )
    if t.kind == "builtin":
        _one_of("target.name", t.name, BUILTIN_NAMES)
    elif t.kind == "expression":
        if not t.expression.strip():
            raise ConfigError("target.expression", "is empty; write a formula in x, e.g. 'x**2'")
        try:
            parse_expression(t.expression, t.input_dim)
        except ExpressionError as exc:
            raise ConfigError("target.expression", str(exc)) from None
    else:
        _in_range("target.intrinsic_dim", t.intrinsic_dim, 1, t.input_dim)
        if not t.teacher_hidden:
            raise ConfigError("target.teacher_hidden", "needs at least one hidden layer width")
        for i, w in enumerate(t.teacher_hidden):
            _in_range(f"target.teacher_hidden[{i}]", w, 1, 100_000)
        _in_range("target.teacher_seed", t.teacher_seed, 0, 2**63 - 1)
    return t


def _sweep_values(where: str, value: int | tuple[int, ...]) -> int | tuple[int, ...]:
    """A swept field's values sorted, each once; one value is kept as a plain integer, as before lists."""
    values = as_values(value)
    if len(set(values)) != len(values):
        raise ConfigError(where, "lists a value twice")
    return values[0] if len(values) == 1 else tuple(sorted(values))


def _validate_model(m: ModelConfig) -> ModelConfig:
    m = dataclasses.replace(m, hidden_layers=_sweep_values("model.hidden_layers", m.hidden_layers))
    ranged = (m.width_min, m.width_max, m.width_count) != (0, 0, 0)
    if m.widths and ranged:
        raise ConfigError("model.widths", "give either widths = [...] or width_min/width_max/width_count, not both")
    if m.widths:
        for i, w in enumerate(m.widths):
            _in_range(f"model.widths[{i}]", w, 1, MAX_WIDTH)
        if len(set(m.widths)) != len(m.widths):
            raise ConfigError("model.widths", "lists a width twice")
        return dataclasses.replace(m, widths=tuple(sorted(m.widths)), width_min=0, width_max=0, width_count=0)
    if not ranged:
        raise ConfigError("model.widths", "no widths: give widths = [...] or width_min/width_max/width_count")
    _in_range("model.width_min", m.width_min, 1, MAX_WIDTH)
    _in_range("model.width_max", m.width_max, 1, MAX_WIDTH)
    if m.width_max < m.width_min:
        raise ConfigError("model.width_max", f"is below width_min ({m.width_max} < {m.width_min})")
    _in_range("model.width_count", m.width_count, 1, 1000)
    if m.width_count > m.width_max - m.width_min + 1:
        raise ConfigError(
            "model.width_count",
            f"{m.width_count} distinct widths do not fit in [{m.width_min}, {m.width_max}]",
        )
    widths = log_spaced_widths(m.width_min, m.width_max, m.width_count)
    return dataclasses.replace(m, widths=widths, width_min=0, width_max=0, width_count=0)


def _validate_training(t: TrainingConfig) -> TrainingConfig:
    if not 0 < t.lr <= 100:
        raise ConfigError("training.lr", f"must be above 0 and at most 100, got {t.lr:g}")
    _in_range("training.warmup_steps", t.warmup_steps, 0, t.steps)
    if not 0 < t.step_gamma <= 1:
        raise ConfigError("training.step_gamma", f"must be in (0, 1], got {t.step_gamma:g}")
    return t


def evaluates_at(training: TrainingConfig, step: int) -> bool:
    """Whether the engine measures the losses after ``step`` steps (it always does at 0 and at the end).

    Log schedule: the steps round(√2^k) for k ≥ 0, deduplicated; a step s is one of them when it equals
    round(2^(k/2)) for a k next to 2·log2(s).
    """
    if step == 0 or step == training.steps:
        return True
    if training.eval_schedule == "linear":
        return step % training.eval_every == 0
    k = round(2 * math.log2(step))
    return any(round(2 ** (j / 2)) == step for j in (k - 1, k, k + 1) if j >= 0)


def _validate_data(d: DataConfig, training: TrainingConfig, n_train_given: bool) -> DataConfig:
    if (d.n_train_min, d.n_train_max, d.n_train_count) != (0, 0, 0):
        if n_train_given:
            raise ConfigError("data.n_train", "give either n_train or n_train_min/n_train_max/n_train_count, not both")
        _in_range("data.n_train_min", d.n_train_min, 1, MAX_SAMPLES)
        _in_range("data.n_train_max", d.n_train_max, d.n_train_min, MAX_SAMPLES)
        _in_range("data.n_train_count", d.n_train_count, 1, 100)
        sizes = log_spaced_widths(d.n_train_min, d.n_train_max, d.n_train_count, "data.n_train_count")
        d = dataclasses.replace(d, n_train=sizes, n_train_min=0, n_train_max=0, n_train_count=0)
    d = dataclasses.replace(d, n_train=_sweep_values("data.n_train", d.n_train))
    sizes = as_values(d.n_train)
    if d.fresh and len(sizes) > 1:
        raise ConfigError(
            "data.n_train", "a list of data sizes needs fresh = false (fresh draws new samples every step)"
        )
    if d.noise < 0:
        raise ConfigError("data.noise", f"is a standard deviation and cannot be negative, got {d.noise:g}")
    if d.fresh and training.batch_size == 0:
        raise ConfigError("training.batch_size", "fresh samples every step need a batch size above 0")
    if not d.fresh and training.batch_size > min(sizes):
        raise ConfigError("training.batch_size", f"is larger than data.n_train ({training.batch_size} > {min(sizes)})")
    return d


def _check_optimizer_fits(cfg: Config) -> None:
    """LM works on the whole training set at once and on a P×P matrix per model: say so before training."""
    if cfg.training.optimizer != "lm":
        return
    if cfg.training.batch_size:
        raise ConfigError("training.batch_size", "the lm optimizer is full batch; set batch_size = 0")
    widest = max(cfg.model.widths)
    n = parameter_count(cfg.target.input_dim, widest, max(cfg.depths))
    if n > LM_MAX_PARAMETERS:
        raise ConfigError(
            "training.optimizer",
            f"lm solves a parameters × parameters system per model; width {widest} has {n} parameters "
            f"(at most {LM_MAX_PARAMETERS}): use adam, or smaller widths",
        )


def _validate_execution(e: ExecutionConfig, device: str) -> None:
    if not e.address or any(c.isspace() or ord(c) < 32 for c in e.address):
        raise ConfigError("execution.address", f"must be auto, local or HOST:PORT without spaces; got {e.address!r}")
    if not 0 < e.cpus_per_shard <= 1024:
        raise ConfigError("execution.cpus_per_shard", f"must be above 0 and at most 1024, got {e.cpus_per_shard:g}")
    if e.gpus_per_shard > 1 and not e.gpus_per_shard.is_integer():
        raise ConfigError("execution.gpus_per_shard", f"above 1 must be a whole number, got {e.gpus_per_shard:g}")
    if not 0 <= e.checkpoint_seconds <= MAX_CHECKPOINT_SECONDS:
        raise ConfigError(
            "execution.checkpoint_seconds",
            f"must be 0 (no checkpoints) or a number of seconds up to {MAX_CHECKPOINT_SECONDS:,}, "
            f"got {e.checkpoint_seconds:g}",
        )
    if e.executor == "ray" and device == "cuda" and e.gpus_per_shard == 0:
        raise ConfigError("execution.gpus_per_shard", "device = cuda under Ray needs a GPU per shard (e.g. 1)")
    if e.executor == "ray" and device == "cpu" and e.gpus_per_shard > 0:
        raise ConfigError("execution.gpus_per_shard", "reserves GPUs that device = cpu would leave idle; set it to 0")


def _check_text(where: str, text: str) -> None:
    """Free text is shown in terminals: control characters (escape sequences that retitle or clear the screen,
    bells, carriage returns) are refused in every string field, except tabs and newlines in a description."""
    allowed = "\t\n" if where == "description" else ""
    bad = next((c for c in text if unicodedata.category(c) == "Cc" and c not in allowed), None)
    if bad is not None:
        raise ConfigError(where, f"contains a control character (U+{ord(bad):04X}); use plain text")


def _validate_name(name: str) -> str:
    if not name.strip():
        raise ConfigError("name", "cannot be empty")
    if len(name) > 120:
        raise ConfigError("name", "is longer than 120 characters")
    return name


def config_from_dict(raw: dict[str, Any], source: str | None = None) -> Config:
    """Validate a parsed TOML document into a :class:`Config`; widths come back as an explicit list."""
    try:
        if not isinstance(raw, dict):
            raise ConfigError("(top level)", "expected a table")
        top = {"name", "description", "device", *SECTIONS}
        unknown = sorted(set(raw) - top)
        if unknown:
            raise ConfigError(unknown[0], f"unknown key (known: {', '.join(sorted(top))})")
        sections = {name: _build(cls, raw.get(name, {}), name) for name, cls in SECTIONS.items()}
        training = _validate_training(sections["training"])
        cfg = Config(
            name=_validate_name(_coerce("name", raw.get("name", "experiment"), str)),
            description=_coerce("description", raw.get("description", ""), str),
            device=_coerce("device", raw.get("device", "auto"), Device),
            target=_validate_target(sections["target"]),
            data=_validate_data(sections["data"], training, "n_train" in (raw.get("data") or {})),
            model=_validate_model(sections["model"]),
            training=training,
            seeds=sections["seeds"],
            execution=sections["execution"],
        )
        _check_optimizer_fits(cfg)
        _validate_execution(cfg.execution, cfg.device)
        return cfg
    except ConfigError as exc:
        if source and not exc.source:
            raise ConfigError(exc.where, exc.problem, source) from None
        raise


def parse_toml(text: str, source: str) -> dict[str, Any]:
    """Parse TOML, turning a syntax error into a ConfigError that names the file and line."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("TOML syntax", str(exc), source) from None
    except (ValueError, RecursionError) as exc:  # Python's own limits: a 5000-digit integer, arrays nested too deep
        raise ConfigError("TOML", f"cannot be read ({_limit_reason(exc)})", source) from None


def _limit_reason(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return "a number has too many digits" if "digits" in str(exc) else str(exc).splitlines()[0][:80]


def load_config(path: Path, overrides: list[str] | None = None) -> Config:
    """Read, override and validate a preset or a saved run config."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("file", f"cannot be read ({exc.__class__.__name__}: {exc})", str(path)) from None
    raw = parse_toml(text, str(path))
    overridden: dict[str, str] = {}
    for override in overrides or []:
        apply_override(raw, override)
        overridden[override.partition("=")[0].strip()] = override
    try:
        return config_from_dict(raw)
    except ConfigError as exc:
        # A bad value given with --set is the user's, not the file's: name the override, not the preset.
        set_by = overridden.get(exc.where.split("[")[0])
        raise ConfigError(exc.where, exc.problem, f"--set {set_by}" if set_by else str(path)) from None


def typed_value(where: str, text: str, declared: Any) -> Any:
    """What a user typed for one field (``--set`` or the form), as the value validation then checks: TOML
    (``[2, 4, 8]``, ``3e-3``, ``true``, ``"quoted"``), else the text itself; a free-text field given a
    non-string keeps the text, so ``target.expression=1`` is the formula "1", not the number."""
    try:
        value = tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        return text.strip()  # validation names the field and says what was expected
    except (ValueError, RecursionError) as exc:
        raise ConfigError(where, f"cannot be read ({_limit_reason(exc)})") from None
    return text.strip() if declared is str and not isinstance(value, str) else value


def apply_override(raw: dict[str, Any], override: str) -> None:
    """Apply one ``section.key=value`` override in place; the value is read as TOML, else as a string."""
    key, sep, text = override.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError("--set", f"expected section.key=value, got {override!r}")
    parts = key.split(".")
    if len(parts) == 1 and parts[0] in {"name", "description", "device"}:
        table = raw
    elif len(parts) == 2 and parts[0] in SECTIONS:
        section = raw.setdefault(parts[0], {})
        if not isinstance(section, dict):
            raise ConfigError(parts[0], "is not a table")
        if parts[1] not in {f.name for f in fields(SECTIONS[parts[0]])}:
            raise ConfigError(key, "unknown key")
        table = section
    else:
        raise ConfigError(key, "unknown key (write section.key, e.g. training.lr)")
    value = typed_value(key, text, declared_types(SECTIONS.get(parts[0], Config))[parts[-1]])
    if parts[0] == "model":
        # A new width spec replaces the other kind rather than clashing with it.
        if parts[1] == "widths":
            for name in ("width_min", "width_max", "width_count"):
                table.pop(name, None)
        elif parts[1] in ("width_min", "width_max", "width_count"):
            table.pop("widths", None)
    if parts[0] == "data":  # likewise the two ways of giving data sizes
        if parts[1] == "n_train":
            for name in ("n_train_min", "n_train_max", "n_train_count"):
                table.pop(name, None)
        elif parts[1] in ("n_train_min", "n_train_max", "n_train_count"):
            table.pop("n_train", None)
    table[parts[-1]] = value


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """The config as plain TOML-ready data, with the resolved width list and no unused range fields."""
    out: dict[str, Any] = {"name": cfg.name, "description": cfg.description, "device": cfg.device}
    for name in SECTIONS:
        section = dataclasses.asdict(getattr(cfg, name))
        if name == "model":
            for unused in ("width_min", "width_max", "width_count"):
                section.pop(unused)
        if name == "data":
            for unused in ("n_train_min", "n_train_max", "n_train_count"):
                section.pop(unused)
        out[name] = {k: list(v) if isinstance(v, tuple) else v for k, v in section.items()}
    return out


_TOML_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _escape_control(c: str) -> str:
    """TOML basic strings may not hold raw control characters: write them as \\uXXXX."""
    return f"\\u{ord(c):04x}" if ord(c) < 32 or ord(c) == 0x7F else c


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return '"' + "".join(_TOML_ESCAPES.get(c) or _escape_control(c) for c in value) + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} to TOML")


def config_to_toml(cfg: Config) -> str:
    """Serialise to TOML that :func:`load_config` reads back to an equal config."""
    data = config_to_dict(cfg)
    lines = [f"{k} = {_toml_value(data[k])}" for k in ("name", "description", "device")]
    for section in SECTIONS:
        lines += ["", f"[{section}]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in data[section].items()]
    return "\n".join(lines) + "\n"


REFERENCE_COLUMN = 32  # where the reference's comments start


def field_docs() -> dict[str, str]:
    """Every field's dotted path and its line of documentation, in schema order."""
    docs = {f.name: f.metadata["doc"] for f in fields(Config) if f.name not in SECTIONS}
    for section, cls in SECTIONS.items():
        docs |= {f"{section}.{f.name}": f.metadata["doc"] for f in fields(cls)}
    return docs


def field_choices() -> dict[str, tuple[str, ...]]:
    """The values of every choice field, by dotted path: its Literal type's, or those its declaration lists."""
    choices: dict[str, tuple[str, ...]] = {}
    for prefix, cls in [("", Config), *((f"{name}.", c) for name, c in SECTIONS.items())]:
        types = declared_types(cls)
        for f in fields(cls):
            if get_origin(types[f.name]) is Literal:
                choices[prefix + f.name] = get_args(types[f.name])
            elif f.metadata.get("choices"):
                choices[prefix + f.name] = f.metadata["choices"]
    return choices


def reference_toml() -> str:
    """Every field with its default and its documentation, as a commented TOML document: what
    ``scaletui config`` prints and the README's config block shows (a test keeps them equal)."""

    def line(key: str, value: Any, doc: str) -> str:
        text = f"{key} = {_toml_value(list(value) if isinstance(value, tuple) else value)}"
        return f"{text:<{REFERENCE_COLUMN - 1}} # {doc}"

    docs = field_docs()
    lines = [line(f.name, f.default, docs[f.name]) for f in fields(Config) if f.name not in SECTIONS]
    for section, cls in SECTIONS.items():
        summary = re.split(r"\. |; | \(", (cls.__doc__ or "").strip().splitlines()[0])[0].rstrip(".")
        lines += ["", f"{f'[{section}]':<{REFERENCE_COLUMN - 1}} # {summary}"]
        lines += [line(f.name, f.default, docs[f"{section}.{f.name}"]) for f in fields(cls)]
    return "\n".join(lines) + "\n"


def training_fingerprint(cfg: Config) -> str:
    """A hash of everything that decides how a model trains: the whole config but its name, description and
    execution section (a run keeps its fingerprint when renamed, or resumed on another executor). A checkpoint
    carries it, so state saved under one config is never continued under another."""

    data = config_to_dict(cfg)
    for unused in ("name", "description", "execution"):
        data.pop(unused)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def parameter_count(input_dim: int, width: int, hidden_layers: int) -> int:
    """Weights and biases of an MLP [input_dim, width x hidden_layers, 1] (docs/SCIENCE.md's N)."""
    return input_dim * width + width + (hidden_layers - 1) * (width * width + width) + width + 1


def describe_target(t: TargetConfig) -> str:
    """A short label for listings, e.g. ``square``, ``sin(3x)``, ``teacher d=2/20``."""
    if t.kind == "teacher":
        return f"teacher d={t.intrinsic_dim}/{t.input_dim}"
    if t.kind == "expression":
        return t.expression if len(t.expression) <= 24 else t.expression[:23] + "…"
    if t.name in ("sin", "gaussian") and t.frequency != 1.0:
        return f"{t.name}({t.frequency:g}x)"
    return t.name if t.input_dim == 1 else f"{t.name} (d={t.input_dim})"


def widths_label(widths: tuple[int, ...]) -> str:
    """``2–256 (8)``: the range and count of a width list."""
    return f"{widths[0]}–{widths[-1]} ({len(widths)})" if len(widths) > 1 else str(widths[0])


def seeds_label(seeds) -> str:
    """``seeds 0–19`` or ``seed 3``: a consecutive run of seed indices."""
    seeds = [int(s) for s in seeds]
    if not seeds:
        return "no seeds"
    return f"seeds {seeds[0]}–{seeds[-1]}" if len(seeds) > 1 else f"seed {seeds[0]}"


def shard_label(width: int, seeds, seed_count: int) -> str:
    """``width 256`` for a shard holding all ``seed_count`` seeds of its width, else ``width 256, seeds 0–9``."""
    seeds = list(seeds)
    return f"width {width}" if len(seeds) == seed_count else f"width {width}, {seeds_label(seeds)}"


def describe_config(cfg: Config) -> str:
    """The experiment in one line, for headers and listings."""
    low, high = cfg.target.domain
    t, m = cfg.training, cfg.model
    widths = widths_label(m.widths)
    sizes = cfg.data_sizes
    samples = str(sizes[0]) if len(sizes) == 1 else widths_label(sizes)
    depth = str(cfg.depths[0]) if len(cfg.depths) == 1 else f"{{{','.join(map(str, cfg.depths))}}}"
    if cfg.data.fresh:
        data = f"fresh batches of {t.batch_size}"
    else:
        data = f"{'full batch' if t.batch_size == 0 else f'batches of {t.batch_size} from'} {samples} samples"
    schedule = t.schedule + (f"+{t.warmup_steps} warm-up" if t.warmup_steps else "")
    noise = f" · noise {cfg.data.noise:g}" if cfg.data.noise else ""
    return (
        f"{describe_target(cfg.target)} on [{low:g}, {high:g}]^{cfg.target.input_dim} · {m.activation} · "
        f"{depth}×width {widths} · {cfg.seeds.count} seeds · {t.optimizer} lr {t.lr:g} {schedule} · "
        f"{t.steps} steps · {t.dtype} · {data}{noise}"
    ).replace("^1 ", " ")
