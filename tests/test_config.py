"""The experiment schema: shipped presets, round trips, width ranges, validation, overrides, preset lookup."""

from __future__ import annotations

import dataclasses
import itertools
import re
import tomllib
from pathlib import Path

import pytest

import scaletui.config as config_module
from scaletui.config import (
    ACTIVATIONS,
    BUILTIN_NAMES,
    DEVICES,
    DTYPES,
    OPTIMIZERS,
    Config,
    ConfigError,
    apply_override,
    config_from_dict,
    config_to_toml,
    field_choices,
    field_docs,
    load_config,
    log_spaced_widths,
    parameter_count,
    parse_toml,
    reference_toml,
)
from scaletui.presets import list_presets, resolve_preset, save_user_preset, shipped_presets_dir
from tests.conftest import run_cli

SHIPPED = {"lottery-silu", "lottery-relu", "sin", "teacher-d2", "smoke"}


@pytest.fixture(autouse=True)
def _isolated_presets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep the developer's own ~/.config presets and the current directory out of every test."""
    user_dir = tmp_path / "user-presets"
    monkeypatch.setenv("SCALETUI_PRESETS_DIR", str(user_dir))
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    return user_dir


def shipped_presets():
    return [p for p in list_presets() if p.origin == "shipped"]


# A small valid config, as TOML literals per section; tests replace one entry to make it invalid.
BASE: dict[str | None, dict[str, str]] = {
    None: {"name": '"t"'},
    "target": {"kind": '"builtin"', "name": '"square"'},
    "data": {"n_train": "100", "n_test": "50"},
    "model": {"widths": "[2, 4]"},
    "training": {"lr": "0.01", "steps": "200", "eval_every": "50", "batch_size": "0"},
    "seeds": {"count": "2"},
}


def toml_text(changes: dict[tuple[str | None, str], str | None] | None = None) -> str:
    """BASE with some (section, key) entries set to new TOML literals (None removes the key)."""
    doc = {section: dict(values) for section, values in BASE.items()}
    for (section, key), literal in (changes or {}).items():
        doc.setdefault(section, {})
        if literal is None:
            doc[section].pop(key, None)
        else:
            doc[section][key] = literal
    lines = [f"{k} = {v}" for k, v in doc[None].items()]
    for section, values in doc.items():
        if section is not None:
            lines += ["", f"[{section}]", *(f"{k} = {v}" for k, v in values.items())]
    return "\n".join(lines) + "\n"


