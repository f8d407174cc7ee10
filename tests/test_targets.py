"""Target functions: built-ins against numpy, the whitelisted expression parser, teachers, input sampling."""

from __future__ import annotations

import dataclasses
import itertools
import math
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from scaletui.config import ConfigError, TargetConfig, config_from_dict, load_config
from scaletui.presets import shipped_presets_dir
from scaletui.targets import BUILTINS, Expression, ExpressionError, build_target, parse_expression
from tests.conftest import report_reliability

K = 2.5  # a frequency that is not 1, so a built-in that ignores or misuses k shows up

NUMPY_BUILTINS = {
    "square": lambda x: x**2,
    "cube": lambda x: x**3,
    "sin": lambda x: np.sin(K * x),
    "abs": lambda x: np.abs(x),
    "exp": lambda x: np.exp(x),
    "gaussian": lambda x: np.exp(-((K * x) ** 2)),
    "step": lambda x: np.where(x > 0, 1.0, 0.0),
}


def grid_1d() -> np.ndarray:
    # Includes 0 exactly (for step and abs) and both domain ends.
    return np.linspace(-2.0, 2.0, 81)


def as_tensor(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))


def test_numpy_table_covers_every_builtin() -> None:
    assert set(NUMPY_BUILTINS) == set(BUILTINS)


@pytest.mark.parametrize("name", sorted(NUMPY_BUILTINS))
def test_builtin_1d_matches_numpy(name: str) -> None:
    target = build_target(TargetConfig(kind="builtin", name=name, frequency=K))
    x = grid_1d()
    got = target(as_tensor(x[:, None]))
    assert got.shape == (len(x),)
    np.testing.assert_allclose(got.numpy(), NUMPY_BUILTINS[name](x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(NUMPY_BUILTINS))
def test_builtin_3d_is_sum_over_coordinates(name: str) -> None:
    target = build_target(TargetConfig(kind="builtin", name=name, frequency=K, input_dim=3))
    x = np.random.default_rng(1).uniform(-2.0, 2.0, size=(64, 3))
    x[0] = [0.0, -1.0, 1.5]
    got = target(as_tensor(x))
    expected = sum(NUMPY_BUILTINS[name](x[:, i]) for i in range(3))
    assert got.shape == (64,)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-12)


def test_builtin_keeps_float32() -> None:
    target = build_target(TargetConfig(kind="builtin", name="square"))
    x = torch.tensor([[1.5], [-0.5]], dtype=torch.float32)
    got = target(x)
    assert got.dtype == torch.float32
    assert got.tolist() == [2.25, 0.25]


# --- expressions -------------------------------------------------------------------------------------


def evaluate(text: str, x: np.ndarray) -> np.ndarray:
    """Parse ``text`` for x of shape (n, d) and evaluate it, as numpy."""
    expr = parse_expression(text, x.shape[1])
    assert isinstance(expr, Expression)
    out = expr(as_tensor(x))
    assert out.shape == (x.shape[0],)
    return out.numpy()


@pytest.mark.parametrize(
    ("text", "formula"),
    [
        ("x**2 + sin(x)", lambda x: x**2 + np.sin(x)),
        ("x^3 - 2*x", lambda x: x**3 - 2 * x),  # ^ is power, not xor
        ("2^x^2", lambda x: 2 ** (x**2)),  # right-associative, like **: not (2^x)^2
        ("pi * x + e", lambda x: math.pi * x + math.e),
        ("min(x, 0.5) + max(x, -0.25)", lambda x: np.minimum(x, 0.5) + np.maximum(x, -0.25)),
        ("-x / 4 + +x", lambda x: -x / 4 + x),
        ("exp(-x**2) * cos(3*x)", lambda x: np.exp(-(x**2)) * np.cos(3 * x)),
        (
            "tanh(x) + abs(x) + relu(x) + sigmoid(x)",
            lambda x: np.tanh(x) + abs(x) + np.maximum(x, 0) + 1 / (1 + np.exp(-x)),
        ),
        ("x0 * 2", lambda x: x * 2),  # x0 is also allowed in 1-D
        ("3", lambda x: np.full_like(x, 3.0)),  # a constant still gives one value per input
        ("sign(x) * floor(x)", lambda x: np.sign(x) * np.floor(x)),
    ],
)
def test_expression_1d_matches_numpy(text: str, formula) -> None:
    x = np.linspace(-1.5, 1.75, 53)
    np.testing.assert_allclose(evaluate(text, x[:, None]), formula(x), rtol=1e-12, atol=1e-12)


def test_expression_3d() -> None:
    x = np.random.default_rng(2).uniform(-1, 1, size=(40, 3))
    np.testing.assert_allclose(evaluate("x0*x1 - x2", x), x[:, 0] * x[:, 1] - x[:, 2], rtol=1e-12)


