"""The one import service behind the upload page, the API and ``manage.py import_students``.

Two passes over the file keep memory bounded whatever its size: the first validates every row
(chunk by chunk, keeping only ids and errors), the second re-reads it and upserts chunk by chunk
inside one transaction. Nothing is written unless the whole file is valid, or the caller chose
explicitly to import only the valid rows.
"""

from __future__ import annotations

import contextlib
import gc
import json
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from django.db import connection, transaction
from django.utils import translation
from django.utils.translation import gettext, ngettext

from institutions.models import Institution

from .. import sql
from ..models import ChangeSource, FeatureDefinition, FeatureKind, ImportMapping, Student
from ..services import feature_definitions_created_record
from .changes import ChangeList
from .errors import MAX_VALUE_CHARS, CellError, ImportFileError, cut_text
from .mapping import ImportMappingSpec, check_mapping, mapping_from_dict, suggest_mapping
from .reading import PAGE_CHANNEL, TableInfo, TableReader, check_channel_size
from .upsert import ChunkCounts, ImportMode, ImportWriter
from .validation import RowCleaner, new_feature_definition

CHUNK_ROWS = 2000
MAX_REPORTED_ERRORS = 1000  # listed on the job (each value cut to 200 characters); all are counted
PREVIEW_HEAD_BYTES = 2 * 1024 * 1024  # what a preview reads of a CSV (the preview job, in the worker)
PREVIEW_VALUE_ROWS = 50_000  # rows a preview reads at most (a workbook has no byte head)
MAX_COLUMN_VALUES = 30  # distinct values kept per column in a preview (the outcome words offered)
ANALYZE_AFTER_ROWS = 10_000
Progress = Callable[[str, int, int], None]


@dataclass
class ImportReport:
    rows: int = 0
    valid_rows: int = 0
    error_rows: int = 0
    error_count: int = 0
    errors: list[CellError] = field(default_factory=list)
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    new_features: list[str] = field(default_factory=list)
    # What the import does (dry run) or did (commit) to each student (see importing.changes):
    # the first changed lines, how many there are, and cleared values per field.
    changes: list[dict] = field(default_factory=list)
    changed_lines: int = 0
    cleared: dict[str, int] = field(default_factory=dict)
    # The most recently written student when the comparison ran ([updated_at, id], None: no
    # student), so that a commit can tell whether the listed changes are still what it would do.
    students_fingerprint: list | None = None
    # Mapped columns blank in every row, with how many stored values they would have cleared: left
    # alone (the import ran as if they were not mapped) unless the mapping lists them under
    # ``clear_blank_columns``.
    blank_columns: dict[str, int] = field(default_factory=dict)
    committed: bool = False
    valid_rows_only: bool = False
    format: str = ""
    encoding: str = ""
    delimiter: str = ""
    seconds: float = 0.0

    @property
    def has_errors(self) -> bool:
        return self.error_count > 0

    @property
    def errors_truncated(self) -> bool:
        return self.error_count > len(self.errors)

    @property
    def changes_truncated(self) -> bool:
        return self.changed_lines > len(self.changes)

    @property
    def cleared_total(self) -> int:
        return sum(self.cleared.values())

    @property
    def summary(self) -> str:
        """In the language of the page that shows it (the report keeps only the counts)."""
        if self.has_errors and not self.committed:
            return ngettext(
                "%(count)s problem in %(error_rows)s of %(rows)s rows; nothing was imported. Fix the file (or "
                "choose to import only the valid rows) and try again.",
                "%(count)s problems in %(error_rows)s of %(rows)s rows; nothing was imported. Fix the file (or "
                "choose to import only the valid rows) and try again.",
                self.error_count,
            ) % {"count": self.error_count, "error_rows": self.error_rows, "rows": self.rows}
        counts = {"created": self.created, "updated": self.updated, "unchanged": self.unchanged,
                  "skipped": self.skipped}
        if not self.committed:
            if self.skipped:
                return gettext("Ready to import: %(created)s created, %(updated)s updated, %(unchanged)s "
                               "unchanged, %(skipped)s invalid rows skipped.") % counts
            return gettext("Ready to import: %(created)s created, %(updated)s updated, "
                           "%(unchanged)s unchanged.") % counts
        if not self.created and not self.updated:
            if self.skipped:
                return gettext("Imported: %(created)s created, %(updated)s updated, %(unchanged)s unchanged, "
                               "%(skipped)s invalid rows skipped (the file matches what is stored: nothing "
                               "changed).") % counts
            return gettext("Imported: %(created)s created, %(updated)s updated, %(unchanged)s unchanged (the "
                           "file matches what is stored: nothing changed).") % counts
        if self.skipped:
            return gettext("Imported: %(created)s created, %(updated)s updated, %(unchanged)s unchanged, "
                           "%(skipped)s invalid rows skipped.") % counts
        return gettext("Imported: %(created)s created, %(updated)s updated, %(unchanged)s unchanged.") % counts

    def as_dict(self) -> dict:
        data = asdict(self)
        data["errors"] = [error.as_dict() for error in self.errors]
        data["summary"] = self.summary
        data["errors_truncated"] = self.errors_truncated
        data["changes_truncated"] = self.changes_truncated
        return data

    @classmethod
    def from_dict(cls, data: Mapping) -> ImportReport:
        known = set(cls.__dataclass_fields__)
        report = cls(**{k: v for k, v in data.items() if k in known and k != "errors"})
        report.errors = [CellError(**error) for error in data.get("errors", [])]
        return report


