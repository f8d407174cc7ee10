"""Every override of Textual's internals, in one place. Written against Textual 8.2.8 (the range in
pyproject.toml is what the suite passes on); each has a pilot test that fails when the library changes
under it, beside a control showing what Textual does without the patch (tests/test_textual_patches.py,
tests/test_tui_newuser.py::test_a_row_drawn_before_its_columns_are_measured_is_drawn_again), and
tests/test_tui_plot.py counts the layouts and frames of each of the explorer's tab keys, which every patch
of a view's size and scrollbars below is there to keep at one:

- :class:`SteadyScrollbars` (``ScrollView._size_updated``): Textual's ``ScrollView`` compares the virtual size
  the compositor hands it at each layout with its own, which differ whenever the content is longer than its
  window, and so repaints its scrollbars after every layout of the screen, whatever changed. That repaint is
  a frame of its own: a tab switch or showing the form took two frames instead of one. Its scrollbars are
  each a :class:`SteadyScrollBar` (``Widget.vertical_scrollbar``/``horizontal_scrollbar``, which create them,
  written out again with the class changed, and shown from the start when Textual creates them to show
  them), so a view resized, by the form shown or hidden, resizes them in the same layout. What that layout
  changes about the view (its scroll position clamped to the new height) and its scrollbars (place, length,
  thumb) is drawn in the layout's own frame, where Textual asks for repaints that come a frame later (the
  event log shown at a new width took two frames, 40–50 ms at 160×48).
- :meth:`SteadyRichLog.write_before_shown` (``RichLog._size_known``): lines written at a given width before the
  log was ever shown, in the layout that first shows it, not in a second one after its first Resize.
- :class:`MeasuredDataTable` (``DataTable._update_dimensions`` and its ``_update_count`` cache key).
- :class:`ResizedWithoutLayout` (``Widget._size_updated``'s ``layout`` flag): a widget drawn to fit its size
  needs no second layout of the screen when that size changes.
- :class:`KeysFooter` (``Footer.compose``, ``bindings_changed``, ``_bindings_ready``, ``FooterKey`` and the
  4-tuples of ``Screen.active_bindings``): the footer of every screen, below.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.events import Resize
from textual.geometry import Size
from textual.screen import Screen
from textual.scrollbar import ScrollBar
from textual.widgets import DataTable, Footer, RichLog
from textual.widgets._footer import FooterKey
from textual.widgets.data_table import RowKey


class ResizedWithoutLayout:
    """Mixed in before a widget whose picture is drawn to fit its size (the explorer's plots and panels): a
    new size sets the virtual size without the reactive's layout, which would be a second layout of the
    screen, a frame of its own."""

    def _size_updated(self, size: Size, virtual_size: Size, container_size: Size, layout: bool = True) -> bool:
        return super()._size_updated(size, virtual_size, container_size, layout=False)  # type: ignore[misc]


class SteadyScrollBar(ResizedWithoutLayout, ScrollBar):
    """A scrollbar resized with its view in the view's layout, without asking for one of its own."""


class SteadyScrollbars:
    """Mixed in before a ScrollView: compares with the virtual size its scrollbars were last set for, and
    makes each of its scrollbars a :class:`SteadyScrollBar`."""

    _scrollbars_set_for: Size | None = None
    virtual_size: Size  # the ScrollView's
    _vertical_scrollbar: ScrollBar | None
    _horizontal_scrollbar: ScrollBar | None
    scrollbar_size_vertical: int
    scrollbar_size_horizontal: int

    @property
    def vertical_scrollbar(self) -> ScrollBar:
        if self._vertical_scrollbar is None:
            self._vertical_scrollbar = self._start_scrollbar(True, self.scrollbar_size_vertical)
        return self._vertical_scrollbar

    @property
    def horizontal_scrollbar(self) -> ScrollBar:
        if self._horizontal_scrollbar is None:
            self._horizontal_scrollbar = self._start_scrollbar(False, self.scrollbar_size_horizontal)
        return self._horizontal_scrollbar

    def _start_scrollbar(self, vertical: bool, thickness: int) -> ScrollBar:
        """What Textual 8.2.8's properties do, with a steady scrollbar that starts shown.

        Textual creates a scrollbar hidden and shows it when it decides the view needs one, in a layout,
        which asks for a second layout (setting ``display`` lays the screen out again even to the value it
        had). This one's display rule is set without that request: hidden, as Textual starts it, if it
        does not show now; shown if it does, and then setting it again in the layout changes nothing."""
        name = "vertical" if vertical else "horizontal"
        scrollbar = SteadyScrollBar(vertical=vertical, name=name, thickness=thickness)
        shown = self.show_vertical_scrollbar if vertical else self.show_horizontal_scrollbar  # type: ignore[attr-defined]
        scrollbar.styles.set_rule("display", "block" if shown else "none")
        self.app._start_widget(self, scrollbar)  # type: ignore[attr-defined]
        return scrollbar

    def _size_updated(self, size: Size, virtual_size: Size, container_size: Size, layout: bool = True) -> bool:
        if self.virtual_size == self._scrollbars_set_for:
            virtual_size = self.virtual_size
        self._scrollbars_set_for = self.virtual_size
        resized = super()._size_updated(size, virtual_size, container_size, layout)  # type: ignore[misc]
        self._draw_in_this_frame()
        return resized

    def _draw_in_this_frame(self) -> None:
        """Hand the repaints asked for while the layout sized this view (its scroll position clamped to the
        new size, its scrollbars' place and thumb) to the frame the screen draws right after the layout:
        Textual calls ``_size_updated`` only from ``Screen._refresh_layout``, once the compositor has placed
        every widget. Left to themselves they are repaint messages, drawn in a frame after that one."""
        for widget in (self, self._vertical_scrollbar, self._horizontal_scrollbar):
            if widget is not None and widget._repaint_required:  # type: ignore[attr-defined]
                widget.screen._compositor.update_widgets({widget})  # type: ignore[attr-defined]
                widget._repaint_required = False  # type: ignore[attr-defined]


class MeasuredDataTable(DataTable):
    """A DataTable whose rows are drawn again once their columns are measured.

    Textual 8.2.8 caches each drawn row and cell under the table's update count, which adding a row raises
    but measuring the new rows (later, when the app is idle) does not: a row drawn in between kept the widths
    of the column labels ("smok  finish" on the runs screen) until the next change. Written against Textual
    8.2.8; tests/test_tui_newuser.py::test_a_row_drawn_before_its_columns_are_measured_is_drawn_again
    fails if the library changes under it.
    """

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        super()._update_dimensions(new_rows)
        self._update_count += 1  # a new key for every cached row and cell: they are drawn at the new widths
        self.refresh()


class SteadyDataTable(SteadyScrollbars, MeasuredDataTable):
    """A DataTable without a scrollbar frame after every layout."""


class SteadyRichLog(SteadyScrollbars, RichLog):
    """A RichLog without a scrollbar frame after every layout."""

    def write_before_shown(self) -> None:
        """Let writes that give their width take effect now, before the log's first size is known.

        RichLog (``_size_known``) keeps every write until its first Resize and writes them then: after the
        layout that showed it, whose frame is then followed by a second layout and frame. A log that writes
        at a width it was told (the event log, fitted to the place it is about to be shown in) needs no wait.
        """
        self._size_known = True


# --- the footer ---------------------------------------------------------------------------------------
# The footer of every screen: the keys it shows, in a fixed order, fitted to the terminal's width.
#
# Textual's Footer lists the keys in the order of the focus chain, so they move about as focus moves, and it
# cuts the line at the right edge, where it puts help and quit. This footer orders the keys as the screen
# declares them, puts the keys a user must always find (`esc`, `?`, quit) last, and when the line is too long
# first draws the keys closer together, then drops the screen's other keys from the last declared (a screen
# declares its keys most needed first) until it fits: every key is still in the help (`?`) and the palette.
#
# It also skips rebuilding when the keys it would show are what it shows: Textual's Footer rebuilds (a dozen
# widgets, then a layout of the screen) whenever focus moves, as it does between the fields of the form.

ESSENTIAL_ACTIONS = ("back", "cancel", "close", "dismiss", "help", "quit")  # dismiss: an open list's esc
COMPACT_BELOW = 120  # columns: narrower, the keys are drawn without their padding


def footer_width(key_display: str, description: str, compact: bool) -> int:
    """The cells a FooterKey takes: padded, the key with a space each side, the description and a space
    after it; compact, the key, a space, the description and the margin after it."""
    if compact:
        return len(key_display) + (len(description) + 1 if description else 0) + 1
    return len(key_display) + 2 + (len(description) + 1 if description else 0)


def action_name(action: str) -> str:
    """An action without the app's namespace: `app.quit` on a screen is the app's `quit`, one key group."""
    return action.removeprefix("app.")


class KeysFooter(Footer):
    """A Footer whose keys keep their order whatever has focus, and whose essential keys always fit."""

    shown: tuple[tuple[str, str, bool, str], ...] | None = None
    fitted_width = 0  # the width the keys were last chosen for

    def keys(self) -> list[tuple[Binding, bool, str]]:
        """(binding, enabled, tooltip) of each action shown, one key per action, in the order shown."""
        screen = self.screen
        by_action: dict[str, tuple[Binding, bool, str]] = {}
        for _, binding, enabled, tooltip in screen.active_bindings.values():
            action = action_name(binding.action)
            if binding.show and action not in by_action and binding.key != self.app.COMMAND_PALETTE_BINDING:
                by_action[action] = (binding, enabled, tooltip)
        declared = [action_name(binding.action) for binding in Binding.make_bindings(type(screen).BINDINGS)]

        def rank(action: str) -> tuple[bool, int, int]:
            essential = action in ESSENTIAL_ACTIONS
            order = declared.index(action) if action in declared else len(declared)
            return essential, ESSENTIAL_ACTIONS.index(action) if essential else 0, order

        ranked = sorted(by_action, key=rank)
        keys = [by_action[action] for action in ranked]
        compact = self.app.size.width < COMPACT_BELOW
        self.compact = compact
        room = self.app.size.width - 1
        if self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE:
            palette = self.app.get_key_display(Binding(self.app.COMMAND_PALETTE_BINDING, ""))
            room -= footer_width(palette, "palette", compact) + 2  # its border and padding
        width = {id(b): footer_width(self.app.get_key_display(b), b.description, compact) for b, _, _ in keys}
        optional = [key for key, action in zip(keys, ranked, strict=True) if action not in ESSENTIAL_ACTIONS]
        while optional and sum(width[id(b)] for b, _, _ in keys) > room:
            keys.remove(optional.pop())  # the last declared first
        return keys

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        for binding, enabled, tooltip in self.keys():
            yield FooterKey(
                binding.key,
                self.app.get_key_display(binding),
                binding.description,
                binding.action,
                disabled=not enabled,
                tooltip=tooltip,
            ).data_bind(compact=Footer.compact)
        if self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE:
            active = self.screen.active_bindings.get(self.app.COMMAND_PALETTE_BINDING)
            if active is not None:
                _, binding, enabled, tooltip = active
                yield FooterKey(
                    binding.key,
                    self.app.get_key_display(binding),
                    binding.description,
                    binding.action,
                    classes="-command-palette",
                    disabled=not enabled,
                    tooltip=binding.tooltip or binding.description,
                )

    def bindings_changed(self, screen: Screen) -> None:
        # The keys as shown, in their fixed order: focus moving into the form reorders the active bindings
        # (the focused widget's first) without changing what the footer shows.
        keys = tuple((binding.key, binding.description, enabled, tooltip) for binding, enabled, tooltip in self.keys())
        if keys != self.shown or not screen.app.app_focus:
            self.shown = keys if screen.app.app_focus else None
            super().bindings_changed(screen)

    def on_resize(self, event: Resize) -> None:
        # A narrower terminal fits fewer keys: choose them again. Only then: a layout of the screen that moves
        # nothing in the footer (the form shown or hidden) sends it a Resize too.
        if self._bindings_ready and event.size.width != self.fitted_width:
            self.fitted_width = event.size.width
            self.call_after_refresh(self.recompose)
