"""Target functions f*: built-ins, user expressions (parsed against a whitelist, never eval'd), teachers.

Every target maps a batch of inputs of shape (n, input_dim) to outputs of shape (n,), as torch tensors,
and knows how to sample its inputs so that a teacher's data lies on a d-dimensional manifold.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from scaletui.config import BUILTIN_NAMES, ConfigError, TargetConfig
from scaletui.expressions import ExpressionError, ParsedExpression
from scaletui.expressions import parse_expression as parse_expressions

Scalar = Callable[[torch.Tensor, float], torch.Tensor]

# Built-ins act on each coordinate and sum, so y = x^2 in 1-D is sum(x_i^2) in d dimensions.
BUILTINS: dict[str, tuple[str, Scalar]] = {
    "square": ("x²", lambda x, k: x * x),
    "cube": ("x³", lambda x, k: x * x * x),
    "sin": ("sin(k·x)", lambda x, k: torch.sin(k * x)),
    "abs": ("|x|", lambda x, k: torch.abs(x)),
    "exp": ("exp(x)", lambda x, k: torch.exp(x)),
    "gaussian": ("exp(-(k·x)²), a bump", lambda x, k: torch.exp(-((k * x) ** 2))),
    "step": ("1 if x > 0 else 0", lambda x, k: (x > 0).to(x.dtype)),
}
assert tuple(BUILTINS) == BUILTIN_NAMES, "config.BUILTIN_NAMES must list the same built-ins"

__all__ = [
    "BUILTINS",
    "Expression",
    "ExpressionError",
    "Target",
    "build_target",
    "parse_expression",
    "teacher_parameters",
]

# The array operations behind expressions.py's grammar (its names, torch's functions).
TORCH_OPS: dict[str, Callable[..., torch.Tensor]] = {
    "const": lambda like, value: torch.full_like(like, value),
    "add": torch.add,
    "sub": torch.sub,
    "mul": torch.mul,
    "div": torch.div,
    "pow": torch.pow,
    "neg": torch.neg,
    "sin": torch.sin,
    "cos": torch.cos,
    "tan": torch.tan,
    "asin": torch.asin,
    "acos": torch.acos,
    "atan": torch.atan,
    "sinh": torch.sinh,
    "cosh": torch.cosh,
    "tanh": torch.tanh,
    "exp": torch.exp,
    "log": torch.log,
    "sqrt": torch.sqrt,
    "abs": torch.abs,
    "sign": torch.sign,
    "floor": torch.floor,
    "sigmoid": torch.sigmoid,
    "relu": torch.relu,
    "silu": torch.nn.functional.silu,
    "min": torch.minimum,
    "max": torch.maximum,
}


@dataclass(frozen=True)
class Expression:
    """A parsed formula evaluated with torch; call it with inputs of shape (n, input_dim)."""

    parsed: ParsedExpression

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        env = {f"x{i}": x[:, i] for i in range(self.parsed.input_dim)}
        if self.parsed.input_dim == 1:
            env["x"] = x[:, 0]
        env["__like__"] = x[:, 0]
        return self.parsed.evaluate(env, TORCH_OPS)


def parse_expression(text: str, input_dim: int) -> Expression:
    """Parse a whitelisted formula (see :mod:`scaletui.expressions`) into a torch function."""
    return Expression(parse_expressions(text, input_dim))


@dataclass(frozen=True)
class Target:
    """A target function with its input distribution."""

    config: TargetConfig
    function: Callable[[torch.Tensor], torch.Tensor]

    @property
    def varying_dims(self) -> int:
        """How many input coordinates vary: the data manifold's dimension."""
        return self.config.intrinsic_dim if self.config.kind == "teacher" else self.config.input_dim

    def sample_inputs(self, n: int, generator: torch.Generator, dtype: torch.dtype) -> torch.Tensor:
        """n inputs, uniform in the domain along the varying coordinates and 0 along the others."""
        low, high = self.config.domain
        varying = torch.rand((n, self.varying_dims), generator=generator, dtype=torch.float64)
        x = torch.zeros((n, self.config.input_dim), dtype=torch.float64)
        x[:, : self.varying_dims] = low + (high - low) * varying
        return x.to(dtype)

    def test_inputs(self, n: int, seed: int, dtype: torch.dtype) -> torch.Tensor:
        """The fixed test set: an even grid when one coordinate varies, otherwise a seeded sample."""
        if self.varying_dims == 1:
            low, high = self.config.domain
            x = torch.zeros((n, self.config.input_dim), dtype=torch.float64)
            x[:, 0] = torch.linspace(low, high, n, dtype=torch.float64)
            return x.to(dtype)
        return self.sample_inputs(n, torch.Generator().manual_seed(seed), dtype)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.function(x)


