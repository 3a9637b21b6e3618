"""Fuzzing the import service (issue 16, item 6): random bytes, random CSV shapes and random
workbooks, each previewed and imported with the suggested mapping as the upload page does. Every
input ends in a specific import error (:class:`ImportFileError`, with a code and a message) or
in a report; never in another exception. A refused file, or a report with errors, leaves the
database exactly as it was (students, their feature values, features, change rows, in both
institutions).

Bounded: a fixed number of examples per shape, derandomized so CI sees the same inputs each run
(set ``FUZZ_EXAMPLES`` to run more, with fresh random inputs, locally).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

from students.importing import ImportFileError, import_file, import_preview

from .import_helpers import database_state

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "120"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize="FUZZ_EXAMPLES" not in os.environ, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])

# Names the fixture tenants' schema knows, names the mapping suggests targets for, and noise.
KNOWN_HEADERS = ["name", "email", "units_approved", "tuition_up_to_date", "gender", "outcome", "program", "cohort",
                 "status", "outcome_date", "Target", "age", "grade"]
NASTY_TEXT = st.text(alphabet=st.sampled_from(list("ab,;|\t\"' \r\n\x01é€✓0123456789.-+eE_=")), max_size=12)
CELL = st.one_of(
    st.sampled_from(["", "0", "1", "12", "-4", "1e400", "10" * 200, "3,5", "1_9", "yes", "no", "f", "m", "x",
                     "Dropout", "Graduate", "Enrolled", "graduated", "2024-02-30", "2024-01-15", "NaN", "inf",
                     "=cmd()", "S001", "N100", " S001 ", "active", "on leave", "a\x00b", "x" * 300]),
    NASTY_TEXT,
    st.integers(min_value=-10**30, max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


@st.composite
def headers(draw, noise) -> list:
    """Mostly a plausible header (an id column first, known names, no repeats); sometimes anything."""
    if draw(st.integers(min_value=0, max_value=4)) == 0:
        return draw(st.lists(st.one_of(st.sampled_from(KNOWN_HEADERS), noise), min_size=1, max_size=8))
    names = draw(st.lists(st.one_of(st.sampled_from(KNOWN_HEADERS), noise), max_size=7, unique_by=str))
    return [draw(st.sampled_from(["student_id", "id", "Student ID"])), *names]


def _import(institution, path, name):
    """What the page does: preview, then import with the suggested mapping."""
    mapping = import_preview(institution=institution, path=path, original_name=name).mapping
    return import_file(institution=institution, path=path, original_name=name, mapping=mapping, commit=True)


def check_outcome(tenants, path, name):
    a, b = tenants
    before = database_state(a.institution, b.institution)
    try:
        report = _import(a.institution, path, name)
    except ImportFileError as exc:
        assert exc.code and exc.message, exc
        assert len(exc.message) <= 2000
        assert database_state(a.institution, b.institution) == before, f"refused ({exc.code}) but wrote"
        return
    assert all(len(error.value) <= 200 for error in report.errors)
    if report.has_errors and not report.committed:
        assert database_state(a.institution, b.institution) == before, "invalid but wrote"
    else:
        assert report.committed and report.error_count == 0
    # Other institutions never change.
    assert database_state(b.institution) == before[1:]


@st.composite
def csv_files(draw) -> bytes:
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    header = draw(headers(NASTY_TEXT))
    width = len(header)
    row = st.lists(CELL, min_size=width, max_size=width)
    if draw(st.integers(min_value=0, max_value=5)) == 0:
        row = st.lists(CELL, min_size=max(0, width - 2), max_size=width + 2)  # ragged
    ids = st.one_of(st.sampled_from(["S001", "N100", "S002", ""]), st.integers(0, 30).map(lambda i: f"F{i}"))
    rows = draw(st.lists(st.tuples(ids, row).map(lambda pair: [pair[0], *pair[1][1:]] if pair[1] else []),
                         max_size=25))
    buffer = io.StringIO()
    if draw(st.booleans()):
        writer = csv.writer(buffer, delimiter=delimiter, lineterminator=draw(st.sampled_from(["\r\n", "\n", "\r"])))
        writer.writerow(header)
        writer.writerows(rows)
    else:  # hand-joined: unbalanced quotes and stray delimiters stay as they are
        buffer.write("\n".join(delimiter.join(row) for row in [header, *rows]))
    text = buffer.getvalue()
    if draw(st.booleans()):
        text += draw(st.sampled_from(["\n", "\n\n", f"\n{delimiter * width}\n", "\n   \n"]))
    if draw(st.integers(min_value=0, max_value=5)) == 0:
        text = f"sep={delimiter}\n" + text
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "cp1252", "utf-16"]))
    return text.encode(encoding, errors="replace")


@st.composite
def xlsx_files(draw) -> bytes:
    value = st.one_of(
        st.none(), st.booleans(), st.integers(min_value=-10**15, max_value=10**15),
        st.floats(allow_nan=False, allow_infinity=False),
        st.dates(min_value=dt.date(1900, 3, 1), max_value=dt.date(2100, 1, 1)),
        st.sampled_from(["", "S001", "N100", "Dropout", "Graduate", "yes", "f", "m", "12", "x"]),
        st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=15),
    )
    noise = st.one_of(st.sampled_from([None, 3]), st.text(min_size=1, max_size=6).filter(str.isprintable))
    header = draw(headers(noise))
    width = len(header)
    ids = st.one_of(st.sampled_from(["S001", "N100", None, 7]), st.integers(0, 30).map(lambda i: f"F{i}"))
    cells = st.lists(value, min_size=width - 1, max_size=width - 1)
    if draw(st.integers(min_value=0, max_value=5)) == 0:
        cells = st.lists(value, max_size=width + 1)  # ragged
    rows = draw(st.lists(st.tuples(ids, cells).map(lambda pair: [pair[0], *pair[1]]), max_size=15))
    workbook = Workbook()
    sheet = workbook.active
    for row in [header, *rows]:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


@FUZZ
@given(content=st.binary(max_size=4000), name=st.sampled_from(["f.csv", "f.xlsx", "f.txt", "f"]))
def test_random_bytes_end_in_an_import_error_or_a_report(tenants, tmp_path_factory, content, name):
    path = tmp_path_factory.mktemp("fuzz") / name
    path.write_bytes(content)
    check_outcome(tenants, path, name)


@FUZZ
@given(content=csv_files())
def test_random_csv_shapes_end_in_an_import_error_or_a_report(tenants, tmp_path_factory, content):
    path = tmp_path_factory.mktemp("fuzz") / "shape.csv"
    path.write_bytes(content)
    check_outcome(tenants, path, "shape.csv")


@FUZZ
@given(content=xlsx_files(), truncate=st.one_of(*[st.none()] * 4, st.integers(min_value=1, max_value=3000)))
def test_random_workbooks_end_in_an_import_error_or_a_report(tenants, tmp_path_factory, content, truncate):
    path = tmp_path_factory.mktemp("fuzz") / "book.xlsx"
    path.write_bytes(content[:truncate] if truncate else content)
    check_outcome(tenants, path, "book.xlsx")