def write(tmp_path: Path, text: str, name: str = "cfg.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_base_config_is_valid(tmp_path: Path) -> None:
    # The bad-value tests below rely on the base being valid apart from the one change they make.
    cfg = load_config(write(tmp_path, toml_text()))
    assert cfg.training.lr == 0.01
    assert cfg.widths == (2, 4)


# --- shipped presets ---------------------------------------------------------------------------------


def test_all_shipped_presets_are_listed() -> None:
    names = {p.name for p in shipped_presets()}
    assert names >= SHIPPED
    for p in shipped_presets():
        assert p.path.parent == shipped_presets_dir()
        assert p.path.is_file()


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_preset_loads_and_validates(name: str) -> None:
    (info,) = [p for p in list_presets() if p.name == name]
    cfg = load_config(info.path)
    assert cfg.name == name
    assert cfg.description.strip()
    assert info.description == cfg.description
    assert cfg.widths, "validation resolves a width list"
    assert list(cfg.widths) == sorted(set(cfg.widths))
    assert (cfg.model.width_min, cfg.model.width_max, cfg.model.width_count) == (0, 0, 0)


def test_every_listed_preset_round_trips(tmp_path: Path) -> None:
    presets = shipped_presets()
    assert {p.name for p in presets} >= SHIPPED
    for info in presets:
        cfg = load_config(info.path)
        again = load_config(write(tmp_path, config_to_toml(cfg), f"{info.name}.toml"))
        assert again == cfg, info.name


def test_round_trip_preserves_awkward_strings(tmp_path: Path) -> None:
    raw = tomllib.loads(toml_text())
    raw["name"] = 'quote " and back\\slash'
    raw["description"] = "line one\nline two\ttabbed, unicode α ≈ 4, x²"
    raw["target"] = {"kind": "expression", "expression": "x**2 + 0.1 * sin(3 * x)", "domain": [-1.5, 2.25]}
    cfg = config_from_dict(raw)
    again = load_config(write(tmp_path, config_to_toml(cfg)))
    assert again == cfg
    assert again.description == raw["description"]


@pytest.mark.parametrize(
    ("key", "value"), [("description", "a\x01b"), ("description", "carriage\r"), ("name", "a\x7fb"), ("name", "a\tb")]
)
def test_control_characters_are_refused_in_text_fields(key: str, value: str) -> None:
    raw = tomllib.loads(toml_text())
    raw[key] = value
    with pytest.raises(ConfigError, match=f"{key}: contains a control character"):
        config_from_dict(raw)


# --- widths ------------------------------------------------------------------------------------------


def widths_from_range(tmp_path: Path, low: int, high: int, count: int) -> tuple[int, ...]:
    changes = {
        ("model", "widths"): None,
        ("model", "width_min"): str(low),
        ("model", "width_max"): str(high),
        ("model", "width_count"): str(count),
    }
    return load_config(write(tmp_path, toml_text(changes))).widths


def test_width_range_powers_of_two(tmp_path: Path) -> None:
    assert widths_from_range(tmp_path, 2, 256, 8) == tuple(2**k for k in range(1, 9))


@pytest.mark.parametrize(
    ("low", "high", "count", "expected"),
    [
        (1, 1000, 4, tuple(10**k for k in range(4))),
        (3, 48, 5, tuple(3 * 2**k for k in range(5))),
        (5, 405, 5, tuple(5 * 3**k for k in range(5))),
        (1, 10, 10, tuple(range(1, 11))),  # every integer: rounding clashes must be bumped apart
        (7, 7, 1, (7,)),
    ],
)
def test_width_range_exact_cases(tmp_path: Path, low: int, high: int, count: int, expected) -> None:
    assert widths_from_range(tmp_path, low, high, count) == expected


@pytest.mark.parametrize(
    ("low", "high", "count"),
    [(1, 12, 12), (1, 100, 30), (2, 9, 8), (4, 256, 7), (1, 5000, 40), (50, 60, 11), (3, 3000, 6)],
)
def test_width_range_properties(tmp_path: Path, low: int, high: int, count: int) -> None:
    widths = widths_from_range(tmp_path, low, high, count)
    assert len(widths) == count
    assert len(set(widths)) == count
    assert list(widths) == sorted(widths)
    assert widths[0] == low and widths[-1] == high
    assert all(isinstance(w, int) for w in widths)
    # Log-spaced: the ideal points are low * (high/low)**(i/(count-1)). Rounding may move a width by at
    # most 0.5, and clashes at the small end are only ever resolved upward.
    ideal = [low * (high / low) ** (i / (count - 1)) for i in range(count)]
    assert all(w >= x - 0.5 - 1e-9 for w, x in zip(widths, ideal, strict=True))
    if all(b - a >= 1.01 for a, b in itertools.pairwise(ideal)):  # no two ideal points round together
        assert all(abs(w - x) <= 0.5 + 1e-9 for w, x in zip(widths, ideal, strict=True))


def test_log_spaced_widths_exhaustive_small_ranges() -> None:
    for low, high in itertools.combinations(range(1, 30), 2):
        for count in range(2, high - low + 2):
            widths = log_spaced_widths(low, high, count)
            assert len(set(widths)) == count, (low, high, count, widths)
            assert list(widths) == sorted(widths)
            assert (widths[0], widths[-1]) == (low, high), (low, high, count, widths)


@pytest.mark.parametrize(
    ("low", "high", "count", "field"),
    [
        (2, 4, 4, "model.width_count"),  # only 3 integers in [2, 4]
        (10, 12, 100, "model.width_count"),
        (64, 8, 3, "model.width_max"),  # max below min
        (0, 8, 3, "model.width_min"),
        (2, 8, 0, "model.width_count"),
    ],
)
def test_impossible_width_range(tmp_path: Path, low: int, high: int, count: int, field: str) -> None:
    with pytest.raises(ConfigError) as exc:
        widths_from_range(tmp_path, low, high, count)
    assert exc.value.where == field
    assert field in str(exc.value)


def test_widths_and_range_together_refused(tmp_path: Path) -> None:
    changes = {("model", "width_min"): "2", ("model", "width_max"): "8", ("model", "width_count"): "3"}
    with pytest.raises(ConfigError, match=r"model\.widths") as exc:
        load_config(write(tmp_path, toml_text(changes)))
    assert "not both" in exc.value.problem


def test_no_widths_at_all_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"model\.widths"):
        load_config(write(tmp_path, toml_text({("model", "widths"): None})))


