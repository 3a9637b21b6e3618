"""What an import does to each student, listed before (dry run) and after (commit) it writes.

Every valid row of the file gives one entry per student: ``created``; ``updated``, with one line
per changed field and its old and new value; or ``unchanged``. A change whose new value is empty
where a value was stored is a *cleared* value, counted per field so that the report can warn
about it. The full list is streamed to a CSV file (bounded memory whatever the file's size),
downloadable from the import page and the API; the report keeps the first
:data:`MAX_LISTED_CHANGES` changed lines and the counts.

The import service hands this list what its comparison found (``upsert.ChunkWriter.classify``):
the same comparison that decides what is written, so no stored value of an existing student
changes without being listed here.

The CSV sits in the media folder beside the uploads. If the disk refuses it (full, over quota,
read-only), the partial CSV is removed and :class:`~.errors.ImportFileError` is raised with the
upload's storage codes (``storage_full``, ...); a committing import flushes the list inside its
transaction (:meth:`ChangeList.close`), so such a refusal rolls the import back rather than leaving
it written without its list.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from institutions.csv_export import formula_safe_writer

from .errors import storage_error

logger = logging.getLogger(__name__)

MAX_LISTED_CHANGES = 200  # changed lines kept on the report (page and API); all are in the CSV
MAX_VALUE_CHARS = 200  # a listed value longer than this is cut, with an ellipsis
CHANGES_CSV_HEADER = ["row", "external_id", "action", "field", "old", "new", "cleared"]
CREATED, UPDATED, UNCHANGED = "created", "updated", "unchanged"


def _shown(value) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS - 1] + "…"


def is_cleared(old, new) -> bool:
    """A stored value replaced by nothing."""
    return new in (None, "") and old not in (None, "")


class ChangeList:
    """Collects an import's per-student changes; ``path``: where the CSV goes (None: counts and
    the listed lines only)."""

    def __init__(self, path: Path | None = None, *, listed: int = MAX_LISTED_CHANGES):
        self.path = Path(path) if path is not None else None
        self.listed_limit = listed
        self._handle = None
        self._writer = None
        self.reset()

    def reset(self) -> None:
        """Forget everything (the comparison is run again: what it found before is stale)."""
        self.listed: list[dict] = []
        self.changed_lines = 0
        self.cleared: Counter[str] = Counter()
        if self._handle is not None:
            with self._disk():
                self._handle.seek(0)
                self._handle.truncate()
                self._writer.writerow(CHANGES_CSV_HEADER)

    @contextlib.contextmanager
    def _disk(self):
        """Writes to the CSV: one the disk refuses leaves no partial file and stops the import."""
        try:
            yield
        except OSError as exc:
            logger.error("could not write an import's list of changes at %s: %s", self.path, exc)
            self.discard()
            raise storage_error(exc, what="the import's list of changes") from exc

    def _csv(self):
        if self._writer is None and self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("w", encoding="utf-8", newline="")
            self._writer = formula_safe_writer(self._handle)
            self._writer.writerow(CHANGES_CSV_HEADER)
        return self._writer

    def _line(self, row: int, external_id: str, action: str, name: str = "", old=None, new=None) -> None:
        cleared = action == UPDATED and is_cleared(old, new)
        if cleared:
            self.cleared[name] += 1
        if action != UNCHANGED:
            self.changed_lines += 1
            if len(self.listed) < self.listed_limit:
                self.listed.append({"row": row, "external_id": _shown(external_id), "action": action,
                                    "field": name, "old": _shown(old), "new": _shown(new), "cleared": cleared})
        writer = self._csv()
        if writer is not None:
            writer.writerow([row, external_id, action, name, _shown(old), _shown(new), "yes" if cleared else ""])

    def add(self, records: Sequence, creates: Iterable, updates: Iterable) -> None:
        """One compared chunk: ``records`` (every valid row of it), the ``creates`` among them
        (records) and the ``updates`` (``(values, changes, record)``, changes as
        ``{"field": [old, new]}``); the other records are unchanged."""
        changed: dict[int, tuple[str, dict | None]] = {}
        for record in creates:
            changed[record.row] = (CREATED, None)
        for _values, changes, record in updates:
            changed[record.row] = (UPDATED, changes)
        with self._disk():
            for record in records:
                action, changes = changed.get(record.row, (UNCHANGED, None))
                if action == UPDATED:
                    for name, (old, new) in changes.items():
                        self._line(record.row, record.external_id, UPDATED, name, old, new)
                else:
                    self._line(record.row, record.external_id, action)

    def close(self) -> None:
        """Put the whole CSV on disk (flushed and fsynced) and close it. A committing import calls
        this before its transaction commits: a disk that refuses the last lines then undoes the import."""
        if self._handle is None:
            return
        with self._disk():
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
        self._handle = None
        self._writer = None

    def discard(self) -> None:
        """Close and delete the CSV (the import was refused, or the disk refused the list)."""
        handle, self._handle, self._writer = self._handle, None, None
        if handle is not None:
            with contextlib.suppress(OSError):  # its unwritten lines are not wanted
                handle.close()
        if self.path is None:
            return
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass
        except OSError as exc:  # a folder turned read-only: nothing links to the file; the log says where it is
            logger.warning("could not remove an import's unfinished list of changes at %s: %s", self.path, exc)

    def summary(self) -> dict:
        return {"changes": list(self.listed), "changed_lines": self.changed_lines,
                "cleared": dict(sorted(self.cleared.items()))}
