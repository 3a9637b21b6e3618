"""What can be wrong with an import: the whole file (one message), single cells (a report), or
the server's storage (disk full, read-only or missing media folder: the server's fault, not the file's)."""

from __future__ import annotations

import errno
from dataclasses import asdict, dataclass

MAX_VALUE_CHARS = 200
MAX_REASON_CHARS = 400
MAX_MESSAGE_CHARS = 2000
MAX_DETAILS = 100


def cut_text(text, limit: int):
    """``text`` cut to ``limit`` characters with an ellipsis (non-text left as it is)."""
    if isinstance(text, str) and len(text) > limit:
        return text[:limit - 1] + "…"
    return text


class ImportFileError(Exception):
    """The file as a whole cannot be imported; nothing was written.

    ``code`` is stable (API clients and tests branch on it); ``message`` says what to do.
    """

    def __init__(self, code: str, message: str, *, details: list | None = None):
        # Messages quote the file (header names, ids); a hostile file must not make them huge.
        message = cut_text(message, MAX_MESSAGE_CHARS)
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = (details or [])[:MAX_DETAILS]

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "details": self.details}


# Codes of refusals that are the server's, not the file's (the API answers them with 503).
STORAGE_ERROR_CODES = ("storage_full", "storage_read_only", "storage_unavailable")
_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_READ_ONLY = {errno.EROFS, errno.EACCES, errno.EPERM}


def storage_error(exc: OSError, *, what: str = "the file") -> ImportFileError:
    """The refusal for a write the disk refused; ``what``: what was not saved (the uploaded file,
    an import's list of changes), for a message that says so."""
    if exc.errno in _FULL:
        return ImportFileError("storage_full", (
            f"The server's upload storage is full, so {what} was not saved (nothing was imported). "
            "Try again later; if it persists, ask the operator to free space in the media folder."))
    if exc.errno in _READ_ONLY:
        return ImportFileError("storage_read_only", (
            f"The server cannot write uploaded files right now (its media folder is read-only), so {what} was "
            "not saved (nothing was imported). Ask the operator to check the media folder's permissions."))
    return ImportFileError("storage_unavailable", (
        f"The server could not save {what} ({exc.strerror or exc}); nothing was imported. Try again later."))


@dataclass(frozen=True)
class CellError:
    """One rejected value: the row as a spreadsheet shows it (header = row 1), the column header."""

    row: int
    column: str
    value: str
    reason: str

    def __post_init__(self):
        # Reports are stored on the job and listed by the API: a cell of a megabyte is shown cut.
        object.__setattr__(self, "value", cut_text(self.value, MAX_VALUE_CHARS))
        object.__setattr__(self, "reason", cut_text(self.reason, MAX_REASON_CHARS))
        object.__setattr__(self, "column", cut_text(self.column, MAX_VALUE_CHARS))

    def as_dict(self) -> dict:
        return asdict(self)