def test_duplicate_widths_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"model\.widths") as exc:
        load_config(write(tmp_path, toml_text({("model", "widths"): "[4, 8, 4]"})))
    assert "twice" in exc.value.problem


def test_explicit_widths_are_sorted(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, toml_text({("model", "widths"): "[16, 2, 8]"}))).widths == (2, 8, 16)


# --- bad values --------------------------------------------------------------------------------------


def test_bad_choices_are_really_outside_the_allowed_sets() -> None:
    assert "lbfgs" not in OPTIMIZERS
    assert "swish" not in ACTIVATIONS
    assert "float16" not in DTYPES
    assert "tpu" not in DEVICES


BAD_VALUES = [
    # (section, key, TOML literal, the field the error must name)
    ("training", "lr", "0", "training.lr"),
    ("training", "lr", "-1e-3", "training.lr"),
    ("training", "lr", "nan", "training.lr"),
    ("training", "lr", "inf", "training.lr"),
    ("training", "lr", "-inf", "training.lr"),
    ("training", "lr", "1000.0", "training.lr"),
    ("training", "lr", "'fast'", "training.lr"),
    ("training", "steps", "0", "training.steps"),
    ("training", "steps", "-5", "training.steps"),
    ("training", "steps", "1.5", "training.steps"),
    ("training", "steps", "true", "training.steps"),
    ("training", "optimizer", '"lbfgs"', "training.optimizer"),
    ("training", "dtype", '"float16"', "training.dtype"),
    ("training", "schedule", '"linear"', "training.schedule"),
    ("training", "momentum", "1.0", "training.momentum"),
    ("training", "step_gamma", "0", "training.step_gamma"),
    ("training", "batch_size", "101", "training.batch_size"),  # n_train is 100
    ("training", "batch_size", "-1", "training.batch_size"),
    ("training", "eval_every", "1000000001", "training.eval_every"),  # above MAX_STEPS
    ("training", "eval_every", "0", "training.eval_every"),
    ("training", "eval_schedule", '"exponential"', "training.eval_schedule"),
    ("training", "warmup_steps", "201", "training.warmup_steps"),
    ("seeds", "count", "0", "seeds.count"),
    ("seeds", "count", "1.5", "seeds.count"),
    ("seeds", "base", "-1", "seeds.base"),
    ("model", "widths", "[0]", "model.widths[0]"),
    ("model", "widths", "[-3]", "model.widths[0]"),
    ("model", "widths", "[2, 2.5]", "model.widths[1]"),
    ("model", "widths", "4", "model.widths"),
    ("model", "activation", '"swish"', "model.activation"),
    ("model", "init", '"he"', "model.init"),
    ("model", "hidden_layers", "0", "model.hidden_layers"),
    ("data", "n_train", "0", "data.n_train"),
    ("data", "n_test", "0", "data.n_test"),
    ("data", "noise", "-1", "data.noise"),
    ("data", "noise", "nan", "data.noise"),
    ("data", "fresh", "1", "data.fresh"),
    ("data", "fresh", '"yes"', "data.fresh"),
    ("target", "kind", '"mystery"', "target.kind"),
    ("target", "name", '"sine"', "target.name"),
    ("target", "domain", "[2.0, -2.0]", "target.domain"),
    ("target", "domain", "[1.0]", "target.domain"),
    ("target", "domain", "[0, inf]", "target.domain[1]"),
    ("target", "input_dim", "0", "target.input_dim"),
    ("target", "teacher_bias_std", "-0.1", "target.teacher_bias_std"),
    ("target", "teacher_bias_std", "nan", "target.teacher_bias_std"),
    ("target", "teacher_bias_std", '"wide"', "target.teacher_bias_std"),
    (None, "device", '"tpu"', "device"),
    (None, "name", '""', "name"),
    (None, "name", "3", "name"),
]


@pytest.mark.parametrize(("section", "key", "literal", "field"), BAD_VALUES)
def test_bad_value_refused_naming_field(
    tmp_path: Path, section: str | None, key: str, literal: str, field: str
) -> None:
    path = write(tmp_path, toml_text({(section, key): literal}))
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert exc.value.where == field
    assert field in str(exc.value)
    assert str(path) in str(exc.value)


def test_fresh_without_batch_size_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, toml_text({("data", "fresh"): "true"})))
    assert exc.value.where == "training.batch_size"
    assert "training.batch_size" in str(exc.value)


