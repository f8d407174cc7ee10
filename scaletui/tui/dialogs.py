"""Small modal dialogs shared by the screens: confirm, prompt, choose-and-prompt, and the help overlay.

Every dialog is keyboard-first: the first field (or the OK button) has focus, enter answers, escape
cancels. Titles are shown as plain text, so run names with brackets are never read as markup.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import TypeVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from textual.widgets import Button, Checkbox, Input, Select, Static

from scaletui.analysis import AGGREGATES, FitOptions
from scaletui.grid import axis_of

ResultType = TypeVar("ResultType")


def box_css(screen: str, width: int, border: str = "round $accent") -> str:
    """The centred, bordered box every modal screen here draws its content in (a warning gets its own border)."""
    return f"""
    {screen} {{ align: center middle; }}
    {screen} #box {{
        width: {width}; max-width: 95%; height: auto; max-height: 90%;
        border: {border}; background: $panel; padding: 0 1;
    }}
    """


class Dialog(ModalScreen[ResultType]):
    """The frame all dialogs share: a small centred box with a heading, fields, and OK/Cancel buttons."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    DEFAULT_CSS = (
        box_css("Dialog", 64)
        + """
    Dialog #heading {
        margin: 0 0 1 0;
    }
    Dialog Input, Dialog Select {
        margin: 0 0 1 0;
    }
    Dialog #range { height: auto; }
    Dialog #range Input { width: 1fr; margin: 0 1 1 0; }
    Dialog Checkbox { border: none; padding: 0; }
    Dialog #buttons {
        height: auto;
        align-horizontal: right;
    }
    Dialog #buttons Button {
        margin-left: 1;
        min-width: 10;
    }
    """
    )

    def __init__(self, heading: str, cancelled: ResultType, confirm_label: str = "OK") -> None:
        super().__init__()
        self.heading = heading
        self.cancelled = cancelled
        self.confirm_label = confirm_label
        self.cancel_label = "Cancel (esc)"

    def compose(self) -> ComposeResult:
        with Vertical(id="box"):
            yield Static(Text(self.heading), id="heading")
            yield from self.fields()
            with Horizontal(id="buttons"):
                yield Button(self.confirm_label, variant="primary", id="ok")
                yield Button(self.cancel_label, id="cancel")

    def fields(self) -> Iterable[Widget]:
        """The widgets between the heading and the buttons; none by default."""
        return ()

    def answer(self) -> ResultType:
        """The result of confirming the dialog."""
        raise NotImplementedError

    def first_focus(self) -> Widget:
        """What has focus when the dialog opens: the first text field, or the OK button."""
        inputs = self.query(Input)
        return inputs.first() if inputs else self.query_one("#ok", Button)

    def on_mount(self) -> None:
        self.first_focus().focus()

    @on(Button.Pressed, "#ok")
    @on(Input.Submitted)
    def action_confirm(self) -> None:
        self.dismiss(self.answer())

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(self.cancelled)


class ConfirmDialog(Dialog[bool]):
    """Ask a yes/no question before something that cannot be undone: `y` (or tab to the button and enter)
    confirms; Cancel has focus, so an enter pressed out of habit undoes nothing."""

    BINDINGS = [Binding("y", "confirm", "Yes", show=False), Binding("n", "cancel", "No", show=False)]

    def __init__(self, question: str, confirm_label: str = "OK") -> None:
        super().__init__(question, cancelled=False, confirm_label=f"{confirm_label} (y)")

    def first_focus(self) -> Widget:
        return self.query_one("#cancel", Button)

    def answer(self) -> bool:
        return True


class PromptDialog(Dialog[str | None]):
    """Ask for one line of text (a name, a path); None when cancelled."""

    def __init__(self, heading: str, value: str = "", confirm_label: str = "OK") -> None:
        super().__init__(heading, cancelled=None, confirm_label=confirm_label)
        self.value = value

    def fields(self) -> Iterable[Input]:
        yield Input(self.value, select_on_focus=False, id="text")

    def answer(self) -> str | None:
        return self.query_one("#text", Input).value


