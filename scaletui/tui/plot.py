"""Pictures drawn to fit their widget: the one drawing path, and the one cache, of every screen's plots.

A screen tells a :class:`Plot` what it shows as a *data key* and a *drawing function* ``draw(width, height)``
that returns a renderable (a plotext picture, or a table and lines). The plot draws when it is painted at a
size, or for a key, it holds no picture for: never when it is hidden, never twice for the same key and size.
Each picture is rendered to lines once and kept, with the last few others, under (key, width, height); so
coming back to a tab, or showing the form and hiding it again, repaints a picture drawn before.

Why lines and not a ``Static``: a Static renders its renderable again at every repaint of the widget (a
rich table of slopes costs milliseconds each time), and a picture drawn in a resize handler arrives a frame
after the new size was shown. Here the picture for the size being painted is drawn in that same paint.

The data key must change whenever the drawing would: a screen passes what its data depends on (a version
of the analysis, the model shown), never the data itself.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable

from rich.console import RenderableType
from rich.segment import Segment
from rich.text import Text
from textual.strip import Strip
from textual.widget import Widget

from scaletui.tui.textual_patches import ResizedWithoutLayout

Draw = Callable[[int, int], RenderableType]  # (width, height) -> the picture, drawn to fit exactly
MIN_WIDTH, MIN_HEIGHT = 20, 6  # smaller, plotext draws nothing legible: the plot stays blank
KEEP = 16  # pictures kept per plot: every tab of the explorer at two sizes (form shown and hidden)


def ansi(draw: Callable[[int, int], str]) -> Draw:
    """A drawing function for a plotext picture (a string of ANSI colour codes)."""
    return lambda width, height: Text.from_ansi(draw(width, height))


class Plot(ResizedWithoutLayout, Widget):
    """A picture for a data key, drawn by the screen's function for the plot's own size."""

    DEFAULT_CSS = "Plot { height: 1fr; width: 1fr; }"

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.key: Hashable = None
        self._draw: Draw | None = None
        self._pictures: OrderedDict[tuple[Hashable, int, int], list[Strip]] = OrderedDict()
        self.draws = 0  # how many pictures were drawn: what the cache saves is counted in tests

    def show(self, key: Hashable, draw: Draw) -> None:
        """Show what ``draw`` draws for ``key``; a key shown already (at this size) costs nothing."""
        self._draw = draw
        if key != self.key:
            self.key = key
            self.refresh()

    def picture(self) -> list[Strip]:
        """The lines of the picture for the key shown at the plot's size, drawn now if none is kept."""
        width, height = self.content_size
        if self._draw is None or width < MIN_WIDTH or height < MIN_HEIGHT:
            return []
        entry = (self.key, width, height)
        lines = self._pictures.get(entry)
        if lines is None:
            lines = self._pictures[entry] = self._render(self._draw(width, height), width, height)
            self.draws += 1
            while len(self._pictures) > KEEP:
                self._pictures.popitem(last=False)
        else:
            self._pictures.move_to_end(entry)
        return lines

    def _render(self, picture: RenderableType, width: int, height: int) -> list[Strip]:
        console = self.app.console
        options = console.options.update(width=width, height=height, highlight=False)
        lines = console.render_lines(picture, options, pad=True, new_lines=False)
        return [Strip(line, width) for line in lines[:height]]

    def render_line(self, y: int) -> Strip:
        lines = self.picture()
        line = lines[y] if y < len(lines) else Strip([Segment(" " * self.content_size.width)])
        return line.apply_style(self.rich_style)

    @property
    def text(self) -> str:
        """The picture shown, as plain text (for tests and for reading the screen)."""
        return "\n".join(line.text for line in self.picture())