def test_fresh_allows_batch_size_above_n_train(tmp_path: Path) -> None:
    # With fresh samples every step n_train is unused, so the batch may exceed it.
    changes = {("data", "fresh"): "true", ("training", "batch_size"): "500"}
    cfg = load_config(write(tmp_path, toml_text(changes)))
    assert cfg.data.fresh and cfg.training.batch_size == 500


def test_eval_every_above_steps_means_evaluate_at_end(tmp_path: Path) -> None:
    # Deliberately allowed (config.py: "above steps: evaluate at the end only").
    cfg = load_config(write(tmp_path, toml_text({("training", "eval_every"): "201"})))  # steps is 200
    assert cfg.training.eval_every == 201 > cfg.training.steps


def test_integral_float_accepted_for_integer_field(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, toml_text({("training", "steps"): "300.0"})))
    assert cfg.training.steps == 300
    assert isinstance(cfg.training.steps, int)


def test_integral_float_beyond_int64_refused_even_where_unused(tmp_path: Path) -> None:
    # An integral float no int64 holds: accepted, the saved preset would not reload (found by the fuzzer).
    path = write(tmp_path, toml_text({("target", "intrinsic_dim"): "9.223372036854776e18"}))
    with pytest.raises(
        ConfigError, match=r"target\.intrinsic_dim: is far too large \(19 digits; at most 9223372036854775807\)"
    ):
        load_config(path)


def test_teacher_needs_intrinsic_dim(tmp_path: Path) -> None:
    changes = {("target", "kind"): '"teacher"', ("target", "input_dim"): "4", ("target", "name"): None}
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, toml_text(changes)))
    assert exc.value.where == "target.intrinsic_dim"
    too_big = {**changes, ("target", "intrinsic_dim"): "5"}
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, toml_text(too_big)))
    assert exc.value.where == "target.intrinsic_dim"
    ok = load_config(write(tmp_path, toml_text({**changes, ("target", "intrinsic_dim"): "4"})))
    assert ok.target.intrinsic_dim == 4


# --- unknown keys and broken TOML --------------------------------------------------------------------


def test_unknown_top_level_key_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, toml_text({(None, "colour"): '"blue"'})))
    assert exc.value.where == "colour"
    assert "unknown key" in str(exc.value)


def test_unknown_section_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, toml_text({("optimiser", "lr"): "0.1"})))
    assert exc.value.where == "optimiser"


def test_unknown_key_in_section_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, toml_text({("training", "lrr"): "0.1"})))
    assert exc.value.where == "training.lrr"
    assert "training.lrr" in str(exc.value)


def test_section_that_is_not_a_table_refused() -> None:
    raw = tomllib.loads(toml_text())
    raw["training"] = 3
    with pytest.raises(ConfigError) as exc:
        config_from_dict(raw)
    assert exc.value.where == "training"


def test_broken_toml_names_file_and_line(tmp_path: Path) -> None:
    text = 'name = "t"\n\n[training\nlr = 0.1\n'  # the unclosed table header is line 3
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert str(path) in str(exc.value)
    assert "line 3" in str(exc.value)


def test_broken_toml_value_line_number(tmp_path: Path) -> None:
    lines = toml_text().splitlines()
    bad_line = lines.index("[training]") + 2  # 1-based number of the line after the header
    lines.insert(bad_line - 1, "lr = = 3")
    path = write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert f"line {bad_line}" in str(exc.value)
    assert str(path) in str(exc.value)


def test_missing_and_undecodable_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as exc:
        load_config(missing)
    assert str(missing) in str(exc.value)
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b'name = "\xff\xfe"\n')
    with pytest.raises(ConfigError) as exc:
        load_config(binary)
    assert str(binary) in str(exc.value)


# --- overrides ---------------------------------------------------------------------------------------


def test_override_float() -> None:
    raw = tomllib.loads(toml_text())
    apply_override(raw, "training.lr=3e-3")
    assert raw["training"]["lr"] == 3e-3
    assert isinstance(raw["training"]["lr"], float)


def test_override_through_load_config(tmp_path: Path) -> None:
    path = write(tmp_path, toml_text())
    cfg = load_config(path, overrides=["training.lr=3e-3", "target.name=sin", "seeds.count = 5", "name=other"])
    assert cfg.training.lr == 3e-3
    assert cfg.target.name == "sin"  # a bare word that is not TOML is read as a string
    assert cfg.seeds.count == 5
    assert cfg.name == "other"
    assert load_config(path).training.lr == 0.01  # the file itself is untouched


