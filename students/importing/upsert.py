"""Write a chunk of clean records: compare with what is stored, insert the new, update the changed.

Every created or changed student gets one ``StudentChange`` row naming the job, the source and
the actor, with ``{"field": [old, new]}`` for what changed; unchanged students get nothing.
New students go in with ``COPY`` (text format) into a temporary table and one
``INSERT ... SELECT`` that also writes their change rows; changed students, with their change
rows, with a ``COPY`` into another temporary table and one ``UPDATE ... FROM`` it that also
writes their change rows (the statements are in ``students/sql.py``).
"""

from __future__ import annotations

import enum
import operator
from collections.abc import Container, Sequence
from dataclasses import dataclass

import orjson
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from institutions.models import Institution

from .. import sql
from ..models import EnrolmentStatus, Outcome
from .validation import CleanRecord

FIELDS = sql.STUDENT_FIELDS
_STORED = {name: position for position, name in enumerate(("id", "external_id", *FIELDS, "features"))}


@dataclass
class ChunkCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0


_ABSENT = object()


def _same(old, new) -> bool:
    # 1 == 1.0 == True in Python; a stored boolean and a number are still different values.
    if type(old) is int and type(new) is float:
        # A float as large as 1.2345678901234567e19 comes back from jsonb as the integer
        # 12345678901234567000, which Python compares exactly with the float and finds different.
        return float(old) == new
    return old == new and isinstance(old, bool) == isinstance(new, bool)


def _text(value) -> str | None:
    return None if value is None else str(value)


def _new_student_values(record: CleanRecord, *, features: bool = True) -> dict:
    values = {"name": "", "email": "", "program": "", "cohort": "", "outcome": Outcome.ENROLLED,
              "outcome_date": None, "advisor_id": None}
    values.update(record.fields)
    if "status" not in record.fields:
        # Without a status column, a student with a final outcome is no longer studying.
        values["status"] = EnrolmentStatus.ACTIVE if values["outcome"] == Outcome.ENROLLED \
            else EnrolmentStatus.INACTIVE
    if features:
        values["features"] = dict(record.features)
    return values


def _diff(existing: dict, record: CleanRecord) -> tuple[dict, dict]:
    """(changes for the audit row, the student's full new values) — changes empty if nothing differs."""
    changes: dict[str, list] = {}
    values = dict(existing)
    for name, new in record.fields.items():
        old = existing[name]
        if old != new:
            if name == "advisor_id":  # recorded like single-record saves: {"advisor": [old id, new id]}
                changes["advisor"] = [old, new]
            else:
                changes[name] = [_text(old), _text(new)]
            values[name] = new
    features = existing["features"]
    incoming = record.features
    if incoming.items() <= features.items():  # values are cleaned per kind, so == is exact here
        values["features"] = features
        return changes, values
    merged = dict(features)
    for key, new in incoming.items():
        old = features.get(key, _ABSENT)
        if old == new and type(old) is type(new):  # most values of a changed student: no call to _same
            continue
        if old is _ABSENT or not _same(old, new):
            old = None if old is _ABSENT else old
            merged[key] = new
            changes[f"features.{key}"] = [old, new]
    values["features"] = merged
    return changes, values


