"""The footer of every screen: the keys it shows, in a fixed order, fitted to the terminal's width.

Textual's Footer lists the keys in the order of the focus chain, so they move about as focus moves, and it
cuts the line at the right edge, where it puts help and quit. This footer orders the keys as the screen
declares them, puts the keys a user must always find (`esc`, `?`, quit) last, and when the line is too long
drops the other keys, longest first, until it fits: every key is still in the help (`?`) and the palette.

It also skips rebuilding when the keys it would show are what it shows: Textual's Footer rebuilds (a dozen
widgets, then a layout of the screen) whenever focus moves, as it does between the fields of the form.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

ESSENTIAL_ACTIONS = ("back", "cancel", "close", "help", "app.help", "quit", "app.quit")


def footer_width(key_display: str, description: str) -> int:
    """The cells a FooterKey takes: the key with a space each side, the description and a space after it."""
    return len(key_display) + 2 + (len(description) + 1 if description else 0)


class KeysFooter(Footer):
    """A Footer whose keys keep their order whatever has focus, and whose essential keys always fit."""

    shown: tuple[tuple[str, str, bool, str], ...] | None = None

    def keys(self) -> list[tuple[Binding, bool, str]]:
        """(binding, enabled, tooltip) of each action shown, one key per action, in the order shown."""
        screen = self.screen
        by_action: dict[str, tuple[Binding, bool, str]] = {}
        for _, binding, enabled, tooltip in screen.active_bindings.values():
            if binding.show and binding.action not in by_action and binding.key != self.app.COMMAND_PALETTE_BINDING:
                by_action[binding.action] = (binding, enabled, tooltip)
        declared = [binding.action for binding in Binding.make_bindings(type(screen).BINDINGS)]
        keys = list(by_action.values())
        keys.sort(
            key=lambda item: (
                item[0].action in ESSENTIAL_ACTIONS,
                ESSENTIAL_ACTIONS.index(item[0].action) if item[0].action in ESSENTIAL_ACTIONS else 0,
                declared.index(item[0].action) if item[0].action in declared else len(declared),
            )
        )
        room = self.app.size.width - 1
        if self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE:
            palette = Binding(self.app.COMMAND_PALETTE_BINDING, "")
            room -= footer_width(self.app.get_key_display(palette), "palette") + 2  # its border and padding
        width = {id(b): footer_width(self.app.get_key_display(b), b.description) for b, _, _ in keys}
        optional = sorted((k for k in keys if k[0].action not in ESSENTIAL_ACTIONS), key=lambda k: -width[id(k[0])])
        while optional and sum(width[id(b)] for b, _, _ in keys) > room:
            keys.remove(optional.pop(0))
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