def test_plain_x_not_allowed_in_several_dims() -> None:
    with pytest.raises(ExpressionError, match="x"):
        parse_expression("x**2", 3)
    with pytest.raises(ExpressionError):
        parse_expression("x3", 3)  # only x0..x2 exist


def test_expression_target_through_build_target() -> None:
    target = build_target(TargetConfig(kind="expression", expression="x**2 + sin(x)", domain=(-2.0, 2.0)))
    x = np.linspace(-2, 2, 17)
    np.testing.assert_allclose(target(as_tensor(x[:, None])).numpy(), x**2 + np.sin(x), rtol=1e-12)


HOSTILE = [
    "__import__('os').system('id')",
    "x.__class__",
    "().__class__.__bases__",
    "(1).__class__.__subclasses__()",
    "lambda: 1",
    "[x for x in y]",
    "{x: 1}",
    "'abc'",
    "b'abc'",
    "open('/etc/passwd')",
    "eval('1')",
    "exec('import os')",
    "x if x else 1",
    "y",
    "X",
    "sin(x, x)",
    "min(x)",
    "sin()",
    "sin(x=1)",
    "max(x, *[x])",
    "x" * 5000,
    "(" * 500 + "x" + ")" * 500,
    "(" * 300 + "x" + ")" * 300,  # under the length limit, but nested beyond the parser's limit
    "-" * 300 + "x",  # a deep but short chain of operators
    "+".join(["x"] * 300),  # too many parts
    "True",
    "None",
    "1j * x",
    "x; import os",
    "import os",
    "x == 1",
    "x < 1",
    "x and 1",
    "x % 2",
    "x // 2",
    "x @ x",
    "x[0]",
    "x := 1",
    "f'{x}'",
    "...",
    "",
    "   ",
    "x\nimport os",
    "x\x00",
    "sin",
    "(x)(x)",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_or_invalid_expression_refused(text: str) -> None:
    with pytest.raises(ExpressionError):
        parse_expression(text, 1)


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_expression_refused_by_config(text: str) -> None:
    raw = {"target": {"kind": "expression", "expression": text}, "model": {"widths": [2]}}
    with pytest.raises(ConfigError) as exc:
        config_from_dict(raw)
    assert exc.value.where == "target.expression"
    assert "target.expression" in str(exc.value)


def test_parsing_never_executes(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payloads = [
        f"open({str(marker)!r}, 'w')",
        f"__import__('pathlib').Path({str(marker)!r}).touch()",
        f"[open({str(marker)!r}, 'w') for _ in [1]]",
        f"(lambda: open({str(marker)!r}, 'w'))()",
        f"x if open({str(marker)!r}, 'w') else x",
        f"sin(open({str(marker)!r}, 'w'))",
    ]
    for payload in payloads:
        with pytest.raises(ExpressionError):
            parse_expression(payload, 1)
        with pytest.raises(ConfigError):
            build_target(TargetConfig(kind="expression", expression=payload))
    assert not marker.exists()
    report_reliability(
        "hostile formulas (eval/import/attribute/lambda/comprehension attacks, file-writing payloads, fuzz)",
        f"{len(HOSTILE)} hand-written, {len(payloads)} payloads, 600 hypothesis strings",
        "each refused with a one-line reason naming target.expression, or parsed into a whitelisted formula; "
        "nothing executed",
        "–",
    )


@pytest.mark.parametrize("text", ["1" * 400, "x + " + "9" * 330])
def test_huge_integer_literal_refused(text: str) -> None:
    assert len(text) < 1000
    with pytest.raises(ExpressionError):
        parse_expression(text, 1)
    with pytest.raises(ConfigError):
        config_from_dict({"target": {"kind": "expression", "expression": text}, "model": {"widths": [2]}})


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_parse_arbitrary_text_only_raises_expression_error(text: str) -> None:
    try:
        expr = parse_expression(text, 1)
    except ExpressionError:
        return
    assert expr(torch.zeros((3, 1), dtype=torch.float64)).shape == (3,)


FORMULA_ALPHABET = "x0123456789.+-*/^() ,episnqrtmaxlbcofgh_[]'\"=<>"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=FORMULA_ALPHABET, max_size=60))
def test_parse_formula_like_text_only_raises_expression_error(text: str) -> None:
    # Text built from formula characters reaches the grammar checks far more often than arbitrary text.
    try:
        expr = parse_expression(text, 1)
    except ExpressionError:
        return
    assert expr(torch.linspace(-1, 1, 5, dtype=torch.float64)[:, None]).shape == (5,)


