"""Levenberg–Marquardt: exact Jacobians, a loss Adam cannot reach in the same time, and its config rules."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from torch.func import jacrev

from scaletui.config import LM_MAX_PARAMETERS, ConfigError, parameter_count
from scaletui.engine import GradientTrainer, Shard, init_parameters, prepare_problem
from scaletui.levenberg import LevenbergMarquardt
from scaletui.mlp import TORCH_ACTIVATIONS, forward, output_jacobian
from tests.conftest import smoke_config

CPU = torch.device("cpu")


@pytest.mark.parametrize("activation", sorted(TORCH_ACTIVATIONS))
@pytest.mark.parametrize("hidden_layers", [1, 3])
def test_the_written_out_jacobian_equals_autograd(activation, hidden_layers):
    cfg = smoke_config("target.input_dim=3", f"model.hidden_layers={hidden_layers}", "model.widths=[5]")
    params = [p for p in init_parameters(cfg, 5, (0, 1))]
    x = torch.randn(7, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    jac = output_jacobian(params, x, activation)  # (models, n, P)
    for model in range(2):
        own = [p[model] for p in params]

        def outputs(*tensors):
            return forward(list(tensors), x, activation)

        blocks = jacrev(outputs, argnums=tuple(range(len(own))))(*own)
        expected = torch.cat([b.reshape(x.shape[0], -1) for b in blocks], dim=1)
        torch.testing.assert_close(jac[model], expected, rtol=1e-10, atol=1e-12)


def _lm_problem(*overrides: str):
    cfg = smoke_config(
        'training.dtype="float64"', 'training.optimizer="lm"', "model.widths=[8]", "seeds.count=4", *overrides
    )
    return cfg, prepare_problem(cfg, CPU)


def test_lm_reaches_a_far_lower_loss_than_adam_in_the_same_wall_time():
    cfg, problem = _lm_problem()
    shard = Shard(8, (0, 1, 2, 3))
    start = init_parameters(cfg, 8, shard.seeds)
    solver = LevenbergMarquardt([p.clone() for p in start], problem.x_train, problem.y_train, "silu")
    alive = torch.ones(4, dtype=torch.bool)
    began = time.perf_counter()
    for _ in range(150):
        solver.step(alive)
    budget = time.perf_counter() - began
    lm_loss = solver.losses().numpy()

    _, adam_problem = _lm_problem('training.optimizer="adam"', "training.lr=0.01")
    adam = GradientTrainer(adam_problem, shard, [p.clone() for p in start])
    began, steps = time.perf_counter(), 0
    while time.perf_counter() - began < budget:
        adam.step(steps, alive)
        steps += 1
    adam_loss = ((forward(adam.views(), problem.x_train, "silu") - problem.y_train) ** 2).mean(-1).detach().numpy()
    assert steps > 150  # Adam got more (cheaper) steps for the same time
    assert np.median(lm_loss) < np.median(adam_loss) / 100, (lm_loss, adam_loss, steps)


def test_lm_never_accepts_a_step_that_raises_a_models_loss():
    cfg, problem = _lm_problem()
    solver = LevenbergMarquardt(init_parameters(cfg, 8, (0, 1, 2, 3)), problem.x_train, problem.y_train, "silu")
    alive = torch.ones(4, dtype=torch.bool)
    previous = solver.losses()
    for _ in range(40):
        solver.step(alive)
        now = solver.losses()
        assert torch.all(now <= previous)
        previous = now
    assert torch.all(solver.accepted > 10)


def test_a_frozen_model_is_never_changed():
    cfg, problem = _lm_problem()
    solver = LevenbergMarquardt(init_parameters(cfg, 8, (0, 1, 2, 3)), problem.x_train, problem.y_train, "silu")
    before = solver.theta[1].clone()
    alive = torch.tensor([True, False, True, True])
    for _ in range(20):
        _, alive = solver.step(alive)
    torch.testing.assert_close(solver.theta[1], before, rtol=0, atol=0)
    assert int(solver.accepted[1]) == 0 and int(solver.accepted[0]) > 0


def test_lm_configs_it_cannot_serve_are_refused_naming_the_field():
    with pytest.raises(ConfigError, match=r"training\.batch_size: the lm optimizer is full batch"):
        smoke_config('training.optimizer="lm"', "training.batch_size=16")
    too_wide = next(w for w in range(1, 10_000) if parameter_count(1, w, 1) > LM_MAX_PARAMETERS)
    with pytest.raises(ConfigError, match=f"training.optimizer: .*width {too_wide} has"):
        smoke_config('training.optimizer="lm"', f"model.widths=[4, {too_wide}]")
    smoke_config('training.optimizer="lm"', f"model.widths=[4, {too_wide - 1}]")


def test_the_sample_space_solve_takes_the_same_steps_as_the_parameter_space_one():
    cfg = smoke_config('training.dtype="float64"', 'training.optimizer="lm"', "data.n_train=12", "model.widths=[9]")
    problem = prepare_problem(cfg, CPU)
    start = init_parameters(cfg, 9, (0, 1, 2))
    alive = torch.ones(3, dtype=torch.bool)
    small = LevenbergMarquardt([p.clone() for p in start], problem.x_train, problem.y_train, "silu", sample_space=True)
    large = LevenbergMarquardt([p.clone() for p in start], problem.x_train, problem.y_train, "silu", sample_space=False)
    assert small.theta.shape[1] > 12  # 28 parameters, 12 points: the automatic choice is the n×n form
    for _ in range(8):
        small.step(alive)
        large.step(alive)
    torch.testing.assert_close(small.theta, large.theta, rtol=1e-7, atol=1e-9)
    assert torch.all(small.accepted == large.accepted)


def test_the_memory_estimate_counts_lms_square_systems_so_big_shards_are_split():
    from scaletui.engine import estimate_shard_bytes, plan_shards

    common = ('training.dtype="float64"', "data.n_train=1000", "model.widths=[1300]", "seeds.count=20")
    cfg = smoke_config('training.optimizer="lm"', *common)
    adam = smoke_config('training.optimizer="adam"', *common)
    p = parameter_count(1, 1300, 1)
    assert estimate_shard_bytes(cfg, 1300, 20) - estimate_shard_bytes(adam, 1300, 20) >= 20 * 8 * 3 * 1000**2
    assert p > 1000  # more parameters than points: the n×n system is the one held
    one_model = estimate_shard_bytes(cfg, 1300, 1)
    shards = plan_shards(cfg, memory_budget=4 * one_model)
    assert max(len(s.seeds) for s in shards) < 20 and sum(len(s.seeds) for s in shards) == 20
