"""What can be wrong with an import: the whole file (one message) or single cells (a report)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


class ImportFileError(Exception):
    """The file as a whole cannot be imported; nothing was written.

    ``code`` is stable (API clients and tests branch on it); ``message`` says what to do.
    """

    def __init__(self, code: str, message: str, *, details: list | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or []

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "details": self.details}


@dataclass(frozen=True)
class CellError:
    """One rejected value: the row as a spreadsheet shows it (header = row 1), the column header."""

    row: int
    column: str
    value: str
    reason: str

    def as_dict(self) -> dict:
        return asdict(self)
