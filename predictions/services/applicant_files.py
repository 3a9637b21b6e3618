"""A file of applicants to score: read and checked like an import, then scored, never stored.

The file follows the import's conventions (``docs/imports.md``): CSV (or XLSX) with a header row,
any of the import's delimiters and encodings (the import's own reader opens it), one column
holding the applicant's reference (``ref``, or a header an import reads as the id:
``external_id``, ``student_id``, ``id``...) and one column per feature, named by its key or its
label as the schema page shows them. A column the schema does not know, a protected attribute,
a retired feature, a feature known only after enrolment, a value that does not fit its feature,
a missing or repeated reference: every problem is reported (line, column, reason) and nothing
is scored.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from institutions.models import Institution
from students.importing.errors import CellError, ImportFileError
from students.importing.mapping import normalise_header
from students.importing.reading import TableReader

from ..factor_sentences import present_factors
from .applicant_scoring import (
    MAX_FILE_BYTES,
    MAX_FILE_ROWS,
    ApplicantRecord,
    ApplicantSchema,
    ApplicantScore,
    applicant_schema,
    applicant_values_clean,
    ref_clean,
)

# Headers read as the applicant's reference: the page's own word and the import's id headers.
REF_HEADERS = frozenset({"ref", "reference", "applicant", "applicant_id", "applicant_ref", "application_id",
                         "external_id", "student_id", "id_student", "studentid", "student_number", "student_no",
                         "id", "sis_id", "matricula", "student"})
MAX_REPORTED_PROBLEMS = 200
FACTOR_COLUMNS = 5


@dataclass
class ApplicantFileRowsInvalid(Exception):
    """Rejected cells (the first ``MAX_REPORTED_PROBLEMS``) and how many there were in all."""

    problems: list[CellError]
    count: int


def _column_features(header: Sequence[str], schema: ApplicantSchema) -> tuple[int, list]:
    """(index of the ref column, [(index, header, definition)]) or ImportFileError naming every
    column that cannot be read."""
    definitions = list(schema.definitions.values())
    by_key = schema.definitions
    # A column may be named by the feature's default label or by its label in the reader's language.
    language = translation.get_language()
    by_label = {normalise_header(label): definition for definition in definitions
                for label in (definition.label, definition.label_in(language))}
    refs = [index for index, name in enumerate(header) if normalise_header(name) in REF_HEADERS]
    problems = []
    if not refs:
        problems.append(_("No column holds the applicant's reference: name one “ref” (or external_id, student_id, "
                          "id, as in an import)."))
    elif len(refs) > 1:
        problems.append(_("Several columns could hold the applicant's reference (%(columns)s): keep one.") % {
            "columns": ", ".join(header[index] for index in refs)})
    columns, unknown, protected, retired, later, seen = [], [], [], [], [], {}
    for index, name in enumerate(header):
        if index in refs:
            continue
        definition = by_key.get(name.strip()) or by_key.get(normalise_header(name)) or by_label.get(
            normalise_header(name))
        if definition is None:
            unknown.append(name)
        elif definition.protected:
            protected.append(name)
        elif definition.is_retired:
            retired.append(name)
        elif definition.key in schema.later:
            later.append(name)
        elif definition.key in seen:
            problems.append(_("Columns “%(first)s” and “%(second)s” both give %(feature)s: keep one.") % {
                "first": seen[definition.key], "second": name, "feature": definition.label})
        else:
            seen[definition.key] = name
            columns.append((index, name, definition))
    if unknown:
        problems.append(_("These columns are not features of the institution's schema: %(columns)s. Name each "
                          "column by a feature's key or label, or remove it.") % {"columns": ", ".join(unknown)})
    if protected:
        problems.append(_("These columns are protected attributes, never inputs for scoring applicants: "
                          "%(columns)s. Remove them.") % {"columns": ", ".join(protected)})
    if retired:
        problems.append(_("These columns are retired features, no longer model inputs: %(columns)s. Remove "
                          "them.") % {"columns": ", ".join(retired)})
    if later:
        problems.append(_("These columns are known only after %(stage)s, so an applicant has no such value yet: "
                          "%(columns)s. Remove them.") % {"stage": schema.stage.label, "columns": ", ".join(later)})
    if problems:
        raise ImportFileError("invalid_columns", " ".join(problems))
    return refs[0], columns


def applicant_file_read(*, institution: Institution, path: Path | str, original_name: str,
                        size: int) -> list[ApplicantRecord]:
    """The file's records, checked; ImportFileError for the file as a whole (too large, not a
    table, columns), ApplicantFileRowsInvalid for its cells."""
    if size > MAX_FILE_BYTES:
        raise ImportFileError("file_too_large", _(
            "The file is %(size).1f MB; a file of applicants to score holds at most %(limit)d MB (and "
            "%(rows)s rows). Split it into several files.") % {
            "size": size / 1_048_576, "limit": MAX_FILE_BYTES // 1_048_576, "rows": f"{MAX_FILE_ROWS:,}"})
    schema = applicant_schema(institution=institution)
    reader = TableReader(path, original_name=original_name)
    info = reader.open()
    ref_index, columns = _column_features(info.header, schema)
    records, problems, seen = [], [], set()
    for rows_read, (line, row) in enumerate(reader.rows(), start=1):
        if rows_read > MAX_FILE_ROWS:
            raise ImportFileError("too_many_rows", ngettext(
                "The file holds more than %(limit)s applicant; score at most %(limit)s at once (split the file).",
                "The file holds more than %(limit)s applicants; score at most %(limit)s at once (split the file).",
                MAX_FILE_ROWS) % {"limit": f"{MAX_FILE_ROWS:,}"})
        cells = list(row) + [""] * (len(info.header) - len(row))
        reasons: list[tuple[str, str, str]] = []
        if len(row) > len(info.header):
            reasons.append(("", "", _("the row has more cells than the header has columns")))
        found: dict[str, object] = {}
        ref = ref_clean(cells[ref_index], found)
        if ref is not None and ref in seen:
            found["ref"] = _("appears twice in this file")
        seen.add(ref)
        if "ref" in found:
            reasons.append((info.header[ref_index], cells[ref_index], str(found["ref"])))
        values, errors = applicant_values_clean(schema, {definition.key: cells[index]
                                                         for index, _name, definition in columns})
        reasons += [(name, cells[index], errors[definition.key]) for index, name, definition in columns
                    if definition.key in errors]
        if reasons:
            problems += [CellError(line, column, str(value), reason) for column, value, reason in reasons]
        else:
            records.append(ApplicantRecord(ref=ref, features=values))
    if problems:
        raise ApplicantFileRowsInvalid(problems=problems[:MAX_REPORTED_PROBLEMS], count=len(problems))
    if not records:
        raise ImportFileError("empty_file", _("The file has a header but no applicant: add one row per applicant."))
    return records


def applicant_scores_csv_rows(scores: Iterator[ApplicantScore], *, model_version: int, labels: Mapping[str, str],
                              language: str | None) -> Iterator[list]:
    """The answer's rows: a header, then per applicant its reference, risk, band, the model
    version and its top factors as the profile words them (in ``language``, with the
    institution's ``labels``: the rows are made while the answer streams, after the request)."""
    yield ["ref", "risk_percent", "band", "model_version",
           *(f"factor_{number}" for number in range(1, FACTOR_COLUMNS + 1))]
    for score in scores:
        with translation.override(language):
            factors = present_factors(score.factors[:FACTOR_COLUMNS], labels)
        texts = [factor.get("text") or factor.get("label") or "" for factor in factors]
        yield [score.ref, f"{100 * score.risk:.1f}", score.band, model_version,
               *texts, *[""] * (FACTOR_COLUMNS - len(texts))]
