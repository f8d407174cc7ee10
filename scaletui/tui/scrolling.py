"""Scroll views whose scrollbars are repainted only when something about them changed, and a DataTable
that draws its rows again once their columns are measured: the patches of Textual's internals, together.

Textual's ``ScrollView`` compares the virtual size the compositor hands it at each layout with its own,
which differ whenever the content is longer than its window, and so repaints its scrollbars after every
layout of the screen, whatever changed. That repaint is a frame of its own, drawn a frame period or
more after the layout: a tab switch or showing the form took two frames instead of one.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual.geometry import Size
from textual.widgets import DataTable, RichLog
from textual.widgets.data_table import RowKey


class SteadyScrollbars:
    """Mixed in before a ScrollView: compares with the virtual size its scrollbars were last set for."""

    _scrollbars_set_for: Size | None = None
    virtual_size: Size  # the ScrollView's

    def _size_updated(self, size: Size, virtual_size: Size, container_size: Size, layout: bool = True) -> bool:
        if self.virtual_size == self._scrollbars_set_for:
            virtual_size = self.virtual_size
        self._scrollbars_set_for = self.virtual_size
        return super()._size_updated(size, virtual_size, container_size, layout)  # type: ignore[misc]


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