class ChoiceDialog(Dialog[tuple[str, str] | None]):
    """Pick one of a few options and give a line of text, e.g. an export format and a file path.

    ``suggest`` proposes the text for an option; picking another option replaces the text only while the
    user has not edited it, so a typed path is never lost. The choice has focus first; after a pick, focus
    moves to the text so that enter confirms.
    """

    def __init__(
        self,
        heading: str,
        choices: Sequence[str],
        choice: str,
        suggest: Callable[[str], str],
        confirm_label: str = "OK",
    ) -> None:
        super().__init__(heading, cancelled=None, confirm_label=confirm_label)
        self.choices = choices
        self.choice = choice
        self.suggest = suggest
        self.suggested = suggest(choice)

    def fields(self) -> Iterable[Select[str] | Input]:
        yield Select([(c, c) for c in self.choices], value=self.choice, allow_blank=False, id="choice")
        yield Input(self.suggested, select_on_focus=False, id="text")

    def first_focus(self) -> Widget:
        # The choice first: enter on it opens its list, as on any selector; enter on the text then confirms.
        return self.query_one("#choice", Select)

    def on_mount(self) -> None:
        self.watch(self.query_one("#choice", Select), "expanded", self.list_toggled, init=False)

    def list_toggled(self, expanded: bool) -> None:
        if not expanded:  # picked (the same option too) or dismissed: on to the text, where enter confirms
            self.query_one("#text", Input).focus()

    @on(Select.Changed, "#choice")
    def choice_changed(self, event: Select.Changed) -> None:
        text = self.query_one("#text", Input)
        if text.value == self.suggested:
            text.value = self.suggested = self.suggest(str(event.value))

    def answer(self) -> tuple[str, str] | None:
        return str(self.query_one("#choice", Select).value), self.query_one("#text", Input).value


X_NAMES = {"params": "N (parameters)", "data": "data size D", "depth": "depth"}


class OptionBox(Checkbox, inherit_bindings=False):
    """A checkbox in a dialog where enter applies: space toggles it (Textual's toggles on enter too, so an
    enter meant to apply turned the box under the cursor over instead). Unticked, its box is empty: on
    and off differ without colour, in a snapshot or a monochrome terminal."""

    BINDINGS = [Binding("space", "toggle_button", "Toggle", show=False)]

    def on_mount(self) -> None:
        self.watch(self, "value", self.show_value)

    def show_value(self, value: bool) -> None:
        self.BUTTON_INNER = "X" if value else " "
        self.refresh()


class FitDialog(Dialog[FitOptions | None]):
    """The fit controls: the options `scaletui fit` takes, for the explorer's α line, plots and export."""

    BINDINGS = [Binding("enter", "confirm", "Apply", show=False)]  # from a checkbox: the fields take their own

    def __init__(self, options: FitOptions, x_choices: tuple[str, ...] = ("params", "width")) -> None:
        super().__init__(
            "Fit options (as `scaletui fit`): space ticks, enter applies",
            cancelled=None,
            confirm_label="Apply",
        )
        self.options = options
        self.x_choices = x_choices  # what `--x` may say for this run: data and depth where it sweeps them

    def fields(self) -> Iterable[Widget]:
        # Compact fields, one line each: the whole dialog fits a 24-line terminal.
        o = self.options
        yield Static("widths from … to … (empty: all)")
        with Horizontal(id="range"):
            low, high = ("" if w is None else str(w) for w in (o.min_width, o.max_width))
            yield Input(low, placeholder="min", type="integer", id="min", compact=True)
            yield Input(high, placeholder="max", type="integer", id="max", compact=True)
        current = o.axis if o.axis != "width" else o.x_axis
        choices = [(f"x axis: {X_NAMES.get(x, x)}", x) for x in self.x_choices]
        yield Select(choices, value=current, allow_blank=False, id="x", compact=True)
        aggregates = [(f"aggregate: {a}", a) for a in AGGREGATES]
        yield Select(aggregates, value=o.aggregate, allow_blank=False, id="aggregate", compact=True)
        yield OptionBox("offset: L = L∞ + k·x^-α", o.offset, id="offset", compact=True)
        yield OptionBox("robust: Huber loss on log residuals", o.robust, id="robust", compact=True)
        yield OptionBox("exclude models still falling at the end", o.exclude_unconverged, id="exclude", compact=True)

    def answer(self) -> FitOptions | None:
        low, high = (self.query_one(f"#{name}", Input).value.strip() for name in ("min", "max"))
        min_width, max_width = (int(v) if v else None for v in (low, high))
        if min_width is not None and max_width is not None and min_width > max_width:
            self.notify(f"min width {min_width} is above max width {max_width}", severity="error")
            return self.options
        axis, x_axis = axis_of(str(self.query_one("#x", Select).value))
        return replace(
            self.options,
            min_width=min_width,
            max_width=max_width,
            axis=axis,
            x_axis=x_axis,
            aggregate=str(self.query_one("#aggregate", Select).value),
            offset=self.query_one("#offset", Checkbox).value,
            robust=self.query_one("#robust", Checkbox).value,
            exclude_unconverged=self.query_one("#exclude", Checkbox).value,
        )