@pytest.mark.parametrize("text", ["log(x)", "sqrt(x)", "log(x**2 - 1)"])
def test_expression_not_finite_on_domain_refused(text: str) -> None:
    cfg = TargetConfig(kind="expression", expression=text, domain=(-2.0, 2.0))
    with pytest.raises(ConfigError) as exc:
        build_target(cfg)
    assert exc.value.where == "target.expression"
    assert "finite" in str(exc.value)


def test_pole_hit_by_test_grid_refused() -> None:
    cfg = TargetConfig(kind="expression", expression="1/x", domain=(-1.0, 1.0))
    target_grid = build_target(TargetConfig(kind="builtin", domain=(-1.0, 1.0))).test_inputs(257, 0, torch.float64)
    assert (target_grid[:, 0] == 0).any(), "premise: the probe grid contains x = 0"
    with pytest.raises(ConfigError) as exc:
        build_target(cfg)
    assert exc.value.where == "target.expression"


def test_expression_finite_on_positive_domain_accepted() -> None:
    target = build_target(TargetConfig(kind="expression", expression="log(x) + sqrt(x)", domain=(0.5, 3.0)))
    x = np.linspace(0.5, 3.0, 11)
    np.testing.assert_allclose(target(as_tensor(x[:, None])).numpy(), np.log(x) + np.sqrt(x), rtol=1e-12)


# --- teacher -----------------------------------------------------------------------------------------


def teacher_cfg(seed: int = 0, **kw) -> TargetConfig:
    base = dict(
        kind="teacher",
        input_dim=20,
        intrinsic_dim=3,
        domain=(-0.5, 0.5),
        teacher_hidden=(16, 16),
        teacher_seed=seed,
    )
    return TargetConfig(**{**base, **kw})


def test_teacher_inputs_lie_on_the_manifold() -> None:
    target = build_target(teacher_cfg())
    assert target.varying_dims == 3
    x = target.sample_inputs(500, torch.Generator().manual_seed(3), torch.float64)
    assert x.shape == (500, 20)
    assert torch.all(x[:, 3:] == 0)
    assert torch.all((x[:, :3] >= -0.5) & (x[:, :3] <= 0.5))
    # Spread over the domain, not stuck in a corner: each varying coordinate covers most of [-0.5, 0.5].
    assert torch.all(x[:, :3].min(dim=0).values < -0.4)
    assert torch.all(x[:, :3].max(dim=0).values > 0.4)
    y = target(x)
    assert y.shape == (500,)
    assert torch.isfinite(y).all()
    assert y.std() > 0


def test_teacher_is_deterministic_per_seed() -> None:
    x = build_target(teacher_cfg()).sample_inputs(100, torch.Generator().manual_seed(0), torch.float64)
    a = build_target(teacher_cfg(seed=0))(x)
    b = build_target(teacher_cfg(seed=0))(x)
    c = build_target(teacher_cfg(seed=1))(x)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def bias_free_teacher(cfg: TargetConfig):
    """The teacher as it was before biases: weights N(0, 1/fan_in) from the teacher's generator, nothing else."""
    gen = torch.Generator().manual_seed(cfg.teacher_seed)
    sizes = [cfg.input_dim, *cfg.teacher_hidden, 1]
    pairs = itertools.pairwise(sizes)
    weights = [torch.randn((a, b), generator=gen, dtype=torch.float64) / math.sqrt(a) for a, b in pairs]

    def teacher(x: torch.Tensor) -> torch.Tensor:
        for w in weights[:-1]:
            x = torch.relu(x @ w)
        return (x @ weights[-1])[:, 0]

    return teacher


def homogeneity_defect(target, x: torch.Tensor) -> float:
    """RMS of f(2x) − f(0) − 2(f(x) − f(0)) over the RMS of 2(f(x) − f(0)): 0 for a cone-wise linear f.

    f(0) is taken out so that a constant offset alone cannot break homogeneity: only kinks away from 0 can.
    """
    f0 = target(torch.zeros((1, x.shape[1]), dtype=x.dtype))
    scaled, twice = target(2 * x) - f0, 2 * (target(x) - f0)
    return float((scaled - twice).pow(2).mean().sqrt() / twice.pow(2).mean().sqrt())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_zero_bias_teacher_is_the_old_teacher_bit_for_bit(seed: int) -> None:
    # Runs saved before biases existed were trained on this teacher; the store reads them with bias 0.
    cfg = teacher_cfg(seed=seed, teacher_bias_std=0.0)
    target = build_target(cfg)
    x = target.sample_inputs(200, torch.Generator().manual_seed(5), torch.float64)
    assert torch.equal(target(x), bias_free_teacher(cfg)(x))
    # Positively homogeneous: scaling by 2 is exact in binary floating point, so f(2x) = 2f(x) to the bit.
    assert torch.equal(target(2 * x), 2 * target(x))
    assert torch.all(target(torch.zeros((4, 20), dtype=torch.float64)) == 0)


