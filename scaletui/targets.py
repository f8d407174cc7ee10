"""Target functions f*: built-ins, user expressions (parsed against a whitelist, never eval'd), teachers.

Every target maps a batch of inputs of shape (n, input_dim) to outputs of shape (n,), as torch tensors,
and knows how to sample its inputs so that a teacher's data lies on a d-dimensional manifold.
"""

from __future__ import annotations

import ast
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from scaletui.config import ConfigError, TargetConfig

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

FUNCTIONS: dict[str, tuple[int, Callable[..., torch.Tensor]]] = {
    "sin": (1, torch.sin),
    "cos": (1, torch.cos),
    "tan": (1, torch.tan),
    "asin": (1, torch.asin),
    "acos": (1, torch.acos),
    "atan": (1, torch.atan),
    "sinh": (1, torch.sinh),
    "cosh": (1, torch.cosh),
    "tanh": (1, torch.tanh),
    "exp": (1, torch.exp),
    "log": (1, torch.log),
    "sqrt": (1, torch.sqrt),
    "abs": (1, torch.abs),
    "sign": (1, torch.sign),
    "floor": (1, torch.floor),
    "sigmoid": (1, torch.sigmoid),
    "relu": (1, torch.relu),
    "silu": (1, torch.nn.functional.silu),
    "min": (2, torch.minimum),
    "max": (2, torch.maximum),
}
CONSTANTS = {"pi": math.pi, "e": math.e}
MAX_EXPRESSION_LENGTH = 1000
MAX_EXPRESSION_NODES = 400

_BINARY = {
    ast.Add: torch.add,
    ast.Sub: torch.sub,
    ast.Mult: torch.mul,
    ast.Div: torch.div,
    ast.Pow: torch.pow,
}
_UNARY = {ast.USub: torch.neg, ast.UAdd: lambda v: v}


class ExpressionError(ValueError):
    """An expression that is not in the whitelisted grammar."""


Evaluator = Callable[[dict[str, torch.Tensor]], torch.Tensor]


def _compile(node: ast.AST, variables: frozenset[str]) -> Evaluator:
    """Turn one whitelisted AST node into a closure over tensors; anything else is refused."""
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise ExpressionError(f"only numbers are allowed as constants, not {node.value!r}")
        value = float(node.value)
        return lambda env: torch.full_like(env["__like__"], value)
    if isinstance(node, ast.Name):
        if node.id in variables:
            name = node.id
            return lambda env: env[name]
        if node.id in CONSTANTS:
            const = CONSTANTS[node.id]
            return lambda env: torch.full_like(env["__like__"], const)
        allowed = ", ".join(sorted(variables | set(CONSTANTS)))
        raise ExpressionError(f"unknown name {node.id!r} (allowed: {allowed})")
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        op = _BINARY[type(node.op)]
        left, right = _compile(node.left, variables), _compile(node.right, variables)
        return lambda env: op(left(env), right(env))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        unary = _UNARY[type(node.op)]
        operand = _compile(node.operand, variables)
        return lambda env: unary(operand(env))
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            shown = node.func.id if isinstance(node.func, ast.Name) else "this call"
            raise ExpressionError(f"{shown!s} is not an allowed function (allowed: {', '.join(FUNCTIONS)})")
        if node.keywords:
            raise ExpressionError(f"{node.func.id}() takes no keyword arguments")
        arity, fn = FUNCTIONS[node.func.id]
        if len(node.args) != arity:
            raise ExpressionError(f"{node.func.id}() takes {arity} argument(s), got {len(node.args)}")
        args = [_compile(a, variables) for a in node.args]
        return lambda env: fn(*(a(env) for a in args))
    raise ExpressionError(f"{type(node).__name__} is not allowed; use numbers, x, + - * / **, and functions")


@dataclass(frozen=True)
class Expression:
    """A parsed, whitelisted formula; call it with inputs of shape (n, input_dim)."""

    text: str
    input_dim: int
    evaluate: Evaluator

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        env = {f"x{i}": x[:, i] for i in range(self.input_dim)}
        if self.input_dim == 1:
            env["x"] = x[:, 0]
        env["__like__"] = x[:, 0]
        return self.evaluate(env)


def parse_expression(text: str, input_dim: int) -> Expression:
    """Parse a formula in x (1-D) or x0..x{d-1}; refuse anything outside the whitelist, without running it."""
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(f"is longer than {MAX_EXPRESSION_LENGTH} characters")
    if any(ord(c) < 32 and c not in "\t" for c in text):
        raise ExpressionError("contains control characters")
    try:
        tree = ast.parse(text.strip().replace("^", "**"), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"is not a formula ({exc.msg})") from None
    except (RecursionError, MemoryError, ValueError):
        raise ExpressionError("is too deeply nested or malformed") from None
    nodes = sum(1 for _ in ast.walk(tree))
    if nodes > MAX_EXPRESSION_NODES:
        raise ExpressionError(f"has {nodes} parts; at most {MAX_EXPRESSION_NODES} are allowed")
    variables = frozenset({f"x{i}" for i in range(input_dim)} | ({"x"} if input_dim == 1 else set()))
    try:
        evaluate = _compile(tree.body, variables)
    except RecursionError:
        raise ExpressionError("is too deeply nested") from None
    return Expression(text=text, input_dim=input_dim, evaluate=evaluate)


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


def _teacher(cfg: TargetConfig) -> Callable[[torch.Tensor], torch.Tensor]:
    """A random ReLU MLP: weights N(0, 1/fan_in), biases 0 (Sharma & Kaplan's teacher)."""
    gen = torch.Generator().manual_seed(cfg.teacher_seed)
    sizes = [cfg.input_dim, *cfg.teacher_hidden, 1]
    weights = [
        torch.randn((fan_in, fan_out), generator=gen, dtype=torch.float64) / math.sqrt(fan_in)
        for fan_in, fan_out in itertools.pairwise(sizes)
    ]

    def teacher(x: torch.Tensor) -> torch.Tensor:
        h = x.to(torch.float64)
        for w in weights[:-1]:
            h = torch.relu(h @ w.to(h.device))
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
