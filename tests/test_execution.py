"""Choosing an executor: the [execution] section, shard planning, and what happens without Ray installed.
The Ray executor itself runs in tests/test_ray.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from textual.widgets import Static

from scaletui.config import ConfigError, ExecutionConfig, apply_override, config_from_dict, config_to_dict
from scaletui.engine import Shard, plan_shards
from scaletui.runner import preflight
from scaletui.tui.form import ConfigForm
from tests.conftest import run_cli, smoke_config, until
from tests.test_tui_explorer import ExplorerApp


def test_the_default_is_local_and_an_execution_section_round_trips():
    assert smoke_config().execution == ExecutionConfig()
    cfg = smoke_config("execution.executor=ray", "execution.address=10.0.0.1:6379", "execution.gpus_per_shard=0.5")
    again = config_from_dict(config_to_dict(cfg))
    assert again.execution == ExecutionConfig(executor="ray", address="10.0.0.1:6379", gpus_per_shard=0.5)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (["execution.executor=spark"], "execution.executor"),
        (['execution.address=""'], "execution.address"),
        (["execution.address=head node:6379"], "execution.address"),
        (["execution.cpus_per_shard=0"], "execution.cpus_per_shard"),
        (["execution.gpus_per_shard=-1"], "execution.gpus_per_shard"),
        (["execution.gpus_per_shard=1.5"], "execution.gpus_per_shard"),
        (["execution.seeds_per_shard=-1"], "execution.seeds_per_shard"),
        (["execution.max_retries=-1"], "execution.max_retries"),
        (["execution.checkpoint_seconds=-1"], "execution.checkpoint_seconds"),
        (["execution.checkpoint_seconds=1e12"], "execution.checkpoint_seconds"),
        (["execution.executor=ray", "device=cuda"], "execution.gpus_per_shard"),
        (["execution.executor=ray", "device=cpu", "execution.gpus_per_shard=1"], "execution.gpus_per_shard"),
    ],
)
def test_bad_execution_values_are_refused_naming_the_field(overrides, field):
    with pytest.raises(ConfigError) as exc:
        smoke_config(*overrides)
    assert exc.value.where == field


def test_checkpoints_default_to_every_minute_and_zero_turns_them_off():
    assert smoke_config().execution.checkpoint_seconds == 60.0
    assert smoke_config("execution.checkpoint_seconds=0").execution.checkpoint_seconds == 0.0
    with pytest.raises(ConfigError, match="must be 0 \\(no checkpoints\\) or a number of seconds"):
        smoke_config("execution.checkpoint_seconds=-0.5")


def test_an_unknown_execution_key_is_named():
    with pytest.raises(ConfigError) as exc:
        apply_override({}, "execution.gpus=1")
    assert exc.value.where == "execution.gpus"


def test_seeds_per_shard_caps_the_seeds_a_shard_trains_together():
    n = smoke_config().data.n_train
    assert plan_shards(smoke_config(), None)[0] == Shard(2, (0, 1, 2, 3), n, 1)
    shards = plan_shards(smoke_config("execution.seeds_per_shard=3"), None)
    assert shards[:2] == [Shard(2, (0, 1, 2), n, 1), Shard(2, (3,), n, 1)]
    assert len(shards) == 8 and {s.width for s in shards} == {2, 4, 8, 16}


def test_without_ray_the_ray_executor_is_refused_with_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` sees when ray is not installed
    preflight(smoke_config())  # the local executor does not need it
    with pytest.raises(ConfigError) as exc:
        preflight(smoke_config("execution.executor=ray"))
    assert exc.value.where == "execution.executor"
    assert "pip install 'scaletui[ray]'" in exc.value.problem


def _without_ray(tmp_path: Path) -> dict[str, str]:
    """An environment whose Python finds a `ray` package that fails to import, as if it were not installed."""
    shadow = tmp_path / "no-ray"
    (shadow / "ray").mkdir(parents=True)
    (shadow / "ray" / "__init__.py").write_text("raise ImportError('ray is blocked for this test')\n")
    return {"PYTHONPATH": str(shadow)}


def test_the_cli_says_how_to_install_ray_and_starts_nothing(tmp_path, runs_dir):
    result = run_cli("run", "smoke", "--executor", "ray", "--runs-dir", str(runs_dir), env=_without_ray(tmp_path))
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert "execution.executor" in lines[0] and "pip install 'scaletui[ray]'" in lines[0]
    assert not runs_dir.exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--executor", "spark"], "--executor: must be one of local, ray"),
        (["--executor", "ray", "--gpus-per-shard", "1.5"], "execution.gpus_per_shard"),
        (["--executor", "ray", "--address", "a b"], "execution.address"),
    ],
)
def test_bad_executor_options_are_one_line_errors(runs_dir, args, needle):
    result = run_cli("run", "smoke", *args, "--runs-dir", str(runs_dir))
    assert result.returncode == 2, result.stderr
    assert needle in result.stderr and "Traceback" not in result.stderr


async def test_the_form_offers_the_executor_and_shows_the_missing_ray_under_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    runs_dir = tmp_path / "runs"
    app = ExplorerApp(runs_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        form = app.screen.query_one(ConfigForm)
        assert form.choices("execution.executor") == ("local", "ray")
        assert form.texts["execution.executor"] == "local"
        form.set_text("execution.executor", "ray")
        await pilot.press("ctrl+r")
        await until(pilot, lambda: "execution.executor" in form.errors)
        assert "pip install 'scaletui[ray]'" in form.errors["execution.executor"]
        assert form.current == "execution.executor"
        help_text = str(app.screen.query_one("#field-help", Static).render())  # the current field's whole error
        assert "pip install 'scaletui[ray]'" in help_text  # as text, not taken for markup
    assert not runs_dir.exists()
