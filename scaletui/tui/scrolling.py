"""Scroll views whose scrollbars are repainted only when something about them changed.

Textual's ``ScrollView`` compares the virtual size the compositor hands it at each layout with its own,
which differ whenever the content is longer than its window, and so repaints its scrollbars after every
layout of the screen, whatever changed. That repaint is a frame of its own, drawn a frame period or
more after the layout: a tab switch or showing the form took two frames instead of one.
"""

from __future__ import annotations

from textual.geometry import Size
from textual.widgets import DataTable, RichLog


class SteadyScrollbars:
    """Mixed in before a ScrollView: compares with the virtual size its scrollbars were last set for."""

    _scrollbars_set_for: Size | None = None
    virtual_size: Size  # the ScrollView's

    def _size_updated(self, size: Size, virtual_size: Size, container_size: Size, layout: bool = True) -> bool:
        if self.virtual_size == self._scrollbars_set_for:
            virtual_size = self.virtual_size
        self._scrollbars_set_for = self.virtual_size
        return super()._size_updated(size, virtual_size, container_size, layout)  # type: ignore[misc]


class SteadyDataTable(SteadyScrollbars, DataTable):
    """A DataTable without a scrollbar frame after every layout."""


class SteadyRichLog(SteadyScrollbars, RichLog):
    """A RichLog without a scrollbar frame after every layout."""