def teacher_parameters(cfg: TargetConfig) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """A random ReLU MLP's weights N(0, 1/fan_in), (fan_in, fan_out) each, and hidden biases N(0, σ²).

    The biases are drawn after every weight, so ``teacher_bias_std = 0`` gives the teacher of the runs made
    before biases existed, bit for bit. The output layer has none: a constant offset moves no kink, and the
    student's own output bias would absorb it.
    """
    gen = torch.Generator().manual_seed(cfg.teacher_seed)
    sizes = [cfg.input_dim, *cfg.teacher_hidden, 1]
    weights = [
        torch.randn((fan_in, fan_out), generator=gen, dtype=torch.float64) / math.sqrt(fan_in)
        for fan_in, fan_out in itertools.pairwise(sizes)
    ]
    biases = [
        cfg.teacher_bias_std * torch.randn((fan_out,), generator=gen, dtype=torch.float64)
        for fan_out in cfg.teacher_hidden
    ]
    return weights, biases


def _teacher(cfg: TargetConfig) -> Callable[[torch.Tensor], torch.Tensor]:
    """Sharma & Kaplan's teacher: the ReLU MLP of :func:`teacher_parameters`, evaluated in float64."""
    weights, biases = teacher_parameters(cfg)

    def teacher(x: torch.Tensor) -> torch.Tensor:
        h = x.to(torch.float64)
        for w, b in zip(weights[:-1], biases, strict=True):
            h = torch.relu(h @ w.to(h.device) + b.to(h.device))
        return (h @ weights[-1].to(h.device))[:, 0].to(x.dtype)

    return teacher


def build_target(cfg: TargetConfig) -> Target:
    """Build the target and check it is finite on its domain, so a bad formula fails before training."""
    if cfg.kind == "builtin":
        _, scalar = BUILTINS[cfg.name]
        k = cfg.frequency

        def function(x: torch.Tensor) -> torch.Tensor:
            return scalar(x, k).sum(dim=1)

        target = Target(cfg, function)
    elif cfg.kind == "expression":
        try:
            target = Target(cfg, parse_expression(cfg.expression, cfg.input_dim))
        except ExpressionError as exc:
            raise ConfigError("target.expression", str(exc)) from None
    else:
        target = Target(cfg, _teacher(cfg))
    probe = target.sample_inputs(512, torch.Generator().manual_seed(0), torch.float64)
    probe = torch.cat([probe, target.test_inputs(257, 0, torch.float64)])
    with torch.no_grad():
        values = target(probe)
    if values.shape != (probe.shape[0],):
        raise ConfigError(
            f"target.{'expression' if cfg.kind == 'expression' else 'name'}", "must give one number per input"
        )
    bad = ~torch.isfinite(values)
    if bool(bad.any()):
        where = probe[bad.nonzero()[0, 0], : target.varying_dims].tolist()
        field = "target.expression" if cfg.kind == "expression" else "target"
        point = ", ".join(f"{v:.3g}" for v in where)
        raise ConfigError(field, f"is not finite on the domain (e.g. at x = ({point}))")
    return target