@dataclass
class Preview:
    """What the mapping page shows of a file, read by the preview job (in the worker) and stored
    on the upload as :meth:`as_dict`, so that the page never opens the file."""

    info: TableInfo
    rows: list[list[str]]
    mapping: ImportMappingSpec
    estimated_rows: int
    # Per column, its first distinct values in the file's beginning (the outcome words offered for
    # mapping); a column with more than MAX_COLUMN_VALUES distinct values keeps its first ones
    # only if it is suggested as the outcome.
    column_values: dict[str, list[str]] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"info": asdict(self.info), "rows": self.rows, "mapping": self.mapping.as_dict(),
                "estimated_rows": self.estimated_rows, "column_values": self.column_values}

    @classmethod
    def from_dict(cls, data: Mapping) -> Preview:
        return cls(info=TableInfo(**data["info"]), rows=data["rows"], mapping=mapping_from_dict(data["mapping"]),
                   estimated_rows=data["estimated_rows"], column_values=data.get("column_values", {}))


def _definitions(institution: Institution) -> dict[str, FeatureDefinition]:
    return {d.key: d for d in FeatureDefinition.objects.for_institution(institution)}


def import_mapping_remembered(*, institution: Institution) -> dict:
    mapping = ImportMapping.objects.for_institution(institution).first()
    if mapping is None:
        return {}
    return {"columns": mapping.columns, "outcome_values": mapping.outcome_values, "options": mapping.options}


def import_mapping_remember(*, institution: Institution, spec: ImportMappingSpec, user=None) -> ImportMapping:
    """Merge this mapping into the institution's remembered one (headers seen before keep theirs)."""
    mapping, _ = ImportMapping.objects.for_institution(institution).get_or_create(institution=institution)
    data = spec.as_dict()
    mapping.columns = {**mapping.columns, **data["columns"]}
    mapping.outcome_values = {**mapping.outcome_values, **data["outcome_values"]}
    mapping.options = {"id_columns": data["id_columns"], "id_row_prefix": data["id_row_prefix"],
                       "delimiter": data["delimiter"], "decimal_comma": data["decimal_comma"],
                       "program_from": data["program_from"]}
    mapping.updated_by = user
    mapping.save()
    return mapping


def _estimate_rows(path: Path, info: TableInfo) -> int:
    if info.format == "xlsx":
        return 0
    lines = 0
    last = b"\n"
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return max(0, lines - (last == b"\n"))


