"""The fused one-hidden-layer kernel: the same models as the general path, alone or batched, in one call or many,
and the general path wherever the kernel cannot be built."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest
import torch

from scaletui import engine, fused
from scaletui.engine import (
    FusedTrainer,
    GradientTrainer,
    Shard,
    ShardFinished,
    TensorFusedTrainer,
    engine_notice,
    init_parameters,
    make_trainer,
    prepare_problem,
    train_shard,
)
from scaletui.local_executor import configure_process
from scaletui.runner import create_run, execute, runner_environment
from scaletui.store import Run
from tests.conftest import smoke_config

CPU = torch.device("cpu")
CASES = {
    "adam-full-batch-silu": (),
    "adam-minibatch": ("training.batch_size=64",),
    "adam-fresh-noisy": ("data.fresh=true", "training.batch_size=32", "data.noise=0.1"),
    "sgd-momentum": ('training.optimizer="sgd"', "training.momentum=0.9", "training.lr=0.05"),
    "sgd-plain-warmup-step": (
        'training.optimizer="sgd"',
        "training.lr=0.05",
        "training.warmup_steps=10",
        'training.schedule="step"',
        "training.step_every=40",
    ),
    "relu-3d": ('model.activation="relu"', "target.input_dim=3"),
    "tanh": ('model.activation="tanh"',),
    "gelu-xavier": ('model.activation="gelu"', 'model.init="xavier"'),
    "sigmoid-normal": ('model.activation="sigmoid"', 'model.init="normal"'),
}


# Where the kernel cannot be built (no compiler) its own tests are skipped; the fallback's and the tensor form's run.
needs_kernel = pytest.mark.skipif(
    fused.kernel_problem() is not None, reason=f"no fused kernel: {fused.kernel_problem()}"
)


def config(engine: str, *overrides: str):
    return smoke_config(
        'training.dtype="float64"',
        "training.steps=120",
        "training.eval_every=40",
        f'execution.engine="{engine}"',
        *overrides,
    )


def finish(cfg, shard: Shard, initial=None) -> ShardFinished:
    events = list(train_shard(prepare_problem(cfg, CPU), shard, initial=initial))
    assert isinstance(events[-1], ShardFinished)
    return events[-1]


def assert_close(actual: ShardFinished, expected: ShardFinished, rtol: float, atol: float) -> None:
    assert actual.diverged_step.tolist() == expected.diverged_step.tolist()
    np.testing.assert_allclose(actual.train_loss, expected.train_loss, rtol=rtol, atol=atol)
    np.testing.assert_allclose(actual.test_loss, expected.test_loss, rtol=rtol, atol=atol)
    np.testing.assert_allclose(actual.outputs, expected.outputs, rtol=rtol, atol=atol)
    for name, value in expected.weights.items():
        np.testing.assert_allclose(actual.weights[name], value, rtol=rtol, atol=atol, err_msg=name)


@needs_kernel
@pytest.mark.parametrize("overrides", CASES.values(), ids=CASES.keys())
def test_fused_and_general_paths_train_the_same_models(overrides):
    fast, general = config("auto", *overrides), config("general", *overrides)
    problem = prepare_problem(fast, CPU)
    assert isinstance(make_trainer(problem, Shard(8, (0,)), init_parameters(fast, 8, (0,))), FusedTrainer)
    shard = Shard(8, (0, 1, 2))
    # Model by model, to rounding: the two paths sum in different orders, and 120 steps let that grow a little.
    assert_close(finish(fast, shard), finish(general, shard), rtol=1e-9, atol=1e-12)


@needs_kernel
def test_a_diverging_model_is_frozen_at_the_same_step_on_both_paths():
    shard = Shard(4, (0, 1, 2))
    poisoned = init_parameters(config("auto"), 4, shard.seeds)
    poisoned[2][1] = 1e300  # model 1's output overflows on the first forward pass
    fast, general = finish(config("auto"), shard, poisoned), finish(config("general"), shard, poisoned)
    assert fast.diverged_step.tolist() == [-1, 0, -1]
    assert np.isnan(fast.test_loss[1]) and np.all(np.isnan(fast.outputs[1]))
    assert_close(fast, general, rtol=1e-9, atol=1e-12)


@needs_kernel
@pytest.mark.parametrize("overrides", [(), CASES["adam-fresh-noisy"], CASES["sgd-momentum"]], ids=str)
def test_a_model_trains_bit_for_bit_the_same_alone_or_in_the_sweep(overrides):
    cfg = config("auto", *overrides)
    together, alone = finish(cfg, Shard(16, (0, 1, 2, 3))), finish(cfg, Shard(16, (2,)))
    assert together.test_loss[0] != together.test_loss[1]
    for name in ("train_loss", "test_loss", "outputs"):
        assert np.array_equal(getattr(alone, name)[0], getattr(together, name)[2]), name
    for name, value in alone.weights.items():
        assert np.array_equal(value[0], together.weights[name][2]), name


@needs_kernel
@pytest.mark.parametrize("overrides", [(), CASES["adam-minibatch"], CASES["adam-fresh-noisy"]], ids=str)
def test_many_steps_in_one_call_equal_one_step_per_call(overrides):
    cfg = config("auto", *overrides)
    problem = prepare_problem(cfg, CPU)
    shard = Shard(4, (0, 1))

    def trained(calls: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        trainer = make_trainer(problem, shard, [p.to(CPU, torch.float64) for p in init_parameters(cfg, 4, (0, 1))])
        alive, diverged = torch.ones(2, dtype=torch.bool), torch.full((2,), -1, dtype=torch.long)
        running = torch.zeros(2, dtype=torch.float64)
        step = 0
        for count in calls:
            alive, diverged = trainer.advance(step, count, alive, diverged, running)
            step += count
        return trainer.flat.flat.detach().clone(), running

    one_call, in_pieces = trained([100]), trained([1] * 37 + [63])
    assert torch.equal(one_call[0], in_pieces[0]) and torch.equal(one_call[1], in_pieces[1])


@needs_kernel
def test_float32_trains_close_to_the_general_path():
    fast, general = (smoke_config("training.steps=100", f'execution.engine="{e}"') for e in ("auto", "general"))
    shard = Shard(8, (0, 1))
    np.testing.assert_allclose(finish(fast, shard).test_loss, finish(general, shard).test_loss, rtol=1e-3)


@needs_kernel
def test_loading_the_kernel_leaves_denormals_alone():
    """A shared object linked with -ffast-math would switch on flush-to-zero for the whole process."""
    fused.kernel()
    assert torch.tensor(5e-324, dtype=torch.float64).mul(1.0).item() != 0
    assert np.float64(5e-324) * 1.0 != 0


def test_where_the_kernel_cannot_be_built_the_general_path_trains_and_the_log_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    monkeypatch.setenv("SCALETUI_CACHE", str(tmp_path / "cache"))
    fused._load.cache_clear()
    try:
        problem = fused.kernel_problem()
        assert problem is not None and "no C++ compiler" in problem and "\n" not in problem
        cfg = config("auto", "training.steps=30")
        trainer = make_trainer(prepare_problem(cfg, CPU), Shard(4, (0,)), init_parameters(cfg, 4, (0,)))
        assert type(trainer) is GradientTrainer
        expected = finish(config("general", "training.steps=30"), Shard(4, (0, 1)))
        np.testing.assert_array_equal(finish(cfg, Shard(4, (0, 1))).test_loss, expected.test_loss)
        run_dir = create_run(tmp_path / "runs", smoke_config("training.steps=20", "model.widths=[4]"))
        assert execute(run_dir, threading.Event()) == "finished"
        notices = [m for _, _, level, m in Run(run_dir).events() if level == "warning" and problem in m]
        assert notices == [f"{problem}; training on the general PyTorch path, which is several times slower"]
    finally:
        fused._load.cache_clear()


@needs_kernel
def test_the_kernel_is_used_only_where_it_applies():
    assert engine_notice(config("auto"), CPU) is None
    for overrides in (('execution.engine="general"',), ("model.hidden_layers=2",), ('training.optimizer="lm"',)):
        cfg = smoke_config('training.dtype="float64"', *overrides)
        trainer = make_trainer(prepare_problem(cfg, CPU), Shard(4, (0,)), init_parameters(cfg, 4, (0,)))
        assert not isinstance(trainer, FusedTrainer), overrides
    assert not fused.applies(config("auto"), torch.device("cuda"))


def test_the_runner_waits_passively_for_its_threads_unless_told_otherwise():
    assert runner_environment({"PATH": "/bin"}) == {"PATH": "/bin", "OMP_WAIT_POLICY": "PASSIVE"}
    assert runner_environment({"OMP_WAIT_POLICY": "ACTIVE"})["OMP_WAIT_POLICY"] == "ACTIVE"


def test_the_runner_takes_one_thread_per_core_it_may_use():
    before = torch.get_num_threads()
    try:
        described = configure_process()
        assert torch.get_num_threads() == len(os.sched_getaffinity(0))
        assert described.startswith(f"{torch.get_num_threads()} threads")
    finally:
        torch.set_num_threads(before)


# --- the tensor form of the fused step, which CUDA trains with; checked here on the CPU ------------------------


@pytest.fixture
def tensor_fused(monkeypatch):
    """Every shard on the tensor form of the fused step, as on a CUDA device."""
    monkeypatch.setattr(engine, "make_trainer", lambda problem, shard, start: TensorFusedTrainer(problem, shard, start))


@pytest.mark.parametrize(
    "overrides",
    [CASES[name] for name in ("adam-full-batch-silu", "adam-fresh-noisy", "sgd-momentum", "relu-3d", "gelu-xavier")],
    ids=["adam-full-batch-silu", "adam-fresh-noisy", "sgd-momentum", "relu-3d", "gelu-xavier"],
)
def test_the_tensor_form_trains_the_same_models_as_the_general_path(tensor_fused, overrides):
    shard = Shard(8, (0, 1, 2))
    poisoned = init_parameters(config("auto", *overrides), 8, shard.seeds)
    poisoned[2][1] = 1e300  # and freezes a diverging model at the same step
    expected = finish(config("general", *overrides), shard, poisoned)
    actual = finish(config("auto", *overrides), shard, poisoned)
    assert actual.diverged_step.tolist() == [-1, 0, -1]
    assert_close(actual, expected, rtol=1e-9, atol=1e-12)


def test_the_tensor_form_trains_a_model_the_same_alone_or_in_the_sweep(tensor_fused):
    cfg = config("auto", *CASES["adam-minibatch"])
    together, alone = finish(cfg, Shard(16, (0, 1, 2, 3))), finish(cfg, Shard(16, (2,)))
    np.testing.assert_allclose(alone.test_loss[0], together.test_loss[2], rtol=1e-10)
    for name, value in alone.weights.items():
        np.testing.assert_allclose(value[0], together.weights[name][2], rtol=1e-9, atol=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_the_tensor_form_trains_and_agrees_with_the_cpu_kernel():
    cuda_cfg = smoke_config('training.dtype="float64"', "training.steps=120", 'device="cuda"')
    problem = prepare_problem(cuda_cfg, torch.device("cuda"))
    assert isinstance(make_trainer(problem, Shard(8, (0,)), init_parameters(cuda_cfg, 8, (0,))), TensorFusedTrainer)
    events = list(train_shard(problem, Shard(8, (0, 1, 2))))
    assert_close(events[-1], finish(config("auto"), Shard(8, (0, 1, 2))), rtol=1e-8, atol=1e-11)
