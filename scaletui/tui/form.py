"""The experiment form: one field for every field of the config schema, generated from it.

Because the form is built from the dataclasses in :mod:`scaletui.config`, a field added to the schema
appears here without further work. Values are read as TOML (``[2, 4, 8]``, ``3e-3``), validated by the
same ``config_from_dict`` that checks presets, and an error is shown under the field it names.
"""

from __future__ import annotations

import tomllib
from dataclasses import fields
from typing import Any

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Input, Label, Select, Static, Switch

from scaletui.config import (
    ACTIVATIONS,
    BUILTIN_NAMES,
    DEVICES,
    DTYPES,
    INITS,
    OPTIMIZERS,
    SCHEDULES,
    SECTIONS,
    TARGET_KINDS,
    Config,
    ConfigError,
    config_from_dict,
    config_to_dict,
)

CHOICES: dict[str, tuple[str, ...]] = {
    "device": DEVICES,
    "target.kind": TARGET_KINDS,
    "target.name": BUILTIN_NAMES,
    "model.activation": ACTIVATIONS,
    "model.init": INITS,
    "training.optimizer": OPTIMIZERS,
    "training.schedule": SCHEDULES,
    "training.dtype": DTYPES,
}
TOP_LEVEL = (("name", "str"), ("description", "str"), ("device", "str"))
WIDTH_RANGE = ("width_min", "width_max", "width_count")
HINTS = {
    "target.expression": "formula in x or x0..x{d-1}, e.g. x**2 + sin(3*x)",
    "target.domain": "[low, high]",
    "model.widths": "[2, 4, 8] — or leave empty and give min/max/count",
    "training.batch_size": "0 = full batch",
    "target.intrinsic_dim": "teacher: coordinates that vary",
}


def field_paths() -> list[tuple[str, str]]:
    """(path, declared type) of every config field, in schema order."""
    paths = list(TOP_LEVEL)
    for section, cls in SECTIONS.items():
        paths += [(f"{section}.{f.name}", str(f.type)) for f in fields(cls)]
    return paths


def widget_id(path: str) -> str:
    return "f-" + path.replace(".", "-").replace("_", "-")


def _text(value: Any) -> str:
    """A config value as the user types it (TOML syntax, strings bare)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    return repr(value) if isinstance(value, float) else str(value)


def _parse(text: str, declared: str) -> Any:
    if declared == "str":
        return text
    try:
        return tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        return text.strip()  # let validation name the field and say what was expected


class ConfigForm(VerticalScroll):
    """Every field of the schema, grouped by section, with inline errors."""

    DEFAULT_CSS = """
    ConfigForm { height: 1fr; padding: 0 1; }
    ConfigForm .section { text-style: bold; color: $accent; margin-top: 1; border-bottom: solid $accent-darken-2; }
    ConfigForm Label { color: $text-muted; }
    ConfigForm Input, ConfigForm Select { width: 100%; }
    ConfigForm .error { color: $error; height: auto; }
    """

    def compose(self) -> ComposeResult:
        # Flat and lean on purpose: every widget here is laid out again whenever the form is shown or hidden.
        current_section = None
        for path, declared in field_paths():
            section = path.split(".")[0] if "." in path else "experiment"
            if section != current_section:
                current_section = section
                yield Static(section, classes="section")
            yield Label(path.split(".")[-1].replace("_", " "))
            wid = widget_id(path)
            if path in CHOICES:
                yield Select([(c, c) for c in CHOICES[path]], id=wid, allow_blank=False, compact=True)
            elif declared == "bool":
                yield Switch(id=wid)
            else:
                yield Input(id=wid, placeholder=HINTS.get(path, ""), compact=True, tooltip=HINTS.get(path))

    def load(self, cfg: Config) -> None:
        """Show a config in the form (widths as an explicit list)."""
        data = config_to_dict(cfg)
        for path, _ in field_paths():
            section, _, name = path.rpartition(".")
            value = data[section].get(name, 0) if section else data[name]
            widget = self.query_one(f"#{widget_id(path)}")
            if isinstance(widget, Select):
                widget.value = value
            elif isinstance(widget, Switch):
                widget.value = bool(value)
            elif isinstance(widget, Input):
                widget.value = "" if name in WIDTH_RANGE else _text(value)
        self.clear_errors()

    def raw(self) -> dict[str, Any]:
        """The form as a TOML-like document: empty inputs are left out so defaults apply."""
        raw: dict[str, Any] = {section: {} for section in SECTIONS}
        for path, declared in field_paths():
            widget = self.query_one(f"#{widget_id(path)}")
            section, _, name = path.rpartition(".")
            table = raw[section] if section else raw
            if isinstance(widget, (Select, Switch)):
                table[name] = widget.value
            elif isinstance(widget, Input) and widget.value.strip():
                table[name] = _parse(widget.value, declared)
        model = raw["model"]
        if all(model.get(k) for k in WIDTH_RANGE):  # a full range given: it wins over a width list
            model.pop("widths", None)
        return raw

    def validated(self) -> Config | None:
        """The config, or None after showing the error under the field it names."""
        self.clear_errors()
        try:
            return config_from_dict(self.raw())
        except ConfigError as exc:
            self.show_error(exc.where, exc.problem)
            return None

    def show_error(self, where: str, problem: str) -> None:
        """Put the problem right under the field it names (or under the name for whole-config problems)."""
        path = where.split("[")[0]
        known = {p for p, _ in field_paths()}
        target = path if path in known else "name"
        field = self.query_one(f"#{widget_id(target)}")
        text = problem if target == path else f"{where}: {problem}"
        self.mount(Static(text, id=f"{widget_id(target)}-error", classes="error"), after=field)
        field.focus()

    def clear_errors(self) -> None:
        for error in self.query(".error"):
            error.remove()