def import_preview(*, institution: Institution, path: Path | str, original_name: str | None = None,
                   delimiter: str | None = None, rows: int = 10, sample_rows: int = 500,
                   channel: str = PAGE_CHANNEL) -> Preview:
    """The detected format, the first rows and the suggested mapping (remembered one first).

    Reads only the beginning of a CSV (:data:`PREVIEW_HEAD_BYTES`) and of a workbook
    (:data:`PREVIEW_VALUE_ROWS` rows), after checking a workbook against the limits as a whole (a
    streaming pass). The upload page runs it in the preview job (the worker), never in the web
    request; the whole file is read when the import job validates it. ``channel``: where the file
    came in (``ImportUpload.channel``), which decides the largest size accepted.
    """
    path = Path(path)
    check_channel_size(path.stat().st_size, channel)
    reader = TableReader(path, original_name=original_name, delimiter=delimiter, head_bytes=PREVIEW_HEAD_BYTES)
    info = reader.open()
    sample: list[list[str]] = []
    values = _ColumnValues(len(info.header))
    for count, (_number, cells) in enumerate(reader.rows(), start=1):
        if len(sample) < sample_rows:
            sample.append(cells)
        values.add(cells)
        if count >= PREVIEW_VALUE_ROWS:
            break
    spec = suggest_mapping(header=info.header, sample_rows=sample, definitions=_definitions(institution),
                           remembered=import_mapping_remembered(institution=institution),
                           has_students=_students_fingerprint(institution) is not None)
    spec.delimiter = delimiter or ""
    shown = [[cut_text(cell, MAX_VALUE_CHARS) for cell in row] for row in sample[:rows]]
    return Preview(info=info, rows=shown, mapping=spec, estimated_rows=_estimate_rows_from_head(path, info),
                   column_values=values.by_header(info.header, keep_all=set(spec.columns_for("outcome"))))


class _ColumnValues:
    """Each column's first distinct values (at most MAX_COLUMN_VALUES kept, each under
    MAX_VALUE_CHARS: longer ones are no outcome word), and whether it has more."""

    def __init__(self, width: int):
        self.values: list[dict[str, None]] = [{} for _ in range(width)]
        self.more = [False] * width

    def add(self, cells: list[str]) -> None:
        for position, cell in enumerate(cells[:len(self.values)]):
            value = cell.strip()
            seen = self.values[position]
            if not value or value in seen or len(value) > MAX_VALUE_CHARS:
                continue
            if len(seen) >= MAX_COLUMN_VALUES:
                self.more[position] = True
            else:
                seen[value] = None

    def by_header(self, header: list[str], *, keep_all: set[str]) -> dict[str, list[str]]:
        return {name: list(self.values[i]) for i, name in enumerate(header)
                if self.values[i] and (not self.more[i] or name in keep_all)}


def _estimate_rows_from_head(path: Path, info: TableInfo) -> int:
    size = path.stat().st_size
    if size <= PREVIEW_HEAD_BYTES:
        return _estimate_rows(path, info)
    if info.format == "xlsx":
        return 0
    with path.open("rb") as handle:
        lines = handle.read(PREVIEW_HEAD_BYTES).count(b"\n")
    return round(lines * size / PREVIEW_HEAD_BYTES)


def _sorted_categories(values: set[str]) -> list[str]:
    try:
        return sorted(values, key=float)
    except ValueError:
        return sorted(values)


def import_file(
    *, institution: Institution, path: Path | str, mapping: ImportMappingSpec | Mapping, commit: bool,
    original_name: str | None = None, valid_rows_only: bool = False, source: str = ChangeSource.IMPORT,
    actor=None, job=None, progress: Progress | None = None, chunk_rows: int = CHUNK_ROWS,
    changes_path: Path | None = None, expected_students: list | bool | None = False, channel: str = PAGE_CHANNEL,
) -> ImportReport:
    """Validate the whole file, then (``commit``) upsert it. Raises :class:`ImportFileError`.

    Without ``commit`` this is a dry run: the report counts what would be created, updated and
    left unchanged, and lists each student's changes (``changes_path``: where the full list goes
    as CSV; see :mod:`.changes`). Invalid rows make the report list them and nothing is written,
    unless ``valid_rows_only`` is set explicitly. ``expected_students``: the
    ``students_fingerprint`` of the dry run whose changes the person saw; a commit refuses to
    write if students were written since (the listed changes may no longer be what it would do).
    ``channel``: where the file came in (``ImportUpload.channel``): the page's uploads are held to
    IMPORT_MAX_FILE_BYTES, the API's and the CLI's to IMPORT_MAX_BULK_FILE_BYTES.
    """
    changes = ChangeList(changes_path)
    try:
        with _process_heap_frozen():
            report = _import_file(
                institution=institution, path=path, mapping=mapping, commit=commit, original_name=original_name,
                valid_rows_only=valid_rows_only, source=source, actor=actor, job=job, progress=progress,
                chunk_rows=chunk_rows, changes=changes, expected_students=expected_students, channel=channel,
            )
        changes.close()  # a dry run's list; a commit's is closed inside its transaction
    except BaseException:
        changes.discard()
        raise
    if commit and report.has_errors and not report.committed:  # refused: nothing was written
        changes.discard()
    else:
        summary = changes.summary()
        report.changes, report.changed_lines, report.cleared = (
            summary["changes"], summary["changed_lines"], summary["cleared"])
    return report


