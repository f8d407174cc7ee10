"""The footer of every screen: the keys it shows, rebuilt only when they change.

Textual's Footer rebuilds its keys (a dozen widgets, then a layout of the screen) whenever focus moves,
even when the keys it shows stay the same, as they do when moving between the fields of the form or
hiding the form while one of them has focus.
"""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer


class KeysFooter(Footer):
    """A Footer that skips rebuilding when the keys, their descriptions and states are what it shows."""

    shown: tuple[tuple[str, str, bool, str], ...] | None = None

    def bindings_changed(self, screen: Screen) -> None:
        keys = tuple(
            (binding.key, binding.description, enabled, tooltip)
            for _, binding, enabled, tooltip in screen.active_bindings.values()
            if binding.show
        )
        if keys != self.shown or not screen.app.app_focus:
            self.shown = keys if screen.app.app_focus else None
            super().bindings_changed(screen)
