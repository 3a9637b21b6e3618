"""Reads for the import pages: recent uploads, the stored preview and its outcome words, the rows behind errors."""

from __future__ import annotations

from django.db.models import QuerySet

from institutions.access import object_for_input_id
from institutions.models import Institution

from ..models import ImportUpload
from .errors import ImportFileError
from .mapping import ImportMappingSpec
from .reading import TableReader
from .service import MAX_COLUMN_VALUES, PREVIEW_HEAD_BYTES, ImportReport, Preview
from .uploads import upload_path

MAX_OUTCOME_WORDS = MAX_COLUMN_VALUES


def access_import_upload(*, institution: Institution, upload_id) -> ImportUpload:
    """The institution's upload with ``upload_id`` from input (Http404 alike for another
    institution's, a missing or a malformed id)."""
    return object_for_input_id(ImportUpload.objects.for_institution(institution), upload_id)


def import_upload_preview(upload: ImportUpload) -> Preview | None:
    """The preview its job stored (None while the file is being read, or if it was refused)."""
    return Preview.from_dict(upload.preview) if upload.preview else None


def import_upload_list(*, institution: Institution) -> QuerySet[ImportUpload]:
    return ImportUpload.objects.for_institution(institution).select_related(
        "uploaded_by", "validation_job", "commit_job").order_by("-created_at", "-id")


def import_outcome_words(*, preview: Preview, spec: ImportMappingSpec) -> list[str]:
    """The words the mapping already knows, plus the distinct values of the outcome column that the
    preview job found in the file's beginning (the page never reads the file). A value seen only
    further down is reported by the validation, and the admin maps it then."""
    words = list(spec.outcome_values)
    outcome_columns = spec.columns_for("outcome")
    if outcome_columns:
        seen = set(words)
        for value in preview.column_values.get(outcome_columns[0], []):
            if len(words) >= MAX_OUTCOME_WORDS:
                break
            if value not in seen:
                seen.add(value)
                words.append(value)
    return words


def import_error_rows(*, upload: ImportUpload, report: ImportReport | None, limit: int = 50) -> list[dict]:
    """The first rows with errors, every cell with its problem (if any), to show them as a form would.

    Only rows in the file's first :data:`PREVIEW_HEAD_BYTES` (the page polls this; the report
    itself lists every problem)."""
    if report is None or not report.errors or not upload_path(upload).exists():
        return []
    by_row: dict[int, dict[str, str]] = {}
    for error in report.errors:
        if error.row not in by_row and len(by_row) >= limit:
            continue
        by_row.setdefault(error.row, {})[error.column] = error.reason
    reader = TableReader(upload_path(upload), original_name=upload.original_name,
                         delimiter=(upload.mapping or {}).get("delimiter") or None, head_bytes=PREVIEW_HEAD_BYTES)
    try:
        header = reader.open().header
        return _rows_with_problems(reader, header, by_row)
    except ImportFileError:  # the report says why the file is refused; no rows to show
        return []


def _rows_with_problems(reader: TableReader, header: list[str], by_row: dict[int, dict[str, str]]) -> list[dict]:
    rows = []
    for number, cells in reader.rows():
        if number in by_row:
            problems = by_row[number]
            rows.append({"row": number, "cells": [
                {"column": name, "value": cells[i] if i < len(cells) else "", "error": problems.get(name, "")}
                for i, name in enumerate(header)
            ], "other_errors": [f"{column}: {reason}" for column, reason in problems.items() if column not in header]})
            if len(rows) >= len(by_row):
                break
    return rows