@pytest.mark.parametrize("preset", ["teacher-d2", "teacher-d3"])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_default_teacher_is_not_homogeneous(preset: str, seed: int) -> None:
    # The presets' teacher (64×64, the default bias std) on points of the inner half of the domain, so 2x
    # stays inside it. Seeds 0–9 measure 0.16–0.86 of the signal; a teacher with kinks only through 0 gives 0.
    cfg = load_config(shipped_presets_dir() / f"{preset}.toml")
    assert cfg.target.teacher_bias_std == TargetConfig().teacher_bias_std > 0
    target = build_target(dataclasses.replace(cfg.target, teacher_seed=seed))
    x = 0.5 * target.sample_inputs(2000, torch.Generator().manual_seed(5), torch.float64)
    assert homogeneity_defect(target, x) > 0.1
    assert homogeneity_defect(build_target(dataclasses.replace(cfg.target, teacher_bias_std=0.0)), x) < 1e-12


def test_bias_std_changes_only_the_biases() -> None:
    # Same weights whatever the bias std: with a tiny σ the teacher is the bias-free one plus O(σ).
    cfg = teacher_cfg(teacher_bias_std=1e-9)
    x = build_target(cfg).sample_inputs(200, torch.Generator().manual_seed(5), torch.float64)
    difference = build_target(cfg)(x) - bias_free_teacher(cfg)(x)
    assert 0 < difference.abs().max() < 1e-7


def test_teacher_output_dtype_follows_input() -> None:
    target = build_target(teacher_cfg())
    x = target.sample_inputs(10, torch.Generator().manual_seed(0), torch.float32)
    assert x.dtype == torch.float32
    assert target(x).dtype == torch.float32
    assert target(x).shape == (10,)


def test_sample_inputs_seeded() -> None:
    target = build_target(teacher_cfg())
    a = target.sample_inputs(20, torch.Generator().manual_seed(7), torch.float64)
    b = target.sample_inputs(20, torch.Generator().manual_seed(7), torch.float64)
    c = target.sample_inputs(20, torch.Generator().manual_seed(8), torch.float64)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_teacher_preset_builds() -> None:
    cfg = load_config(shipped_presets_dir() / "teacher-d2.toml")
    target = build_target(cfg.target)
    x = target.test_inputs(64, 0, torch.float32)
    assert x.shape == (64, cfg.target.input_dim)
    assert torch.all(x[:, cfg.target.intrinsic_dim :] == 0)


# --- test inputs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("low", "high", "n"), [(-2.0, 2.0, 101), (0.5, 3.0, 7), (-math.pi, math.pi, 1000)])
def test_test_inputs_1d_even_grid(low: float, high: float, n: int) -> None:
    target = build_target(TargetConfig(kind="builtin", name="square", domain=(low, high)))
    x = target.test_inputs(n, seed=123, dtype=torch.float64)
    assert x.shape == (n, 1)
    grid = x[:, 0].numpy()
    assert grid[0] == low and grid[-1] == high
    np.testing.assert_allclose(np.diff(grid), (high - low) / (n - 1), rtol=1e-9)
    # A grid, not a sample: the seed does not matter.
    assert torch.equal(x, target.test_inputs(n, seed=0, dtype=torch.float64))


def test_test_inputs_grid_for_one_varying_coordinate_in_many_dims() -> None:
    target = build_target(teacher_cfg(intrinsic_dim=1, input_dim=5))
    x = target.test_inputs(11, seed=0, dtype=torch.float64)
    np.testing.assert_allclose(x[:, 0].numpy(), np.linspace(-0.5, 0.5, 11), rtol=1e-12, atol=1e-15)
    assert torch.all(x[:, 1:] == 0)


def test_test_inputs_seeded_sample_in_several_dims() -> None:
    target = build_target(TargetConfig(kind="builtin", name="square", input_dim=2, domain=(-1.0, 1.0)))
    a = target.test_inputs(50, seed=4, dtype=torch.float64)
    assert a.shape == (50, 2)
    assert torch.all((a >= -1) & (a <= 1))
    assert torch.equal(a, target.test_inputs(50, seed=4, dtype=torch.float64))
    assert not torch.equal(a, target.test_inputs(50, seed=5, dtype=torch.float64))


def test_preset_sin_target_matches_numpy() -> None:
    path = shipped_presets_dir() / "sin.toml"
    cfg = load_config(path)
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    k = raw["target"]["frequency"]
    target = build_target(cfg.target)
    x = target.test_inputs(33, 0, torch.float64)[:, 0].numpy()
    np.testing.assert_allclose(target(as_tensor(x[:, None])).numpy(), np.sin(k * x), rtol=1e-12, atol=1e-12)
