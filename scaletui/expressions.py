"""User formulas for targets, parsed against a whitelist and never passed to eval or exec.

The grammar: numbers, the variables ``x`` (1-D) or ``x0``..``x{d-1}``, the constants ``pi`` and ``e``,
``+ - * / **`` (``^`` means ``**``), and the functions in :data:`FUNCTION_ARITY`. Parsing builds a tree
of closures; the array operations come in at evaluation time, so this module needs no torch and config
validation stays cheap.
"""

from __future__ import annotations

import ast
import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

FUNCTION_ARITY: dict[str, int] = {
    **dict.fromkeys(
        [
            "sin",
            "cos",
            "tan",
            "asin",
            "acos",
            "atan",
            "sinh",
            "cosh",
            "tanh",
            "exp",
            "log",
            "sqrt",
            "abs",
            "sign",
            "floor",
            "sigmoid",
            "relu",
            "silu",
        ],
        1,
    ),
    "min": 2,
    "max": 2,
}
CONSTANTS = {"pi": math.pi, "e": math.e}
MAX_EXPRESSION_LENGTH = 1000
MAX_EXPRESSION_NODES = 400

_BINARY = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.Pow: "pow"}
_UNARY = {ast.USub: "neg", ast.UAdd: None}

Ops = Mapping[str, Callable[..., Any]]
Evaluator = Callable[[Mapping[str, Any], Ops], Any]


class ExpressionError(ValueError):
    """An expression outside the whitelisted grammar."""


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ExpressionError(f"only numbers are allowed as constants, not {value!r}")
    try:
        number = float(value)
    except OverflowError:
        raise ExpressionError("has a number too large to represent") from None
    if not math.isfinite(number):
        raise ExpressionError("has a number too large to represent")
    return number


def _compile(node: ast.AST, variables: frozenset[str]) -> Evaluator:
    """One whitelisted AST node as a closure ``(env, ops) -> array``; anything else is refused."""
    if isinstance(node, ast.Constant):
        value = _number(node.value)
        return lambda env, ops: ops["const"](env["__like__"], value)
    if isinstance(node, ast.Name):
        if node.id in variables:
            name = node.id
            return lambda env, ops: env[name]
        if node.id in CONSTANTS:
            const = CONSTANTS[node.id]
            return lambda env, ops: ops["const"](env["__like__"], const)
        allowed = ", ".join(sorted(variables | set(CONSTANTS)))
        raise ExpressionError(f"unknown name {node.id!r} (allowed: {allowed})")
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        op = _BINARY[type(node.op)]
        left, right = _compile(node.left, variables), _compile(node.right, variables)
        return lambda env, ops: ops[op](left(env, ops), right(env, ops))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        unary = _UNARY[type(node.op)]
        operand = _compile(node.operand, variables)
        if unary is None:
            return operand
        return lambda env, ops: ops[unary](operand(env, ops))
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTION_ARITY:
            shown = node.func.id if isinstance(node.func, ast.Name) else "this call"
            raise ExpressionError(f"{shown} is not an allowed function (allowed: {', '.join(FUNCTION_ARITY)})")
        name = node.func.id
        if node.keywords:
            raise ExpressionError(f"{name}() takes no keyword arguments")
        if len(node.args) != FUNCTION_ARITY[name]:
            raise ExpressionError(f"{name}() takes {FUNCTION_ARITY[name]} argument(s), got {len(node.args)}")
        args = [_compile(a, variables) for a in node.args]
        return lambda env, ops: ops[name](*(a(env, ops) for a in args))
    raise ExpressionError(f"{type(node).__name__} is not allowed; use numbers, x, + - * / **, and functions")


@dataclass(frozen=True)
class ParsedExpression:
    """A validated formula; evaluate it with an ops table for the array library at hand."""

    text: str
    input_dim: int
    evaluate: Evaluator


def parse_expression(text: str, input_dim: int) -> ParsedExpression:
    """Parse a formula in x (1-D) or x0..x{d-1}; refuse anything outside the whitelist, without running it."""
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(f"is longer than {MAX_EXPRESSION_LENGTH} characters")
    stripped = text.strip()
    if any(ord(c) < 32 and c != "\t" for c in stripped):
        raise ExpressionError("contains control characters")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. SyntaxWarning for "1in": we refuse it ourselves below
            tree = ast.parse(stripped.replace("^", "**"), mode="eval")
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
    return ParsedExpression(text=text, input_dim=input_dim, evaluate=evaluate)
