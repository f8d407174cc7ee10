"""The experiment form: one field for every field of the config schema, generated from it.

Because the form is built from the dataclasses in :mod:`scaletui.config`, a field added to the schema
appears here without further work. Values are read as TOML (``[2, 4, 8]``, ``3e-3``), validated by the
same ``config_from_dict`` that checks presets, and an error is shown under the field it names.
"""

from __future__ import annotations

import textwrap
from dataclasses import fields
from typing import Any

from rich.segment import Segment
from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Input, Static

from scaletui.config import (
    SECTIONS,
    Config,
    ConfigError,
    config_from_dict,
    config_to_dict,
    declared_types,
    field_choices,
    field_docs,
    typed_value,
)
from scaletui.tui.textual_patches import SteadyScrollbars

CHOICES: dict[str, tuple[str, ...]] = field_choices()  # the config's Literal types, and target.name's list
HINTS: dict[str, str] = field_docs()  # each field's one line of documentation, declared beside it
WIDTH_RANGE = ("width_min", "width_max", "width_count")
SIZE_RANGE = ("n_train_min", "n_train_max", "n_train_count")  # data sizes, given the same two ways


def field_paths() -> list[tuple[str, Any]]:
    """(path, resolved type) of every config field, in schema order."""
    paths = [(f.name, declared_types(Config)[f.name]) for f in fields(Config) if f.name not in SECTIONS]
    for section, cls in SECTIONS.items():
        types = declared_types(cls)
        paths += [(f"{section}.{f.name}", types[f.name]) for f in fields(cls)]
    return paths


def _text(value: Any) -> str:
    """A config value as the user types it (TOML syntax, strings bare)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    return repr(value) if isinstance(value, float) else str(value)


def _parse(path: str, text: str, declared: Any) -> Any:
    """A field's text as the config reads it: free text exactly as typed (the form has no quotes to strip; a
    name picked from a list without its stray spaces), anything else as ``--set`` reads it."""
    if declared is str:
        return text.strip() if path in CHOICES else text
    return typed_value(path, text, declared)


class FieldList(SteadyScrollbars, ScrollView, can_focus=False):
    """The fields, one line each under their section's heading, the current one highlighted; a click picks one.

    Never focused: the editor below it has the keys, so tab and shift+tab leave the form instead of stopping
    here. One widget however many fields the schema has: a widget per field would make every layout of the screen
    (each tab switch, each time the form is shown) walk a hundred more widgets, and showing the form paint them.
    """

    COMPONENT_CLASSES = {"field-list--section", "field-list--label", "field-list--current", "field-list--error"}
    DEFAULT_CSS = """
    FieldList { height: 1fr; overflow-x: hidden; }
    FieldList > .field-list--section { color: $accent; text-style: bold; }
    FieldList > .field-list--label { color: $text-muted; }
    FieldList > .field-list--current { background: $accent 30%; }
    FieldList > .field-list--error { color: $error; }
    """

    class FieldClicked(Message):
        """A field's line (or the error under it) was clicked."""

        def __init__(self, path: str) -> None:
            super().__init__()
            self.path = path

    def __init__(self, texts: dict[str, str], errors: dict[str, str], id: str | None = None) -> None:
        super().__init__(id=id)
        self.texts = texts
        self.errors = errors
        self.current = field_paths()[0][0]
        self.label_width = max(len(_label(path)) for path, _ in field_paths())
        self.rows: list[tuple[str, str]] = []
        self.wrapped_for = 0  # the width the errors were wrapped to
        self.rebuild()

    def rebuild(self) -> None:
        """Lay the lines out again: ("section", name), ("field", path), and under a bad field its error, whole,
        one ("error", line) per wrapped line: an error cut at the edge hides what to type instead."""
        rows: list[tuple[str, str]] = []
        current_section = None
        self.wrapped_for = self.scrollable_content_region.width or 36  # before the first layout: the form's width
        for path, _ in field_paths():
            section = path.split(".")[0] if "." in path else "experiment"
            if section != current_section:
                current_section = section
                rows.append(("section", section))
            rows.append(("field", path))
            if path in self.errors:
                lines = textwrap.wrap(self.errors[path], max(self.wrapped_for - 4, 10))
                rows += [("error", f"{'✗' if i == 0 else ' '} {line}") for i, line in enumerate(lines)]
        self.rows = rows
        self.virtual_size = Size(0, len(rows))
        self.refresh()

    def row_of(self, path: str) -> int:
        return self.rows.index(("field", path))

    def refresh_field(self, path: str) -> None:
        self.refresh_line(self.row_of(path))

    def scroll_to_current(self) -> None:
        """Keep the current field in view, with its section heading above it and its error below."""
        row = self.row_of(self.current)
        lines = 2
        while row - 1 + lines < len(self.rows) and self.rows[row - 1 + lines][0] == "error":
            lines += 1
        self.scroll_to_region(Region(0, max(row - 1, 0), 1, lines), animate=False, immediate=True)

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        index = self.scroll_offset.y + y
        base = self.rich_style
        if index >= len(self.rows):
            return Strip.blank(width, base)
        kind, key = self.rows[index]
        if kind == "section":
            style = base + self.get_component_rich_style("field-list--section")
            return Strip([Segment(f"── {key} ".ljust(width, "─"), style)]).adjust_cell_length(width, style)
        if kind == "error":
            style = base + self.get_component_rich_style("field-list--error")
            return Strip([Segment(_fit(f"  {key}", width), style)]).adjust_cell_length(width, style)
        if key == self.current:
            base += self.get_component_rich_style("field-list--current")
        label = " " + _label(key).ljust(self.label_width) + " "
        segments = [
            Segment(label, base + self.get_component_rich_style("field-list--label")),
            Segment(_fit(self.texts.get(key, ""), width - len(label)), base),
        ]
        return Strip(segments).adjust_cell_length(width, base)

    def on_resize(self) -> None:
        if self.errors and self.scrollable_content_region.width != self.wrapped_for:
            self.rebuild()

    def on_click(self, event: events.Click) -> None:
        index = event.y + self.scroll_offset.y
        fields = [i for i, (kind, _) in enumerate(self.rows[: index + 1]) if kind == "field"]
        if 0 <= index < len(self.rows) and self.rows[index][0] != "section" and fields:
            self.post_message(self.FieldClicked(self.rows[fields[-1]][1]))  # an error line picks its field