class ChunkWriter:
    """Upserts chunks of one institution inside the caller's transaction: each chunk's students
    are looked up, the new ones inserted and the changed ones updated, with their change rows
    (the API's bulk upsert, and the second pass of a file import)."""

    def __init__(self, *, institution: Institution, source: str, job_id: int | None, actor_id: int | None):
        self.institution = institution
        self.source = source
        self.job_id = job_id
        self.actor_id = actor_id
        self._staged = 0  # new students in the stage table, not yet moved into the students table

    def _existing(self, external_ids: Sequence[str]) -> dict[str, tuple]:
        """The stored students among these ids, as tuples in ``_STORED`` order with the features as
        jsonb's text (parsed only where the compare needs the values)."""
        if not external_ids:
            return {}
        # With current statistics PostgreSQL probes the (institution, external_id) index once per id
        # (the import ANALYZEs when they miss a load: see service._statistics_stale). Raw SQL, and
        # jsonb as text: the ORM's per-row JSON decoding was the bottleneck of a no-op re-import.
        # Rows stay tuples (``_STORED``); classify builds a dict only for a row it must diff.
        with connection.cursor() as cursor:
            cursor.execute(sql.STUDENTS_STORED,
                           {"institution_id": self.institution.pk, "external_ids": list(external_ids)})
            return {row[1]: row for row in cursor.fetchall()}

    def compare(self, records: Sequence[CleanRecord], *, known_new: Container[int] = ()) -> tuple[ChunkCounts, list,
                                                                                                  list]:
        """Counts, the students to create (record, values) and the ones to update (values, changes,
        record); writes nothing.

        ``known_new``: rows pass 1 found new, with no student written since (so not looked up again).
        """
        counts, creates, updates = self.classify(records, known_new=known_new)
        return counts, [(record, _new_student_values(record)) for record in creates], updates

    def classify(self, records: Sequence[CleanRecord], *, known_new: Container[int] = ()) -> tuple[ChunkCounts,
                                                                                                   list, list]:
        """Like :meth:`compare`, with the new students as bare records."""
        counts = ChunkCounts()
        if not records:
            return counts, [], []
        existing = self._existing([record.external_id for record in records if record.row not in known_new])
        creates: list[CleanRecord] = []
        updates: list[tuple[dict, dict, CleanRecord]] = []
        loads = orjson.loads
        for record in records:
            current = existing.get(record.external_id)
            if current is None:
                creates.append(record)
                continue
            # (id, external_id, *FIELDS, features as jsonb text)
            if record.exact_json and current[-1] == record.features_json and all(
                    current[_STORED[name]] == new for name, new in record.fields.items()):
                counts.unchanged += 1  # the same text is the same values: nothing to compare further
                continue
            current = dict(zip(_STORED, (*current[:-1], loads(current[-1])), strict=True))
            changes, values = _diff(current, record)
            if changes:
                updates.append((values, changes, record))
            else:
                counts.unchanged += 1
        counts.created, counts.updated = len(creates), len(updates)
        return counts, creates, updates

    def write(self, records: Sequence[CleanRecord], *, known_new: Container[int] = (), changes=None) -> ChunkCounts:
        """Compare and write a chunk; ``changes`` (an ``importing.changes.ChangeList``), if given,
        gets what the comparison found for each record."""
        counts, creates, updates = self.classify(records, known_new=known_new)
        if changes is not None:
            changes.add(records, creates, updates)
        if not (creates or updates):
            return counts
        updates = [(values, changes) for values, changes, _record in updates]
        self._write_changes(creates, updates)
        return counts

    # --- staging new students ------------------------------------------------------

    @staticmethod
    def staged_lines(creates: Sequence[CleanRecord]) -> list[str]:
        """The COPY data the stage gets for these new students (no database needed: the
        import builds it ahead, in its reader thread, when every valid row is new)."""
        return list(_staged_lines(creates))

    def _stage(self, creates: Sequence[CleanRecord], lines: list[str] | None = None) -> None:
        """COPY new students into a temporary table of the current transaction (dropped at its end);
        :meth:`_write_staged` moves them into the institution's students. ``lines``: their
        :meth:`staged_lines`, if already built."""
        if not creates:
            return
        with connection.cursor() as cursor, connection.wrap_database_errors:
            if not self._staged:
                cursor.execute(sql.NEW_STAGE_CREATE)
                cursor.execute(sql.NEW_STAGE_EMPTY)
            cursor.copy_expert(sql.NEW_STAGE_COPY,
                               _LinesReader(lines if lines is not None else list(_staged_lines(creates))))
        self._staged += len(creates)

    def _write_staged(self) -> int:
        """Insert the staged students and their audit rows, in one statement; their number."""
        if not self._staged:
            return 0
        with connection.cursor() as cursor, connection.wrap_database_errors:
            cursor.execute(sql.NEW_STAGE_MOVE, self._change_parameters())
            written = cursor.rowcount
            cursor.execute(sql.NEW_STAGE_EMPTY)
        if written != self._staged:
            raise RuntimeError(f"staged {self._staged} new students but wrote {written}")
        self._staged = 0
        return written

    # --- writing a chunk: COPY -----------------------------------------------------------------

    def _change_parameters(self) -> dict:
        """The institution, source, job, actor and time that the moves from a stage write."""
        return {"institution_id": self.institution.pk, "source": self.source, "job_id": self.job_id,
                "actor_id": self.actor_id, "now": timezone.now()}

    def _write_changes(self, creates: Sequence[CleanRecord], updates) -> None:
        if creates:
            self._stage(creates)
            self._write_staged()
        if not updates:
            return
        with connection.cursor() as cursor, connection.wrap_database_errors:
            cursor.execute(sql.CHANGED_STAGE_CREATE)
            cursor.execute(sql.CHANGED_STAGE_EMPTY)
            cursor.copy_expert(sql.CHANGED_STAGE_COPY, _LinesReader([
                "\t".join((str(values["id"]), *(_copy_value(values[name]) for name in FIELDS),
                           _copy_json(values["features"]), _copy_json(changes))) + "\n"
                for values, changes in updates]))
            cursor.execute(sql.CHANGED_STAGE_MOVE, self._change_parameters())
            written = cursor.rowcount
        if written != len(updates):
            raise RuntimeError(f"staged {len(updates)} changed students but updated {written}")