@contextlib.contextmanager
def _process_heap_frozen():
    """Keep the objects the process already holds out of the garbage collector's full passes
    while an import runs.

    The process holds some 200,000 long-lived objects (Django, the apps and the libraries they
    load); an import's chunks of short-lived rows and records trigger full collections again and
    again, and each walked all of them: a third of a no-op re-import's CPU time. Collection goes
    on for everything the import creates. Skipped when something froze the heap already (e.g. a
    pre-forking server keeping its pages shared), whose choice an unfreeze here would undo.
    """
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _import_file(*, institution: Institution, path: Path | str, mapping: ImportMappingSpec | Mapping, commit: bool,
                 original_name: str | None, valid_rows_only: bool, source: str, actor, job, progress: Progress | None,
                 chunk_rows: int, changes: ChangeList, expected_students, channel: str) -> ImportReport:
    started = time.perf_counter()
    path = Path(path)
    spec = mapping if isinstance(mapping, ImportMappingSpec) else mapping_from_dict(mapping)
    check_channel_size(path.stat().st_size, channel)
    reader = TableReader(path, original_name=original_name, delimiter=spec.delimiter or None)
    info = reader.open()
    definitions = _definitions(institution)
    check_mapping(spec, info.header, definitions)
    report = ImportReport(format=info.format, encoding=info.encoding, delimiter=info.delimiter,
                          valid_rows_only=valid_rows_only)
    estimate = _estimate_rows(path, info)
    passes = 2
    report_progress = progress or (lambda stage, done, total: None)

    # A committing import runs in one transaction from the first row: pass 1 stages the
    # new students in a temporary table of that transaction (private to it, dropped with it) while it
    # validates, so PostgreSQL parses them while Python cleans the next rows. A later import writes
    # the institution's tables only after the whole file has proved valid. An institution's first
    # import (no students yet, so no stored student can change under it) moves each staged chunk
    # into the students table at once, so that PostgreSQL maintains its indexes while Python
    # validates the next rows; those rows stay invisible to every other session, and a file that
    # turns out invalid rolls the whole transaction back. Either way a bad file writes nothing.
    with transaction.atomic() if commit else contextlib.nullcontext():
        if commit:
            _lock_imports_of(institution)
        students_before = _students_fingerprint(institution)
        report.students_fingerprint = _fingerprint_json(students_before)
        if spec.id_row_prefix and students_before is not None:
            raise ImportFileError(
                "row_numbers_with_students",
                "The file has no id column and this institution already has students. Numbered rows "
                f"({spec.id_row_prefix}-00001, ...) name a row's position in the file, not a student, so they would "
                "match, and overwrite, other students' records. Add a column with each student's id from your "
                "student information system and map it as the external id. (Numbering rows is only for a "
                "first import into an institution with no students.)",
            )
        if commit and expected_students is not False and report.students_fingerprint != expected_students:
            raise ImportFileError(
                "students_changed",
                "Students were written since this file was validated (by another import, the API or a person), "
                "so the changes the validation listed may no longer be what the import would do. Nothing was "
                "written: validate the file again to see the current changes, then import it.",
            )
        if not commit:
            mode = ImportMode.DRY_RUN
        else:
            mode = ImportMode.FIRST_LOAD if students_before is None else ImportMode.LATER_LOAD
        writer = ImportWriter(mode=mode, institution=institution, source=source, job_id=getattr(job, "pk", None),
                              actor_id=getattr(actor, "pk", None))
        if mode is ImportMode.FIRST_LOAD:
            # Check the new rows' foreign keys as each chunk goes in (Django's are deferred to
            # the commit), while Python cleans the next chunk, instead of all of them at the end.
            with connection.cursor() as cursor:
                cursor.execute(sql.CONSTRAINTS_IMMEDIATE)
        pending = _validate_and_compare(reader, info, spec, definitions, report, writer, estimate, passes,
                                        chunk_rows, report_progress, changes)
        blank = _blank_columns_to_leave_alone(spec, report, changes) if students_before is not None else {}
        if blank and pending is not None:
            # Validate and compare again as if those columns were not mapped: nothing of theirs is
            # written, and the list of changes says what the import will really do.
            spec = spec.without_columns(blank)
            writer.discard_staged()
            changes.reset()
            report = _fresh_report(report)
            pending = _validate_and_compare(reader, info, spec, definitions, report, writer, estimate, passes,
                                            chunk_rows, report_progress, changes)
        report.blank_columns = blank
        if pending is None:  # errors, and no explicit choice to import the valid rows
            if commit:
                transaction.set_rollback(True)  # undo what pass 1 wrote early
            report.seconds = round(time.perf_counter() - started, 3)
            return report
        total = report.rows * passes
        if commit:
            _write(institution, spec, reader, info, report, writer, pending, students_before, chunk_rows,
                   report_progress, total, changes, actor=actor, source=source)
            # On disk before the commit: a list the disk refuses (full, read-only) undoes the import.
            changes.close()
    if commit:
        _refresh_statistics(institution, report.created)
    report.committed = commit
    if not commit:  # what the commit would create (it creates them once the file has proved valid)
        report.new_features = [column.feature for column in spec.columns.values() if column.target == "new_feature"]
    report.seconds = round(time.perf_counter() - started, 3)
    report_progress("done", total, total)
    return report


