"""CSV files the platform hands out, safe to open in a spreadsheet.

A cell starting with ``=``, ``+``, ``-``, ``@`` (or a tab/carriage return that a spreadsheet may
skip) would be run as a formula by Excel or LibreOffice ("CSV injection"). Every CSV export goes
through :func:`formula_safe_writer`, which prefixes such text cells with an apostrophe so they
are shown as text. Numbers are written as they are (``-3`` stays a number).
"""

from __future__ import annotations

import csv
from typing import Any

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value: Any) -> Any:
    """The value to write: text that a spreadsheet would run as a formula gets a leading ``'``."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


class FormulaSafeWriter:
    """A ``csv.writer`` whose rows are neutralised cell by cell."""

    def __init__(self, stream, **kwargs):
        self._writer = csv.writer(stream, **kwargs)

    def writerow(self, row):
        return self._writer.writerow([neutralise_cell(value) for value in row])

    def writerows(self, rows):
        for row in rows:
            self.writerow(row)


def formula_safe_writer(stream, **kwargs) -> FormulaSafeWriter:
    return FormulaSafeWriter(stream, **kwargs)
