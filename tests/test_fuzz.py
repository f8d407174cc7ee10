"""Property-based tests: no preset or formula, however malformed, escapes as anything but a one-line refusal."""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaletui.config import SECTIONS, Config, ConfigError, config_from_dict, config_to_toml, load_config, parse_toml
from tests.conftest import report_reliability

EXAMPLES = 400
ACCEPTED: list[Config] = []

scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(["square", "sin", "silu", "relu", "adam", "cosine", "float64", "cpu", "x**2", "teacher"]),
)
values = st.one_of(scalars, st.lists(scalars, max_size=4), st.dictionaries(st.text(max_size=8), scalars, max_size=3))


BASE = parse_toml((Path(__file__).resolve().parent.parent / "presets" / "smoke.toml").read_text(), "smoke.toml")
plausible = st.sampled_from([0, 1, 2, 3, 8, 64, 1000, -1, 0.5, 1e-3, 2.0, True, "", [1, 2], [-2.0, 2.0], "float64"])


@st.composite
def raw_configs(draw) -> dict:
    """A valid preset with a few keys deleted, replaced (by plausible or wild values) or added."""
    import copy

    raw = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(0, 3))):
        section = draw(st.sampled_from([None, *SECTIONS]))
        table = raw if section is None else raw.setdefault(section, {})
        names = ["name", "description", "device"] if section is None else [f.name for f in fields(SECTIONS[section])]
        key = draw(st.sampled_from([*names, "stray"]))
        action = draw(st.sampled_from(["plausible", "wild", "delete"]))
        if action == "delete":
            table.pop(key, None)
        else:
            table[key] = draw(plausible if action == "plausible" else values)
    return raw


def _accepted_or_refused(raw: dict) -> Config | None:
    try:
        cfg = config_from_dict(raw, "fuzz.toml")
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith("fuzz.toml: ") and "\n" not in message.replace("\\n", "")
        return None
    assert isinstance(cfg, Config)
    return cfg


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw_configs())
def test_any_preset_document_is_accepted_or_refused_in_one_line(raw):
    cfg = _accepted_or_refused(raw)
    if cfg is not None:  # what is accepted saves and reloads to the same config
        assert config_from_dict(parse_toml(config_to_toml(cfg), "saved.toml")) == cfg
        ACCEPTED.append(cfg)


def test_the_document_fuzzer_reaches_valid_configs_too():
    assert len(ACCEPTED) >= 5  # otherwise the round-trip branch above never ran


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=300))
def test_any_preset_text_is_accepted_or_refused(tmp_path: Path, text: str):
    path = tmp_path / "preset.toml"
    path.write_text(text, encoding="utf-8")
    before = sorted(os.listdir(tmp_path))
    try:
        load_config(path)
    except ConfigError as exc:
        assert str(exc).startswith(str(path))
    assert sorted(os.listdir(tmp_path)) == before  # loading writes nothing
    report_reliability(
        "hostile and malformed presets (hypothesis: structured documents and raw text)",
        f"{2 * EXAMPLES} generated inputs",
        "each accepted (and saved/reloaded unchanged) or refused with a one-line ConfigError; no file written",
        "–",
    )