def _write(institution: Institution, spec: ImportMappingSpec, reader: TableReader, info: TableInfo,
           report: ImportReport, writer: ImportWriter, pending: _Pending, students_before, chunk_rows: int,
           report_progress: Progress, total: int, changes: ChangeList, *, actor=None,
           source: str = ChangeSource.IMPORT) -> None:
    """The commit, inside the import's transaction (which holds the import lock since pass 1
    began): write what pass 1 found new or changed, all or nothing."""
    # Whether pass 1's view is stale: students written since it began. After an institution's
    # first import (no student existed, so none pass 1 found unchanged can have changed) only a
    # student created meanwhile with one of the file's ids calls for a second look.
    first_load = writer.mode is ImportMode.FIRST_LOAD
    everything = writer.conflict if first_load else _students_fingerprint(institution) != students_before
    report.new_features = _create_new_features(institution, spec, pending.cleaner, actor=actor, source=source)
    written = ImportReport()
    written.created = writer.moved  # pass 1's early writes compare as unchanged below
    todo: set[int] | None = pending.rows  # line numbers pass 2 re-reads; None: every valid row
    if everything:
        writer.discard_staged()  # pass 1's view is stale: compare every row again
        todo = None
        changes.reset()  # and list what the second comparison finds
    elif first_load:
        todo = pending.rows - pending.creates  # the new students are in already
    elif writer.staged:
        # The new students pass 1 staged (nobody wrote a student since): no second read for them.
        report_progress("writing", report.rows, total)
        if writer.move_staged():
            todo = pending.rows - pending.creates
        else:  # one of them was created meanwhile by a transaction the check above could not see yet
            todo, everything = None, True
        written.created = writer.moved
        report_progress("writing", report.rows + written.created * report.rows // len(pending.rows), total)
    if todo is None or todo:
        # Pass 2: re-read the rows that create or change a student (all, if others wrote meanwhile).
        known_new = () if everything else pending.creates
        for numbers, indexes, rows, _ragged in _chunks(reader, len(info.header), chunk_rows):
            last = indexes[-1] if indexes else 0
            if todo is None:
                keep = [p for p, number in enumerate(numbers) if number not in pending.bad_rows]
            else:
                keep = [p for p, number in enumerate(numbers) if number in todo]
            if keep:
                numbers, indexes, rows = ([seq[p] for p in keep] for seq in (numbers, indexes, rows))
                records = pending.cleaner.clean_chunk(numbers, indexes, rows).records
                _add(written, writer.write(records, known_new=known_new,
                                           changes=changes if todo is None else None))
            report_progress("writing", report.rows + last, total)
    report.created, report.updated = written.created, written.updated
    report.unchanged = report.valid_rows - written.created - written.updated


def _statistics_stale(institution: Institution, created: int) -> bool:
    """Whether PostgreSQL's statistics miss most of the students this import created.

    Then the planner takes the institution for a small one and may look up every chunk of the
    next import by scanning all of the institution's students (hashing them against the chunk's
    ids) instead of probing the (institution, external_id) index: a no-op re-import right after a
    first import took 20-40 s that way. Its own estimate of the institution's size tells."""
    if created < ANALYZE_AFTER_ROWS:
        return False
    with connection.cursor() as cursor:
        cursor.execute(sql.STUDENTS_PLANNED, {"institution_id": institution.pk})
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return plan[0]["Plan"]["Plan Rows"] < created / 2


def _refresh_statistics(institution: Institution, created: int) -> None:
    """ANALYZE after a load the statistics do not know about (see :func:`_statistics_stale`); a
    later export that changes values, or adds a few students, leaves them to autovacuum."""
    if connection.in_atomic_block or not _statistics_stale(institution, created):
        return
    with connection.cursor() as cursor:  # the columns queries select, join or sort students by
        cursor.execute(sql.STUDENTS_ANALYZE)


# pg_advisory_xact_lock's first key: this lock space is "imports of an institution".
_IMPORT_LOCK_SPACE = 0x494D50  # "IMP"


def _lock_imports_of(institution: Institution) -> None:
    """One import at a time per institution, from its first row to its commit (the lock goes with
    the transaction). An advisory lock: it blocks nothing but other imports of the
    institution, not its pages, API writes or foreign-key checks."""
    with connection.cursor() as cursor:
        cursor.execute(sql.IMPORT_LOCK, {"lock_space": _IMPORT_LOCK_SPACE, "lock_key": institution.pk % 2**31})


def _fingerprint_json(fingerprint: tuple | None) -> list | None:
    return None if fingerprint is None else [fingerprint[0].isoformat(), fingerprint[1]]


def _students_fingerprint(institution: Institution) -> tuple | None:
    """The institution's most recently written student (None: it has none), read from the
    (institution, updated_at, id) index: every write of a student sets ``updated_at``."""
    return Student.objects.for_institution(institution).order_by("-updated_at", "-id").values_list(
        "updated_at", "id").first()


@dataclass
class _Pending:
    cleaner: RowCleaner
    rows: set[int]  # line numbers whose student is new or changed
    creates: set[int]  # the new ones among them
    bad_rows: set[int]  # line numbers with rejected cells (skipped when importing only the valid rows)


# Targets whose blank cell would replace a stored value (a blank status or outcome leaves it alone,
# and a new feature has no stored values yet).
_CLEARABLE_TARGETS = frozenset({"name", "email", "program", "cohort", "outcome_date", "feature"})


def _stored_field(spec: ImportMappingSpec, header: str) -> str:
    """The name a column's changes go by in the list of changes (``name``, ``features.<key>``)."""
    column = spec.columns[header]
    return f"features.{column.feature}" if column.target == "feature" else column.target


def _blank_columns_to_leave_alone(spec: ImportMappingSpec, report: ImportReport, changes: ChangeList) -> dict:
    """The columns pass 1 found blank in every row that the mapping does not say to clear, with
    the stored values each would clear (what the list of changes counted)."""
    return {header: changes.cleared.get(_stored_field(spec, header), 0) for header in report.blank_columns
            if header not in spec.clear_blank_columns}


def _fresh_report(report: ImportReport) -> ImportReport:
    return ImportReport(format=report.format, encoding=report.encoding, delimiter=report.delimiter,
                        valid_rows_only=report.valid_rows_only, students_fingerprint=report.students_fingerprint)


def _validate_and_compare(reader, info, spec, definitions, report: ImportReport, writer: ImportWriter, estimate: int,
                          passes: int, chunk_rows: int, report_progress, changes: ChangeList) -> _Pending | None:
    """Pass 1: validate every row and compare the valid ones with what is stored.

    Keeps only ids (for duplicates), bad and pending line numbers and the first errors, so memory
    does not grow with the file. None when there are errors and ``valid_rows_only`` is not set.
    Each valid chunk goes to the writer, which stages or moves its new students as its mode says;
    once the file shows an error that will stop the import, nothing more is staged or moved.
    """
    cleaner = RowCleaner(spec=spec, header=info.header, definitions=definitions)
    width = len(info.header)
    first_row_of: dict[str, int] = {}
    duplicates: dict[str, list[int]] = {}
    ragged: list[tuple[int, int]] = []
    bad_rows: set[int] = set()
    pending: set[int] = set()
    new_rows: set[int] = set()
    errors: list[CellError] = []
    report_progress("validating", 0, estimate * passes)
    data_index = 0
    # Mapped columns not seen with a value yet (checked in the reader thread, which is done with
    # every chunk before the loop below ends).
    blank = {index: name for index, name in enumerate(info.header)
             if name in spec.columns and spec.columns[name].target in _CLEARABLE_TARGETS}
    cleaned = ((numbers, indexes, skipped, cleaner.clean_chunk(numbers, indexes, _note_values(blank, rows)))
               for numbers, indexes, rows, skipped in _chunks(reader, width, chunk_rows))
    if writer.builds_lines_ahead:  # every valid row is new: its COPY line is built ahead, with the cleaning
        cleaned = ((*item, writer.staged_lines(item[3].records)) for item in cleaned)
    else:
        cleaned = ((*item, None) for item in cleaned)
    # Reading and cleaning run a chunk or two ahead in a thread: while this one waits for PostgreSQL
    # (looking up or staging a chunk), that one has the interpreter.
    cleaned = _ahead(cleaned, depth=2)
    for numbers, indexes, skipped, result, lines in cleaned:
        ragged.extend(skipped)
        for number, external_id in zip(numbers, result.ids, strict=True):
            if external_id is not None:
                first = first_row_of.setdefault(external_id, number)
                if first != number:
                    duplicates.setdefault(external_id, [first]).append(number)
        bad_rows |= result.bad_rows
        report.error_count += len(result.errors)
        if len(errors) < MAX_REPORTED_ERRORS:
            errors.extend(result.errors[:MAX_REPORTED_ERRORS - len(errors)])
        # A dry run compares the valid rows even once errors appear, so that its list of changes
        # says what importing only the valid rows would do (it writes nothing either way).
        if not ragged and not duplicates and (report.valid_rows_only or not report.error_count
                                              or writer.mode is ImportMode.DRY_RUN):
            counts, creates, updates = writer.take(result.records, lines)
            changes.add(result.records, creates, updates)
            _add(report, counts)
            new_rows.update(record.row for record in creates)
            pending.update(record.row for record in creates)
            pending.update(record.row for _values, _changes, record in updates)
        elif writer.staged:
            writer.discard_staged()  # the file will not be imported as it stands: stop staging
        data_index = indexes[-1] if indexes else data_index
        report_progress("validating", data_index, max(estimate, data_index) * passes)
    del first_row_of
    report.rows = data_index
    if ragged:
        shown = ", ".join(f"line {line} has {count}" for line, count in ragged[:10])
        raise ImportFileError(
            "ragged_rows",
            f"{len(ragged)} row(s) do not have the {width} fields the header has ({shown}"
            f"{', ...' if len(ragged) > 10 else ''}). Look for a stray delimiter or an unclosed quote.",
            details=[{"row": line, "fields": count} for line, count in ragged[:100]],
        )
    if data_index == 0:
        raise ImportFileError("header_only", "The file has a header but no data rows: there is nothing to import.")
    if duplicates:
        shown = "; ".join(f"{key!r} on rows {', '.join(map(str, rows[:5]))}" for key, rows in
                          list(duplicates.items())[:5])
        hint = ""
        if not spec.id_columns and not spec.id_row_prefix:
            hint = (" If one student appears once per module or term (as in OULAD's studentInfo.csv), compose the id "
                    "from several columns, e.g. code_module + code_presentation + id_student.")
        raise ImportFileError(
            "duplicate_ids",
            f"{len(duplicates)} id(s) appear more than once in the file, so it is unclear which row wins: {shown}"
            f"{' ...' if len(duplicates) > 5 else ''}.{hint}",
            details=[{"external_id": key, "rows": rows} for key, rows in list(duplicates.items())[:100]],
        )
    overflow = cleaner.category_overflow()
    if overflow:
        raise ImportFileError(
            "too_many_categories",
            f"Column(s) mapped to new categorical features hold too many distinct values: {', '.join(overflow)}. "
            "Map them as numeric, to a student field, or ignore them.",
        )
    report.blank_columns = dict.fromkeys(blank.values(), 0) if data_index else {}
    report.errors = errors
    report.error_rows = len(bad_rows)
    report.valid_rows = report.rows - report.error_rows
    if report.has_errors and not report.valid_rows_only:
        report.created = report.updated = report.unchanged = 0
        return None
    report.skipped = report.error_rows
    return _Pending(cleaner=cleaner, rows=pending, creates=new_rows, bad_rows=bad_rows)


def _note_values(blank: dict[int, str], rows: list[list[str]]) -> list[list[str]]:
    """Forget the columns of ``blank`` that hold a value in one of ``rows``; return the rows."""
    for index in [index for index in blank if any(row[index].strip() for row in rows)]:
        del blank[index]
    return rows


def _ahead(items: Iterator, depth: int) -> Iterator:
    """Yield ``items``, produced by a worker thread at most ``depth`` items ahead (bounded memory).

    The worker only reads and cleans (no database); an exception there is raised here. It writes
    its reasons in this thread's language (translations are per thread).
    """
    handoff: queue.Queue = queue.Queue(maxsize=depth)
    language = translation.get_language()
    stop = threading.Event()
    done = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            with translation.override(language):
                for item in items:
                    if not put((item, None)):
                        return
            put((done, None))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put((done, exc))
        finally:
            items.close()

    worker = threading.Thread(target=produce, name="import-reader", daemon=True)
    worker.start()
    try:
        while True:
            item, error = handoff.get()
            if error is not None:
                raise error
            if item is done:
                return
            yield item
    finally:
        stop.set()
        worker.join()


def _chunks(reader: TableReader, width: int, size: int):
    """``(line numbers, data-row indexes, rows, ragged (line, fields))`` per chunk of rows."""
    data_index = 0
    for numbers, rows in reader.row_batches(size):
        if all(map(width.__eq__, map(len, rows))):
            yield numbers, list(range(data_index + 1, data_index + len(rows) + 1)), rows, []
            data_index += len(rows)
            continue
        good_numbers, indexes, good_rows, ragged = [], [], [], []
        for number, cells in zip(numbers, rows, strict=True):
            data_index += 1
            if len(cells) != width:
                ragged.append((number, len(cells)))
                continue
            good_numbers.append(number)
            indexes.append(data_index)
            good_rows.append(cells)
        yield good_numbers, indexes, good_rows, ragged


def _add(report: ImportReport, counts: ChunkCounts) -> None:
    report.created += counts.created
    report.updated += counts.updated
    report.unchanged += counts.unchanged


def _create_new_features(institution: Institution, spec: ImportMappingSpec, cleaner: RowCleaner, *, actor,
                         source: str) -> list[str]:
    existing = FeatureDefinition.objects.for_institution(institution)
    position = max((d.position for d in existing), default=-1) + 1
    created = []
    for column in spec.columns.values():
        if column.target != "new_feature":
            continue
        definition = new_feature_definition(column)
        definition.institution = institution
        definition.position = position
        position += 1
        if definition.kind == FeatureKind.CATEGORICAL:
            labels = {item["value"]: item["label"] for item in column.categories}
            values = _sorted_categories(set(labels) | cleaner.new_categories.get(column.feature, set()))
            definition.categories = [{"value": value, "label": labels.get(value, value)} for value in values]
        elif definition.kind == FeatureKind.NUMERIC and definition.min_value is None and definition.max_value is None:
            # Offered on the schema page for an administrator to confirm as the valid range.
            definition.seen_min_value, definition.seen_max_value = cleaner.seen_range(column.feature)
        created.append(definition)
    FeatureDefinition.objects.for_institution(institution).bulk_create(created)
    feature_definitions_created_record(institution=institution, definitions=created, actor=actor, source=source)
    return [definition.key for definition in created]
