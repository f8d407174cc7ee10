"""Whether the user can see a screen, for screens that keep themselves up to date on a timer."""

from __future__ import annotations

from textual.screen import Screen


def in_view(screen: Screen) -> bool:
    """On top, or seen through a see-through screen above it such as a dialog.

    Textual's ``Screen.is_current`` also holds for the screen right beneath an opaque one, and every repaint
    of a screen there makes the screen on top repaint the same region: a screen that keeps updating while
    covered costs the one in front of it frames it never shows.
    """
    return screen.is_active or (screen.is_current and screen.app.screen.styles.background.a < 1)