class ImportMode(enum.Enum):
    """What the first pass of a file import does with the chunks it validated, chosen once the
    import holds its lock and knows whether the institution has any student."""

    DRY_RUN = "dry_run"  # compare with the stored students and count; write nothing
    # The institution has no students, so nothing can be looked up or changed: every valid row is
    # a new student, moved into the students table chunk by chunk while the next rows are cleaned
    # (inside the import's transaction: no other session sees them, a bad row further down rolls
    # them back).
    FIRST_LOAD = "first_load"
    # Compare with the stored students and stage the new ones; the commit moves them in, if no
    # student was written meanwhile, and updates the changed ones.
    LATER_LOAD = "later_load"


class ImportWriter(ChunkWriter):
    """The writer of one file import, in the mode it was built with (see :class:`ImportMode`).

    Pass 1 hands it each validated chunk (:meth:`take`); the commit then moves what it staged
    (:meth:`move_staged`) instead of reading, cleaning and comparing those rows a second time, and
    writes the rest with :meth:`write`.
    """

    def __init__(self, *, mode: ImportMode, institution: Institution, source: str, job_id: int | None,
                 actor_id: int | None):
        super().__init__(institution=institution, source=source, job_id=job_id, actor_id=actor_id)
        self.mode = mode
        # How many students moved in from the stage, and whether someone else created one of them
        # meanwhile (then nothing more is staged, and the commit compares every row again).
        self.moved = 0
        self.conflict = False

    @property
    def staged(self) -> int:
        return self._staged

    @property
    def builds_lines_ahead(self) -> bool:
        """Whether pass 1 can build each chunk's COPY data (:meth:`staged_lines`) in its reader
        thread: in a first load every valid row is a new student."""
        return self.mode is ImportMode.FIRST_LOAD

    def take(self, records: Sequence[CleanRecord], lines: list[str] | None = None) -> tuple[ChunkCounts, list,
                                                                                             list]:
        """Pass 1's share of a validated chunk: like :meth:`classify`; then, unless a dry run, the
        new students go to the stage (a first load moves them in at once). ``lines``: their
        :meth:`staged_lines`, if already built."""
        if self.mode is ImportMode.FIRST_LOAD:
            counts, creates, updates = ChunkCounts(created=len(records)), list(records), []
        else:
            counts, creates, updates = self.classify(records)
        if self.mode is not ImportMode.DRY_RUN and not self.conflict:
            self._stage(creates, lines)
            if self.mode is ImportMode.FIRST_LOAD:
                self.move_staged()
        return counts, creates, updates

    def discard_staged(self) -> None:
        """Forget the staged students (the next stage empties the table)."""
        self._staged = 0

    def move_staged(self) -> bool:
        """Move the staged students into the institution's students under a savepoint, inside the
        import's transaction (no other session sees them before the commit; a rollback takes them
        back). False, with the stage discarded and ``conflict`` set, when someone else created a
        student with one of their ids meanwhile: none of them is written, and the caller compares
        every row again."""
        try:
            with transaction.atomic():
                self.moved += self._write_staged()
        except IntegrityError:
            self.discard_staged()
            self.conflict = True
            return False
        return True

_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_value(value) -> str:
    """A value in COPY's text format: \\N for None, backslash, tab and line ends escaped."""
    if value is None:
        return "\\N"
    if not isinstance(value, str):
        value = value.isoformat() if hasattr(value, "isoformat") else str(value)
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_COPY_ESCAPES)
    return value


def _copy_json_text(text: str) -> str:
    # orjson escapes control characters inside strings, so only its backslashes need doubling.
    return text.replace("\\", "\\\\") if "\\" in text else text


def _copy_json(value) -> str:
    return _copy_json_text(orjson.dumps(value).decode())


def _staged_lines(creates: Sequence[CleanRecord]):
    """``external_id, FIELDS..., features``, tab-separated, in COPY's text format."""
    fields_of = operator.itemgetter(*FIELDS)
    texts: dict[tuple, str] = {}  # the fields' text per distinct combination (an export repeats a few)
    for record in creates:
        values = fields_of(_new_student_values(record, features=False))
        fields = texts.get(values)
        if fields is None:
            if len(texts) >= 10_000:
                texts.clear()
            fields = texts[values] = "\t".join(map(_copy_value, values))
        features = record.features_json
        features = _copy_json_text(features) if features is not None else _copy_json(record.features)
        yield f"{_copy_value(record.external_id)}\t{fields}\t{features}\n"


class _LinesReader:
    """A file-like object over a list of lines, for ``copy_expert`` (one read per line batch)."""

    def __init__(self, lines: list[str], per_read: int = 500):
        self._lines = lines
        self._per_read = per_read
        self._position = 0

    def read(self, size: int = -1) -> str:
        start = self._position
        self._position += self._per_read
        return "".join(self._lines[start:self._position])