def test_override_applies_before_validation(tmp_path: Path) -> None:
    path = write(tmp_path, toml_text({("training", "lr"): "0"}))
    assert load_config(path, overrides=["training.lr=0.5"]).training.lr == 0.5


def test_override_into_absent_section(tmp_path: Path) -> None:
    path = write(tmp_path, toml_text({("seeds", "count"): None}))
    assert load_config(path, overrides=["seeds.base=7"]).seeds.base == 7


def test_override_widths_replaces_range(tmp_path: Path) -> None:
    changes = {
        ("model", "widths"): None,
        ("model", "width_min"): "2",
        ("model", "width_max"): "256",
        ("model", "width_count"): "8",
    }
    path = write(tmp_path, toml_text(changes))
    assert load_config(path, overrides=["model.widths=[4,8]"]).widths == (4, 8)
    (lottery,) = [p for p in list_presets() if p.name == "lottery-silu"]
    assert load_config(lottery.path, overrides=["model.widths=[4, 8]"]).widths == (4, 8)


def test_override_range_replaces_widths(tmp_path: Path) -> None:
    path = write(tmp_path, toml_text())  # widths = [2, 4]
    overrides = ["model.width_min=1", "model.width_max=1000", "model.width_count=4"]
    assert load_config(path, overrides=overrides).widths == tuple(10**k for k in range(4))


def test_override_one_range_field_keeps_the_others() -> None:
    (lottery,) = [p for p in list_presets() if p.name == "lottery-silu"]  # widths 2..256, count 8
    cfg = load_config(lottery.path, overrides=["model.width_count=4"])
    assert (cfg.widths[0], cfg.widths[-1], len(cfg.widths)) == (2, 256, 4)


@pytest.mark.parametrize("override", ["training.lrr=1", "trainer.lr=1", "bogus=1", "training.lr.x=1"])
def test_override_unknown_key(override: str) -> None:
    key = override.partition("=")[0]
    with pytest.raises(ConfigError) as exc:
        apply_override(tomllib.loads(toml_text()), override)
    assert exc.value.where == key
    assert key in str(exc.value)


@pytest.mark.parametrize("override", ["training.lr", "training.lr 3e-3", "=3", "  =x"])
def test_override_malformed(override: str) -> None:
    with pytest.raises(ConfigError) as exc:
        apply_override(tomllib.loads(toml_text()), override)
    assert exc.value.where == "--set"
    assert repr(override) in str(exc.value)


def test_override_unknown_key_through_load_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"training\.lrr"):
        load_config(write(tmp_path, toml_text()), overrides=["training.lrr=1"])


# --- parameter count ---------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [1, 2, 7, 64, 1000])
def test_parameter_count_one_hidden_layer(width: int) -> None:
    assert parameter_count(1, width, 1) == 3 * width + 1


@pytest.mark.parametrize(
    ("input_dim", "width", "hidden_layers"),
    list(itertools.product([1, 3, 20], [1, 5, 64], [1, 2, 3, 6])),
)
def test_parameter_count_general(input_dim: int, width: int, hidden_layers: int) -> None:
    sizes = [input_dim, *([width] * hidden_layers), 1]
    expected = sum(fan_in * fan_out + fan_out for fan_in, fan_out in itertools.pairwise(sizes))
    assert parameter_count(input_dim, width, hidden_layers) == expected


# --- preset lookup -----------------------------------------------------------------------------------


def test_resolve_preset_by_name() -> None:
    path = resolve_preset("smoke")
    assert path == shipped_presets_dir() / "smoke.toml"
    assert load_config(path).name == "smoke"


def test_resolve_preset_by_path(tmp_path: Path) -> None:
    path = write(tmp_path, toml_text(), "mine.toml")
    assert resolve_preset(str(path)) == path


def test_existing_file_wins_over_preset_name() -> None:
    local = Path("smoke.toml")  # relative to the (temporary) working directory
    local.write_text(toml_text(), encoding="utf-8")
    assert resolve_preset("smoke.toml") == local
    assert resolve_preset("smoke") == shipped_presets_dir() / "smoke.toml"


def test_presets_dir_path_names_the_shipped_preset_from_anywhere(tmp_path: Path) -> None:
    ref = str(tmp_path / "presets" / "teacher-d2.toml")
    assert resolve_preset(ref) == shipped_presets_dir() / "teacher-d2.toml"


