"""Reads for the import pages: recent uploads, outcome words in a file, the rows behind errors."""

from __future__ import annotations

from django.db.models import QuerySet

from institutions.models import Institution

from ..models import ImportUpload
from .mapping import ImportMappingSpec
from .reading import TableReader
from .service import ImportReport
from .uploads import upload_path

MAX_OUTCOME_WORDS = 30


def import_upload_list(*, institution: Institution) -> QuerySet[ImportUpload]:
    return ImportUpload.objects.for_institution(institution).select_related(
        "uploaded_by", "validation_job", "commit_job").order_by("-created_at", "-id")


def import_outcome_words(*, upload: ImportUpload, spec: ImportMappingSpec, header: list[str]) -> list[str]:
    """Distinct values of the outcome column (whole file), plus words the mapping already knows."""
    words = list(spec.outcome_values)
    outcome_columns = spec.columns_for("outcome")
    if outcome_columns:
        reader = TableReader(upload_path(upload), original_name=upload.original_name, delimiter=spec.delimiter or None)
        reader.open()
        position = header.index(outcome_columns[0])
        seen = set(words)
        for _number, cells in reader.rows():
            if position < len(cells):
                value = cells[position].strip()
                if value and value not in seen:
                    seen.add(value)
                    words.append(value)
                    if len(words) >= MAX_OUTCOME_WORDS:
                        break
    return words


def import_error_rows(*, upload: ImportUpload, report: ImportReport | None, limit: int = 50) -> list[dict]:
    """The first rows with errors, every cell with its problem (if any), to show them as a form would."""
    if report is None or not report.errors or not upload_path(upload).exists():
        return []
    by_row: dict[int, dict[str, str]] = {}
    for error in report.errors:
        if error.row not in by_row and len(by_row) >= limit:
            continue
        by_row.setdefault(error.row, {})[error.column] = error.reason
    reader = TableReader(upload_path(upload), original_name=upload.original_name,
                         delimiter=(upload.mapping or {}).get("delimiter") or None)
    header = reader.open().header
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
