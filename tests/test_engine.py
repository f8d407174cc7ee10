"""The batched engine: per-model determinism, divergence handling, schedules, devices."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scaletui.config import ConfigError
from scaletui.engine import (
    Evaluated,
    Shard,
    ShardFinished,
    estimate_shard_bytes,
    init_parameters,
    learning_rate,
    plan_shards,
    prepare_problem,
    resolve_device,
    train_shard,
)
from scaletui.mlp import forward
from tests.conftest import smoke_config

CPU = torch.device("cpu")


def finish(problem, shard, initial=None) -> ShardFinished:
    events = list(train_shard(problem, shard, initial=initial))
    assert isinstance(events[-1], ShardFinished)
    return events[-1]


@pytest.mark.parametrize(
    "overrides",
    [
        ('training.dtype="float64"',),
        ('training.dtype="float64"', "training.batch_size=64"),
        ('training.dtype="float64"', "data.fresh=true", "training.batch_size=32", "data.noise=0.1"),
        (
            'training.dtype="float64"',
            "model.hidden_layers=2",
            'training.optimizer="sgd"',
            "training.momentum=0.9",
        ),
        ('training.dtype="float64"', 'training.optimizer="lm"', 'model.activation="tanh"'),
    ],
    ids=["full-batch", "minibatch", "fresh-noisy", "deep-sgd", "levenberg-marquardt"],
)
def test_a_model_alone_equals_the_same_model_inside_the_sweep(overrides):
    cfg = smoke_config("training.steps=60", "training.eval_every=20", *overrides)
    problem = prepare_problem(cfg, CPU)
    together = finish(problem, Shard(8, (0, 1, 2, 3)))
    alone = finish(problem, Shard(8, (2,)))
    np.testing.assert_allclose(alone.test_loss[0], together.test_loss[2], rtol=1e-10)
    np.testing.assert_allclose(alone.outputs[0], together.outputs[2], rtol=1e-9, atol=1e-12)
    for name, value in alone.weights.items():
        np.testing.assert_allclose(value[0], together.weights[name][2], rtol=1e-9, atol=1e-12)
    # Different seeds really are different models.
    assert together.test_loss[0] != together.test_loss[1]


def test_reruns_are_bitwise_identical():
    cfg = smoke_config("training.steps=40")
    problem = prepare_problem(cfg, CPU)
    first = finish(problem, Shard(4, (0, 1)))
    second = finish(problem, Shard(4, (0, 1)))
    assert np.array_equal(first.outputs, second.outputs)


def test_batched_forward_matches_a_plain_module():
    cfg = smoke_config('training.dtype="float64"', 'model.activation="tanh"')
    params = init_parameters(cfg, 5, (0, 1, 2))
    x = torch.linspace(-2, 2, 11, dtype=torch.float64)[:, None]
    out = forward(params, x, "tanh")
    for m in range(3):
        expected = torch.tanh(x @ params[0][m] + params[1][m]) @ params[2][m] + params[3][m]
        torch.testing.assert_close(out[m], expected[:, 0])


def test_torch_init_has_nn_linear_bounds():
    cfg = smoke_config()
    w0, _b0, w1, _b1 = init_parameters(cfg, 400, (0,))
    assert w0.abs().max() <= 1.0 and w0.abs().max() > 0.95  # fan_in = 1
    assert w1.abs().max() <= 1 / math.sqrt(400) and w1.abs().max() > 0.9 / math.sqrt(400)


def test_a_diverging_model_is_frozen_and_flagged_while_the_others_train_on():
    cfg = smoke_config('training.dtype="float64"', "training.steps=50", "training.eval_every=10")
    problem = prepare_problem(cfg, CPU)
    shard = Shard(4, (0, 1, 2))
    clean = finish(problem, shard)
    poisoned = init_parameters(cfg, 4, shard.seeds)
    poisoned[2][1] = 1e300  # model 1's output weights overflow to inf on the first forward pass
    events = list(train_shard(problem, shard, initial=poisoned))
    result = events[-1]
    assert isinstance(result, ShardFinished)
    assert result.diverged_step.tolist() == [-1, 0, -1]
    assert np.isnan(result.test_loss[1]) and np.all(np.isnan(result.outputs[1]))
    np.testing.assert_allclose(result.test_loss[[0, 2]], clean.test_loss[[0, 2]], rtol=1e-12)
    evaluations = [e for e in events if isinstance(e, Evaluated)]
    assert [e.step for e in evaluations] == [0, 10, 20, 30, 40, 50]
    assert all(np.isfinite(e.test_loss[[0, 2]]).all() for e in evaluations)
    assert all(np.isnan(e.test_loss[1]) for e in evaluations[1:])


def test_training_reduces_the_loss():
    cfg = smoke_config("training.steps=200")
    problem = prepare_problem(cfg, CPU)
    events = list(train_shard(problem, Shard(16, (0, 1))))
    first = next(e for e in events if isinstance(e, Evaluated))
    assert np.all(events[-1].test_loss < first.test_loss / 5)


def test_learning_rate_schedules():
    cos = smoke_config('training.schedule="cosine"', "training.steps=100", "training.warmup_steps=10")
    assert learning_rate(cos, 0) == pytest.approx(0.01 / 10)
    assert learning_rate(cos, 9) == pytest.approx(0.01)
    assert learning_rate(cos, 10) == pytest.approx(0.01)
    assert learning_rate(cos, 55) == pytest.approx(0.005)
    assert learning_rate(cos, 99) < 1e-4
    step = smoke_config('training.schedule="step"', "training.step_every=30", "training.step_gamma=0.5")
    assert [learning_rate(step, s) for s in (0, 29, 30, 60, 299)] == pytest.approx(
        [0.01, 0.01, 0.005, 0.0025, 0.01 * 0.5**9]
    )


def test_shards_cover_every_width_and_seed_once_and_shrink_to_fit_memory():
    cfg = smoke_config("seeds.count=5")
    assert [len(s.seeds) for s in plan_shards(cfg)] == [5, 5, 5, 5]
    budget = estimate_shard_bytes(cfg, 16, 2)  # room for two models of the widest net
    shards = plan_shards(cfg, memory_budget=budget)
    covered = sorted((s.width, seed) for s in shards for seed in s.seeds)
    assert covered == sorted((w, s) for w in cfg.model.widths for s in range(5))
    assert all(estimate_shard_bytes(cfg, s.width, len(s.seeds)) <= budget for s in shards)
    assert max(len(s.seeds) for s in shards if s.width == 16) == 2


def test_a_width_that_cannot_fit_is_refused_with_the_estimate():
    cfg = smoke_config("model.widths=[4, 100000]", "data.n_train=100000")
    with pytest.raises(ConfigError, match=r"width 100000 needs about \d+\.\d GiB for a single model"):
        plan_shards(cfg, memory_budget=8 * 2**30)


def test_split_shards_give_the_same_models():
    cfg = smoke_config("training.steps=30", 'training.dtype="float64"')
    problem = prepare_problem(cfg, CPU)
    whole = finish(problem, Shard(8, (0, 1, 2, 3)))
    halves = [finish(problem, Shard(8, seeds)) for seeds in ((0, 1), (2, 3))]
    np.testing.assert_allclose(np.concatenate([h.test_loss for h in halves]), whole.test_loss, rtol=1e-10)


def test_device_resolution():
    assert resolve_device("cpu") == CPU
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="device"):
            resolve_device("cuda")
