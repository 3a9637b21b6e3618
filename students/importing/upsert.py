"""Write a chunk of clean records: compare with what is stored, insert the new, update the changed.

Every created or changed student gets one ``StudentChange`` row naming the job, the source and
the actor, with ``{"field": [old, new]}`` for what changed; unchanged students get nothing.
On PostgreSQL the rows go in with ``COPY`` (new students and change rows) and one
``UPDATE ... FROM`` a temporary table (changed students); elsewhere with Django's bulk methods.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Container, Sequence
from dataclasses import dataclass

import orjson
from django.db import connection
from django.utils import timezone

from institutions.models import Institution

from ..models import EnrolmentStatus, Outcome, Student, StudentChange
from .validation import CleanRecord

TEXT_FIELDS = ("name", "email", "program", "cohort")
FIELDS = (*TEXT_FIELDS, "status", "outcome", "outcome_date", "advisor_id")


@dataclass
class ChunkCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0


def _same(old, new) -> bool:
    # 1 == 1.0 == True in Python; a stored boolean and a number are still different values.
    return old == new and isinstance(old, bool) == isinstance(new, bool)


def _text(value) -> str | None:
    return None if value is None else str(value)


def _new_student_values(record: CleanRecord) -> dict:
    values = {"name": "", "email": "", "program": "", "cohort": "", "outcome": Outcome.ENROLLED,
              "outcome_date": None, "advisor_id": None}
    values.update(record.fields)
    if "status" not in record.fields:
        # Without a status column, a student with a final outcome is no longer studying.
        values["status"] = EnrolmentStatus.ACTIVE if values["outcome"] == Outcome.ENROLLED \
            else EnrolmentStatus.INACTIVE
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
        old = features.get(key)
        if key not in features or not _same(old, new):
            merged[key] = new
            changes[f"features.{key}"] = [old, new]
    values["features"] = merged
    return changes, values


class ChunkWriter:
    """Upserts chunks for one institution inside the caller's transaction."""

    def __init__(self, *, institution: Institution, source: str, job_id: int | None, actor_id: int | None,
                 dry_run: bool = False):
        self.institution = institution
        self.source = source
        self.job_id = job_id
        self.actor_id = actor_id
        self.dry_run = dry_run
        self.postgres = connection.vendor == "postgresql"
        self._temp_ready = False

    def _existing(self, external_ids: Sequence[str]) -> dict[str, dict]:
        names = ("id", "external_id", *FIELDS, "features")
        if not external_ids:
            return {}
        if self.postgres:
            # Raw SQL with orjson: the ORM's per-row JSON decoding is the bottleneck of a no-op re-import.
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT id, external_id, {', '.join(FIELDS)}, features::text FROM {Student._meta.db_table} "  # noqa: S608
                    "WHERE institution_id = %s AND external_id = ANY(%s)",
                    [self.institution.pk, list(external_ids)],
                )
                loads = orjson.loads
                return {row[1]: dict(zip(names, (*row[:-1], loads(row[-1])), strict=True))
                        for row in cursor.fetchall()}
        rows = Student.objects.for_institution(self.institution).filter(external_id__in=external_ids).values_list(
            *names
        )
        return {row[1]: dict(zip(names, row, strict=True)) for row in rows}

    def compare(self, records: Sequence[CleanRecord], *, known_new: Container[int] = ()) -> tuple[ChunkCounts, list,
                                                                                                  list]:
        """Counts, the students to create and the ones to update (with their changes); writes nothing.

        ``known_new``: rows pass 1 found new, with no student written since (so not looked up again).
        """
        counts = ChunkCounts()
        if not records:
            return counts, [], []
        existing = self._existing([record.external_id for record in records if record.row not in known_new])
        creates: list[tuple[CleanRecord, dict]] = []
        updates: list[tuple[dict, dict, CleanRecord]] = []
        for record in records:
            current = existing.get(record.external_id)
            if current is None:
                creates.append((record, _new_student_values(record)))
                continue
            changes, values = _diff(current, record)
            if changes:
                updates.append((values, changes, record))
            else:
                counts.unchanged += 1
        counts.created, counts.updated = len(creates), len(updates)
        return counts, creates, updates

    def write(self, records: Sequence[CleanRecord], *, known_new: Container[int] = ()) -> ChunkCounts:
        counts, creates, updates = self.compare(records, known_new=known_new)
        if self.dry_run or not (creates or updates):
            return counts
        updates = [(values, changes) for values, changes, _record in updates]
        if self.postgres:
            self._write_postgres(creates, updates)
        else:
            self._write_portable(creates, updates)
        return counts

    # --- any database ------------------------------------------------------------------------

    def _write_portable(self, creates, updates) -> None:
        students = Student.objects.for_institution(self.institution)
        change_rows = []
        if creates:
            created = students.bulk_create(
                [Student(institution=self.institution, external_id=record.external_id, **values)
                 for record, values in creates], batch_size=1000,
            )
            if any(student.pk is None for student in created):  # backends that cannot return ids
                ids = dict(students.filter(external_id__in=[s.external_id for s in created]).values_list(
                    "external_id", "id"))
                for student in created:
                    student.pk = ids[student.external_id]
            change_rows += [self._change(student.pk, True, {"external_id": [None, student.external_id]})
                            for student in created]
        if updates:
            objects = []
            now = timezone.now()
            for values, changes in updates:
                student = Student(institution=self.institution, pk=values["id"], external_id=values["external_id"],
                                  updated_at=now, **{name: values[name] for name in (*FIELDS, "features")})
                objects.append(student)
                change_rows.append(self._change(values["id"], False, changes))
            students.bulk_update(objects, [*FIELDS, "features", "updated_at"], batch_size=500)
        StudentChange.objects.for_institution(self.institution).bulk_create(change_rows, batch_size=1000)

    def _change(self, student_id: int, created: bool, changes: dict) -> StudentChange:
        return StudentChange(institution=self.institution, student_id=student_id, source=self.source,
                             job_id=self.job_id, actor_id=self.actor_id, created=created, changes=changes)

    # --- PostgreSQL: COPY ---------------------------------------------------------------------

    def _create_temp_tables(self, cursor) -> None:
        if self._temp_ready:
            return
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS import_student_update (id bigint, name text, email text, "
            "program text, cohort text, status text, outcome text, outcome_date date, advisor_id bigint, "
            "features jsonb) ON COMMIT DROP"
        )
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS import_student_new (institution_id bigint, external_id text, "
            "name text, email text, program text, cohort text, status text, outcome text, outcome_date date, "
            "advisor_id bigint, features jsonb, created_at timestamptz, updated_at timestamptz) ON COMMIT DROP"
        )
        self._temp_ready = True

    def _write_postgres(self, creates, updates) -> None:
        # SQL text holds only table/column names taken from the models; every value is a parameter or COPY data.
        now = timezone.now().isoformat()
        inst = str(self.institution.pk)
        student_table = Student._meta.db_table
        change_rows: list[tuple] = []
        with connection.cursor() as cursor:
            if creates or updates:
                self._create_temp_tables(cursor)
            if creates:
                # COPY into a temporary table, then INSERT ... RETURNING: the new ids come back without
                # a lookup (which, on an institution without statistics yet, would scan it per chunk).
                cursor.execute("TRUNCATE import_student_new")
                buffer = _copy_buffer(
                    (inst, record.external_id, *(values[name] for name in FIELDS), _json(values["features"]),
                     now, now)
                    for record, values in creates
                )
                columns = f"institution_id, external_id, {', '.join(FIELDS)}, features, created_at, updated_at"
                cursor.copy_expert(f"COPY import_student_new ({columns}) FROM STDIN WITH (FORMAT csv, NULL '\\N')",
                                   buffer)
                cursor.execute(
                    f"INSERT INTO {student_table} ({columns}) SELECT {columns} FROM import_student_new "  # noqa: S608
                    "RETURNING external_id, id"
                )
                new_ids = dict(cursor.fetchall())
                change_rows += [(new_ids[record.external_id], True, {"external_id": [None, record.external_id]})
                                for record, _ in creates]
            if updates:
                cursor.execute("TRUNCATE import_student_update")
                buffer = _copy_buffer(
                    (values["id"], *(values[name] for name in FIELDS), _json(values["features"]))
                    for values, _ in updates
                )
                cursor.copy_expert(
                    f"COPY import_student_update (id, {', '.join(FIELDS)}, features) FROM STDIN "
                    "WITH (FORMAT csv, NULL '\\N')", buffer,
                )
                assignments = ", ".join(f"{name} = u.{name}" for name in (*FIELDS, "features"))
                cursor.execute(
                    f"UPDATE {student_table} s SET {assignments}, updated_at = %s FROM import_student_update u "  # noqa: S608
                    "WHERE s.id = u.id AND s.institution_id = %s",
                    [now, self.institution.pk],
                )
                change_rows += [(values["id"], False, changes) for values, changes in updates]
            if change_rows:
                buffer = _copy_buffer(
                    (inst, student_id, self.source, self.job_id, self.actor_id, "t" if created else "f",
                     _json(changes), now)
                    for student_id, created, changes in change_rows
                )
                cursor.copy_expert(
                    f"COPY {StudentChange._meta.db_table} (institution_id, student_id, source, job_id, actor_id, "
                    "created, changes, changed_at) FROM STDIN WITH (FORMAT csv, NULL '\\N')", buffer,
                )


def _json(value) -> str:
    return orjson.dumps(value).decode()


def _copy_buffer(rows) -> io.StringIO:
    """Rows as COPY ... (FORMAT csv, NULL '\\N') input: csv quoting in C, None written as \\N.

    The csv module quotes a field only for the characters of its line terminator, so the
    terminator must be CRLF: with "\\n" alone, a value holding a bare "\\r" went out unquoted and
    PostgreSQL rejected the row.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows(
        tuple("\\N" if value is None else value for value in row) for row in rows
    )
    buffer.seek(0)
    return buffer