class FieldEditor(Input):
    """The form's one text field. It never takes `?`: no config value needs one, and `?` opens the help from
    every screen, which it could not while the form (focused whenever the explorer shows it) typed it."""

    # Never a scrollbar (Input's is 0 cells wide): with overflow-x auto, a value longer than the editor, put
    # in it by moving to another field, flipped whether a scrollbar "shows", a second layout of the screen
    # in the layout of the move (measured: 2 layouts and 2 frames, 30–50 ms at 160×48, for one move in 3).
    # The editor still scrolls to its cursor (Input scrolls with force).
    DEFAULT_CSS = "FieldEditor { overflow-x: hidden; }"

    def check_consume_key(self, key: str, character: str | None) -> bool:
        return character != "?" and super().check_consume_key(key, character)

    def _on_key(self, event: events.Key) -> None:
        # Textual calls each class's handler in turn: preventing the default skips Input's, which would type it.
        if event.character == "?":
            event.prevent_default()


class ConfigForm(Vertical):
    """Every field of the schema, grouped by section, with inline errors: a list of the fields and one editor.

    The editor holds the current field: typing changes it, ↑/↓ (tab, enter) move to another field, ←/→ step
    through the choices of a field that has them (true/false for a switch). A click on a line picks that field.
    """

    BINDINGS = [
        Binding("up", "move(-1)", "Previous field", show=False),
        Binding("down", "move(1)", "Next field", show=False),
        Binding("pageup", "move(-10)", "Fields up", show=False),
        Binding("pagedown", "move(10)", "Fields down", show=False),
        Binding("tab", "step(1)", "Next field", show=False),
        Binding("shift+tab", "step(-1)", "Previous field", show=False),
    ]

    DEFAULT_CSS = """
    ConfigForm { height: 1fr; padding: 0 1; }
    ConfigForm #field-help { height: auto; min-height: 3; max-height: 9; color: $text-muted; }
    ConfigForm #field-editor { width: 100%; }
    """

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.declared = dict(field_paths())
        self.texts: dict[str, str] = dict.fromkeys(self.declared, "")
        self.errors: dict[str, str] = {}
        self.help_tall = False
        self.loaded: dict[str, str] = {}  # the texts as last loaded (a preset or a run's config)
        self.fields = FieldList(self.texts, self.errors, id="field-list")

    def compose(self) -> ComposeResult:
        yield self.fields
        yield Static(id="field-help")
        yield FieldEditor(id="field-editor", compact=True)

    def on_mount(self) -> None:
        self.show_current()

    @property
    def current(self) -> str:
        """The path of the field in the editor."""
        return self.fields.current

    @property
    def editor(self) -> Input:
        return self.query_one("#field-editor", Input)

    def choices(self, path: str) -> tuple[str, ...]:
        return CHOICES.get(path) or (("true", "false") if self.declared[path] is bool else ())

    def commit(self) -> None:
        """Take the editor's text as the current field's: the editor holds it from the first key typed."""
        if self.texts[self.current] != self.editor.value:
            self.texts[self.current] = self.editor.value
            self.fields.refresh_field(self.current)
            self.retarget()

    def retarget(self) -> None:
        """A loaded description describes the loaded target: once the target changes it no longer does, so it
        is cleared rather than saved with a run of something else."""
        description = self.texts["description"]
        kept = bool(description) and description == self.loaded.get("description")
        if kept and any(self.texts[p] != self.loaded.get(p) for p in self.declared if p.startswith("target.")):
            self.texts["description"] = ""
            self.fields.refresh_field("description")

    def select(self, path: str) -> None:
        """Make a field the current one: highlighted in the list, its text in the editor."""
        self.commit()
        previous, self.fields.current = self.fields.current, path
        self.fields.refresh_field(previous)
        self.show_current()

    def show_current(self) -> None:
        """Put the current field in view, its text in the editor and its hint, choices or error above."""
        path = self.current
        self.fields.refresh_field(path)
        self.fields.scroll_to_current()
        editor = self.editor
        editor.placeholder = HINTS.get(path, "")
        with editor.prevent(Input.Changed):
            editor.value = self.texts[path]
        editor.cursor_position = len(editor.value)
        self.show_help()

    def show_help(self) -> None:
        path = self.current
        choices = self.choices(path)
        if choices:
            text = self.texts[path].strip()
            hint = Text("←/→ ").append_text(Text(" · ").join(Text(c, "bold" if c == text else "") for c in choices))
        else:
            hint = Text(HINTS.get(path, ""))
        if path in self.errors:
            hint = Text(self.errors[path], style="bold red")
        # Its height follows an error's length; without one it keeps its three lines and needs no layout.
        was_tall, self.help_tall = self.help_tall, path in self.errors
        help_text = Text.assemble((path, "bold"), "\n", hint)
        self.query_one("#field-help", Static).update(help_text, layout=was_tall or self.help_tall)

    def action_move(self, by: int) -> None:
        paths = list(self.declared)
        index = min(max(paths.index(self.current) + by, 0), len(paths) - 1)
        self.select(paths[index])

    def action_step(self, by: int) -> None:
        """Tab moves through the fields and, past the last (or before the first), out of the form."""
        paths = list(self.declared)
        index = paths.index(self.current) + by
        if 0 <= index < len(paths):
            self.select(paths[index])
        elif by > 0:
            self.screen.focus_next()
        else:
            self.screen.focus_previous()

    def on_key(self, event: events.Key) -> None:
        """←/→ step through the current field's choices, if it has any (otherwise they move the text cursor)."""
        choices = self.choices(self.current)
        if event.key in ("left", "right") and choices:
            event.stop()
            event.prevent_default()
            self.commit()
            text = self.texts[self.current].strip()
            index = choices.index(text) if text in choices else -1
            self.set_text(self.current, choices[(index + (1 if event.key == "right" else -1)) % len(choices)])

    @on(Input.Changed, "#field-editor")
    def edited(self, event: Input.Changed) -> None:
        event.stop()
        if event.value == self.editor.value:  # not a late word about a field since left
            self.commit()
            if self.choices(self.current):
                self.show_help()

    @on(Input.Submitted, "#field-editor")
    def submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_move(1)

    @on(FieldList.FieldClicked)
    def clicked(self, event: FieldList.FieldClicked) -> None:
        self.select(event.path)
        self.editor.focus()

    def set_text(self, path: str, text: str) -> None:
        """Put text in a field, as if typed there."""
        self.texts[path] = text
        self.fields.refresh_field(path)
        self.retarget()
        if path == self.current:
            self.show_current()

    def load(self, cfg: Config) -> None:
        """Show a config in the form (widths as an explicit list)."""
        data = config_to_dict(cfg)
        for path in self.declared:
            section, _, name = path.rpartition(".")
            value = data[section].get(name, 0) if section else data[name]
            self.texts[path] = "" if name in WIDTH_RANGE or name in SIZE_RANGE else _text(value)
        self.loaded = dict(self.texts)
        self.clear_errors()
        self.fields.refresh()  # every line changed, not only the current field's
        self.show_current()

    def raw(self) -> dict[str, Any]:
        """The form as a TOML-like document. An empty field is sent as typed (validation then names it), never
        dropped for its default: the form would show a blank while the run used a value nobody sees. Only the
        two ways of giving widths, and of giving data sizes (a list, or min/max/count), may be left empty,
        since one of each is."""
        self.commit()
        raw: dict[str, Any] = {section: {} for section in SECTIONS}
        for path, declared in self.declared.items():
            section, _, name = path.rpartition(".")
            table = raw[section] if section else raw
            text = self.texts[path]
            if text.strip():
                table[name] = _parse(path, text, declared)
            elif not (
                (section == "model" and (name in WIDTH_RANGE or name == "widths"))
                or (section == "data" and (name in SIZE_RANGE or name == "n_train"))
            ):
                table[name] = ""
        model, data = raw["model"], raw["data"]
        if all(model.get(k) for k in WIDTH_RANGE):  # a full range given: it wins over a width list
            model.pop("widths", None)
        if all(data.get(k) for k in SIZE_RANGE):  # likewise for data sizes
            data.pop("n_train", None)
        return raw

    def validated(self) -> Config | None:
        """The config, or None after showing every error under the field it names.

        Validation stops at the first problem, so each field it names is set aside (its default stands in) and
        the rest validated again: a user who fixes one error should not find the next only on the next try.
        """
        self.clear_errors()
        raw = self.raw()
        problems: dict[str, str] = {}
        while True:
            try:
                cfg = config_from_dict(raw)
            except ConfigError as exc:
                path = exc.where.split("[")[0]
                section, _, name = path.rpartition(".")
                table = raw.get(section, {}) if section else raw
                if path not in self.declared or path in problems or name not in table:
                    problems.setdefault(path, exc.problem)
                    break
                problems[path] = exc.problem
                del table[name]
            else:
                if not problems:
                    return cfg
                break
        self.show_errors(problems)
        return None

    def show_error(self, where: str, problem: str) -> None:
        """Put the problem right under the field it names (or under the name for whole-config problems)."""
        self.show_errors({where: problem})

    def show_errors(self, problems: dict[str, str]) -> None:
        """Each problem under the field it names (under the name for whole-config ones); the first is current."""
        first = None
        for where, problem in problems.items():
            path = where.split("[")[0]
            target = path if path in self.declared else "name"
            self.errors[target] = problem if target == path else f"{where}: {problem}"
            first = first or target
        self.fields.rebuild()
        if first is not None:
            self.select(first)
        self.editor.focus()

    def clear_errors(self) -> None:
        if self.errors:
            self.errors.clear()
            self.fields.rebuild()
            self.show_help()


def _label(path: str) -> str:
    return path.split(".")[-1].replace("_", " ")


def _fit(text: str, width: int) -> str:
    """One line of at most ``width`` characters, cut with an ellipsis."""
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"
