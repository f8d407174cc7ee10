"""The footer of every screen: the keys it shows, in a fixed order, fitted to the terminal's width.

Textual's Footer lists the keys in the order of the focus chain, so they move about as focus moves, and it
cuts the line at the right edge, where it puts help and quit. This footer orders the keys as the screen
declares them, puts the keys a user must always find (`esc`, `?`, quit) last, and when the line is too long
first draws the keys closer together, then drops the screen's other keys from the last declared (a screen
declares its keys most needed first) until it fits: every key is still in the help (`?`) and the palette.

It also skips rebuilding when the keys it would show are what it shows: Textual's Footer rebuilds (a dozen
widgets, then a layout of the screen) whenever focus moves, as it does between the fields of the form.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

ESSENTIAL_ACTIONS = ("back", "cancel", "close", "help", "quit")
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
        keys = tuple(
            (binding.key, binding.description, enabled, tooltip)
            for _, binding, enabled, tooltip in screen.active_bindings.values()
            if binding.show
        )
        if keys != self.shown or not screen.app.app_focus:
            self.shown = keys if screen.app.app_focus else None
            super().bindings_changed(screen)

    def on_resize(self) -> None:
        # A narrower terminal fits fewer keys: choose them again.
        if self._bindings_ready:
            self.call_after_refresh(self.recompose)