def test_a_mistyped_path_is_not_silently_replaced_by_a_preset(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        resolve_preset(str(tmp_path / "no" / "such" / "dir" / "teacher-d2.toml"))


def test_unknown_preset_lists_known_ones() -> None:
    with pytest.raises(ConfigError) as exc:
        resolve_preset("no-such-preset")
    assert exc.value.where == "preset"
    assert "no-such-preset" in str(exc.value)
    for name in SHIPPED:
        assert name in str(exc.value)


def test_directory_is_not_a_preset(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a file"):
        resolve_preset(str(tmp_path))


def test_user_preset_shadows_shipped(_isolated_presets: Path) -> None:
    user_dir = _isolated_presets
    user_dir.mkdir()
    text = toml_text({(None, "name"): '"smoke"', (None, "description"): '"my own smoke"'})
    (user_dir / "smoke.toml").write_text(text, encoding="utf-8")
    (user_dir / "extra.toml").write_text(text, encoding="utf-8")

    assert resolve_preset("smoke") == user_dir / "smoke.toml"
    assert resolve_preset("extra") == user_dir / "extra.toml"
    by_name = {p.name: p for p in list_presets()}
    assert by_name["smoke"].origin == "user"
    assert by_name["smoke"].description == "my own smoke"
    assert by_name["sin"].origin == "shipped"  # the others are still there
    assert set(by_name) >= SHIPPED | {"extra"}
    assert load_config(resolve_preset("smoke")).description == "my own smoke"


def test_override_of_a_string_field_keeps_the_text(tmp_path: Path) -> None:
    cfg = load_config(
        shipped_presets_dir() / "smoke.toml", ["target.kind=expression", "target.expression=1", "name=2024"]
    )
    assert cfg.target.expression == "1" and cfg.name == "2024"


def test_saved_user_preset_is_listed_and_loads_back_under_its_slug(_isolated_presets: Path) -> None:
    cfg = load_config(resolve_preset("smoke"), ["training.lr=0.02"])
    path = save_user_preset(cfg, "my sweep / v2")
    assert path == _isolated_presets / "my-sweep-v2.toml"
    assert {p.name: p.origin for p in list_presets()}["my-sweep-v2"] == "user"
    loaded = load_config(resolve_preset("my-sweep-v2"))
    assert loaded.name == "my-sweep-v2" and loaded.training.lr == 0.02
    assert dataclasses.replace(loaded, name=cfg.name) == cfg


def test_a_preset_name_without_letters_or_digits_is_refused_and_nothing_written(_isolated_presets: Path) -> None:
    with pytest.raises(ValueError, match="a preset name needs letters or digits"):
        save_user_preset(smoke := load_config(resolve_preset("smoke")), " /// ")
    assert not _isolated_presets.exists() or not any(_isolated_presets.iterdir())
    assert smoke.name == "smoke"


# --- each field declared once ---------------------------------------------------------------------------


def test_readme_config_block_is_what_scaletui_config_prints() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    block = readme.split("## The config", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    assert block == reference_toml()
    printed = run_cli("config")
    assert printed.returncode == 0 and printed.stdout == reference_toml()


def test_the_reference_is_a_valid_document_of_the_defaults() -> None:
    raw = parse_toml(reference_toml(), "reference")
    raw["model"]["widths"] = [2, 4]  # the one field without a usable default
    assert config_from_dict(raw) == dataclasses.replace(
        Config(), model=dataclasses.replace(Config().model, widths=(2, 4))
    )


def test_every_field_is_documented_and_every_choice_field_lists_its_choices() -> None:
    docs = field_docs()
    assert all(doc.strip() for doc in docs.values())
    assert set(docs) >= {"device", "training.lr", "execution.checkpoint_seconds", "target.teacher_bias_std"}
    choices = field_choices()
    assert choices["model.activation"] == ACTIVATIONS and choices["target.name"] == BUILTIN_NAMES
    assert "training.lr" not in choices


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("model.hidden_layers", "65", "model.hidden_layers: must be between 1 and 64, got 65"),
        ("seeds.count", "0", "seeds.count: must be between 1 and 100000, got 0"),
        ("training.dtype", '"float16"', "training.dtype: must be one of float32, float64; got 'float16'"),
    ],
)
def test_declared_ranges_and_choices_are_enforced_naming_the_field(key: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(resolve_preset("smoke"), [f"{key}={value}"])


def test_a_type_the_reader_does_not_know_is_a_schema_error_naming_the_field() -> None:
    @dataclasses.dataclass(frozen=True)
    class Odd:
        when: complex = 0j

    with pytest.raises(TypeError, match=r"odd\.when: the schema declares"):
        config_module._build(Odd, {"when": 1}, "odd")