PANELS = """\
Runs: every run directory in the runs folder, re-read from disk every second, so a run started from \
the CLI or another terminal appears by itself. Mark runs with space to compare, export or delete several; \
s sorts, / filters.
Explorer: one run. The experiment form on the left (ctrl+o: presets); on the right the sweep as it trains: \
test loss vs N with the fitted law (F1), output variance across seeds (F2), loss curves (F3), the per-width \
table (F4), the event log (F5), the budget: loss vs step and α(step) with its CI and whether they \
settled (F7), and the local slopes between neighbouring widths with their verdict (F8); a click on a \
panel's name shows it too. ctrl+g: the fit options; ctrl+x: the x axis (N, width, and data size or depth \
in a run that sweeps them: one line per value of the other coordinates, ctrl+n picks the one the table and \
α show); F9: the machine's load, the runner and the GPUs. ctrl+r runs the form; ctrl+t stops a live run \
(each width in training saves its step), ctrl+e resumes a stopped one from there. In the \
form, ↑/↓ (or tab, enter, a click) pick a field, typing edits it, ←/→ step through its choices or flip \
true/false.
Compare: the median test loss vs N of several runs on one log–log plot, each with its fitted α and \
95% bootstrap CI.
Tickets (F6 in the explorer): one model's hidden neurons as (w, b) points, its mirror pairs (w, b) and \
(−w, b) with what each pair adds to the output, and k averaged nets of width w against one net of \
width k·w. Arrows change width and seed.
Seeds (F10 in the explorer): each width's seeds as a strip (quantiles, best of k, the lucky and unlucky \
tails with Hill's index), the median fit and how the spread scales; u switches between log10 loss, loss \
and rank.
Everywhere: ? this help, ctrl+p the palette (every key as a command), f12 saves the screen as SVG."""


def screen_keys(screen: Screen[object]) -> list[tuple[str, str, object, str]]:
    """Every key a screen answers to, as (keys, description, namespace, action), keys of one action joined.

    Generated from the bindings, so the help and the command palette list exactly what the keys do: the
    screen's, then those of scaletui's own widgets that have focus (the form's ↑/↓), then the app's; hidden
    from the footer or not. Not Textual's own keys (a text field's editing keys, a scroll view's arrows), and
    read from the declarations rather than the active bindings, where a focused scroll view's arrows hide the
    tickets screen's.
    """
    focused = screen.focused
    # A focused widget's ancestors end with the screen and the app, which the chain names once each.
    widgets = [node for node in focused.ancestors_with_self if node not in (screen, screen.app)] if focused else []
    chain: list[object] = [screen, *(w for w in widgets if type(w).__module__.startswith("scaletui.")), screen.app]
    grouped: dict[tuple[str, str], tuple[list[str], object]] = {}
    for namespace in chain:
        for binding in Binding.make_bindings(type(namespace).BINDINGS):
            if binding.description and (
                namespace is not screen.app or type(namespace).__module__.startswith("scaletui.")
            ):
                keys, _ = grouped.setdefault((binding.action, binding.description), ([], namespace))
                key = screen.app.get_key_display(binding)
                if key not in keys:  # one action bound to one key in two places (a widget and its screen)
                    keys.append(key)
    return [
        (" / ".join(keys), description, namespace, action)
        for (action, description), (keys, namespace) in grouped.items()
    ]


class HelpScreen(ModalScreen[None]):
    """The keys of the screen beneath and what each of scaletui's screens shows; escape, q or ? closes."""

    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    DEFAULT_CSS = (
        box_css("HelpScreen", 76)
        + """
    HelpScreen Static {
        margin: 0 0 1 0;
    }
    HelpScreen #hint {
        color: $text-muted;
        margin: 0;
    }
    """
    )

    def __init__(self, keys: Sequence[tuple[str, str]] | None = None) -> None:
        """``keys`` as (key, description) pairs; by default the bindings shown by the screen beneath."""
        super().__init__()
        self.keys = keys

    def compose(self) -> ComposeResult:
        keys = self.keys if self.keys is not None else self._keys_of(self._screen_beneath())
        width = max((len(key) for key, _ in keys), default=0)
        lines = Text("\n").join(Text.assemble((key.ljust(width), "bold"), "  ", text) for key, text in keys)
        with VerticalScroll(id="box"):
            yield Static(Text("Keys", style="bold"))
            yield Static(lines)
            yield Static(Text(PANELS))
            yield Static("escape, q or ? closes this help", id="hint")

    def _screen_beneath(self) -> Screen[object]:
        stack = self.app.screen_stack
        return stack[stack.index(self) - 1]

    def _keys_of(self, screen: Screen[object]) -> list[tuple[str, str]]:
        """Every key of the screen, those hidden from the footer too, keys of one action joined ("escape/q")."""
        return [(keys, description) for keys, description, _, _ in screen_keys(screen)]

    def action_close(self) -> None:
        self.dismiss(None)
