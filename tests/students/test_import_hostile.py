"""Hostile files (issue 16, item 4): each refused with a specific message before anything is
written, within bounded memory and time; reports and job listings stay small whatever the file."""

from __future__ import annotations

import io
import struct
import time
import tracemalloc
import zipfile
from io import StringIO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse
from openpyxl import Workbook

from institutions.models import Job, JobStatus
from students.importing import ImportFileError, import_file, import_preview
from students.importing.limits import xlsx_check
from students.importing.service import MAX_REPORTED_ERRORS, PREVIEW_HEAD_BYTES
from students.models import FeatureDefinition, ImportUpload

from .import_helpers import GOOD_CSV, database_state, latest_upload, write_file
from .test_import_api import post_file
from .test_import_pages import form_data, upload

pytestmark = pytest.mark.django_db

HEADER = "student_id,name,email,units_approved,tuition_up_to_date,gender,outcome\r\n"


def padding_rows(count: int, start: int = 0) -> str:
    return "".join(f"P{i:06d},Name {i},p{i}@example.edu,{i % 30},yes,f,Enrolled\r\n"
                   for i in range(start, start + count))


def run(institution, path, *, commit=True):
    mapping = import_preview(institution=institution, path=path).mapping
    return import_file(institution=institution, path=path, mapping=mapping, commit=commit)


def refusal(institution, path, *, commit=True) -> ImportFileError:
    with pytest.raises(ImportFileError) as caught:
        run(institution, path, commit=commit)
    return caught.value


def xlsx_bytes(rows) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def rewrite_parts(workbook: bytes, parts: dict) -> bytes:
    """The workbook with some parts replaced: bytes, or a function writing to the part's stream."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(workbook)) as source, \
            zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as target:
        for name in source.namelist():
            if name not in parts:
                target.writestr(name, source.read(name))
        for name, content in parts.items():
            if callable(content):
                with target.open(name, "w", force_zip64=True) as stream:
                    content(stream)
            else:
                target.writestr(name, content)
    return out.getvalue()


SHEET = "xl/worksheets/sheet1.xml"


def sheet_edited(tmp_path, name: str, old: bytes, new: bytes, rows=None):
    """A workbook file whose first sheet's XML has ``old`` replaced by ``new`` (which must occur)."""
    workbook = xlsx_bytes(rows or GOOD_ROWS)
    with zipfile.ZipFile(io.BytesIO(workbook)) as archive:
        sheet = archive.read(SHEET)
    assert old in sheet
    return write_file(tmp_path, name, rewrite_parts(workbook, {SHEET: sheet.replace(old, new)}))


GOOD_ROWS = [["student_id", "name", "units_approved", "gender"], ["X1", "Ann", 3, "f"], ["X2", "Bo", 4, "m"]]


# --- NUL bytes ------------------------------------------------------------------------------------

def test_nul_byte_after_the_first_64_kb_is_refused_with_its_line_at_preview(tenants, tmp_path):
    a, b = tenants
    content = HEADER + padding_rows(1500) + "Z1,Ze\x00ro,z@example.edu,3,yes,f,Enrolled\r\n" + padding_rows(5, 2000)
    assert content.index("\x00") > 64 * 1024
    path = write_file(tmp_path, "nul.csv", content)
    before = database_state(a.institution, b.institution)

    with pytest.raises(ImportFileError) as caught:
        import_preview(institution=a.institution, path=path)
    assert caught.value.code == "nul_byte"
    assert "NUL byte" in caught.value.message and "line 1502" in caught.value.message
    assert caught.value.details[0]["line"] == 1502
    assert database_state(a.institution, b.institution) == before


def test_nul_byte_beyond_the_preview_is_refused_by_validation_and_nothing_is_written(tenants, tmp_path):
    a, b = tenants
    rows = padding_rows(40_000)
    assert len(rows) > PREVIEW_HEAD_BYTES
    content = HEADER + rows + "Z1,Zero,z@example.edu,3,yes,f,Enrol\x00led\r\n"
    path = write_file(tmp_path, "late-nul.csv", content)
    mapping = import_preview(institution=a.institution, path=path).mapping  # the head is clean
    before = database_state(a.institution, b.institution)

    for commit in (False, True):
        with pytest.raises(ImportFileError) as caught:
            import_file(institution=a.institution, path=path, mapping=mapping, commit=commit)
        assert caught.value.code == "nul_byte" and "line 40002" in caught.value.message
    assert database_state(a.institution, b.institution) == before


def test_nul_byte_beyond_the_preview_never_shows_ready_to_import_on_the_page(
    client, tenants, tmp_path, django_capture_on_commit_callbacks
):
    a, b = tenants
    content = (HEADER + padding_rows(40_000) + "Z1,Zero,z@example.edu,3,yes,f,Enrol\x00led\r\n").encode()
    client.force_login(a.admin)
    before = database_state(a.institution, b.institution)
    assert upload(client, "alpha", "late-nul.csv", content).status_code == 302
    upload_obj = latest_upload(a.institution)
    url = reverse("import-mapping", args=["alpha", upload_obj.pk])
    form = client.get(url).context["form"]
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, form_data(form))

    page = client.get(reverse("import-detail", args=["alpha", upload_obj.pk])).content.decode()
    assert "Ready to import" not in page and "NUL byte" in page and "line 40002" in page
    assert "unexpected" not in page
    assert database_state(a.institution, b.institution) == before


def test_nul_byte_through_the_api_fails_the_job_with_its_code_and_line(
    api_client, tenants, django_capture_on_commit_callbacks
):
    a, b = tenants
    api_client.force_authenticate(a.admin)
    before = database_state(a.institution, b.institution)
    content = (HEADER + padding_rows(1500) + "Z1,Ze\x00ro,z@example.edu,3,yes,f,Enrolled\r\n").encode()
    response = post_file(api_client, "alpha", "nul.csv", content, django_capture_on_commit_callbacks)
    assert response.status_code == 202  # the request only stores the file: the worker reads it
    job = api_client.get(response.json()["job_url"]).json()
    assert job["status"] == JobStatus.FAILED and job["result"]["file_error"]["code"] == "nul_byte"
    assert "line 1502" in job["error"]
    assert database_state(a.institution, b.institution) == before


def test_nul_byte_beyond_the_preview_through_the_api_fails_the_job_with_the_message(
    api_client, tenants, django_capture_on_commit_callbacks
):
    a, b = tenants
    api_client.force_authenticate(a.admin)
    before = database_state(a.institution, b.institution)
    content = (HEADER + padding_rows(40_000) + "Z1,Zero,z@example.edu,3,yes,f,Enrol\x00led\r\n").encode()
    response = post_file(api_client, "alpha", "late.csv", content, django_capture_on_commit_callbacks)
    assert response.status_code == 202
    job = api_client.get(response.json()["job_url"]).json()
    assert job["status"] == JobStatus.FAILED and job["result"]["file_error"]["code"] == "nul_byte"
    assert "unexpected" not in job["error"] and "line 40002" in job["error"]
    assert database_state(a.institution, b.institution) == before


def test_nul_byte_in_the_cli_is_a_command_error_not_a_traceback(tenants, tmp_path):
    a, b = tenants
    content = HEADER + padding_rows(40_000) + "Z1,Zero,z@example.edu,3,yes,f,Enrol\x00led\r\n"
    path = write_file(tmp_path, "late.csv", content)
    before = database_state(a.institution, b.institution)
    with pytest.raises(CommandError, match=r"NUL byte .* on line 40002 .*\[nul_byte\]"):
        call_command("import_students", "alpha", str(path), "--no-progress", stdout=StringIO())
    assert database_state(a.institution, b.institution) == before


def test_a_nul_in_a_cell_value_is_named_by_its_cell():
    from students.importing.reading import _bad_xlsx_cell

    error = _bad_xlsx_cell(3, 2, "B\x00o")
    assert error.code == "nul_byte" and "cell B3" in error.message


# --- XLSX limits --------------------------------------------------------------------------------

def _bomb_sheet(stream) -> None:
    stream.write(b'<?xml version="1.0" encoding="UTF-8"?><worksheet '
                 b'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
                 b'<row r="1"><c r="A1" t="inlineStr"><is><t>student_id</t></is></c></row>'
                 b'<row r="2"><c r="A2" t="inlineStr"><is><t>')
    block = b"A" * (1 << 20)
    for _ in range(200):  # 200 MiB of one cell's text
        stream.write(block)
    stream.write(b"</t></is></c></row></sheetData></worksheet>")


@pytest.fixture(scope="module")
def zip_bomb() -> bytes:
    return rewrite_parts(xlsx_bytes(GOOD_ROWS), {SHEET: _bomb_sheet})


def test_a_small_workbook_unzipping_to_200_mib_is_refused_in_bounded_memory(tenants, tmp_path, zip_bomb):
    a, b = tenants
    assert len(zip_bomb) < 400 * 1024
    path = write_file(tmp_path, "bomb.xlsx", zip_bomb)
    before = database_state(a.institution, b.institution)

    tracemalloc.start()
    try:
        with pytest.raises(ImportFileError) as caught:
            xlsx_check(path)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.code == "xlsx_too_large" and "100 MB" in caught.value.message
    assert peak < 8 * 1024 * 1024
    error = refusal(a.institution, path)
    assert error.code == "xlsx_too_large" and "save the sheet as CSV" in error.message
    assert database_state(a.institution, b.institution) == before


def test_a_workbook_is_counted_while_it_streams_in_bounded_memory(tenants, tmp_path, settings):
    """Two million cells in 30 MB of XML: refused at the cell limit, never holding more than a few reads."""
    a, b = tenants
    settings.IMPORT_XLSX_MAX_CELLS = 1_000_000
    row = b"<row>" + b"<c><v>1</v></c>" * 1000 + b"</row>"

    def many_cells(stream):
        stream.write(b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>')
        for _ in range(2000):
            stream.write(row)
        stream.write(b"</sheetData></worksheet>")

    path = write_file(tmp_path, "cells.xlsx", rewrite_parts(xlsx_bytes(GOOD_ROWS), {SHEET: many_cells}))
    tracemalloc.start()
    try:
        with pytest.raises(ImportFileError) as caught:
            xlsx_check(path)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.code == "xlsx_too_many_cells" and "1,000,000 cells" in caught.value.message
    assert peak < 8 * 1024 * 1024
    before = database_state(a.institution, b.institution)
    assert refusal(a.institution, path).code == "xlsx_too_many_cells"
    assert database_state(a.institution, b.institution) == before


def test_a_single_text_of_megabytes_is_refused_without_being_held(tmp_path, settings):
    settings.IMPORT_XLSX_MAX_UNCOMPRESSED_BYTES = 400 * 1024 * 1024  # the declared sizes pass: the stream decides
    path = write_file(tmp_path, "text.xlsx", rewrite_parts(xlsx_bytes(GOOD_ROWS), {SHEET: _bomb_sheet}))
    tracemalloc.start()
    try:
        with pytest.raises(ImportFileError) as caught:
            xlsx_check(path)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.code == "binary_file" and "1 MB of XML without a tag" in caught.value.message
    assert peak < 8 * 1024 * 1024


def test_a_workbook_whose_zip_declares_small_sizes_is_still_bounded_and_refused(tenants, tmp_path, zip_bomb):
    """Declared sizes lie: no more than the declared size is inflated, and the part's CRC exposes the lie."""
    a, b = tenants
    workbook = bytearray(zip_bomb)
    name = b"xl/worksheets/sheet1.xml"
    patched = 0
    start = 0
    while (found := workbook.find(name, start)) >= 0:
        header = found - 46  # a central directory entry: the name follows 46 bytes of header
        if header >= 0 and workbook[header:header + 4] == b"PK\x01\x02":
            struct.pack_into("<I", workbook, header + 24, 1024)  # the declared uncompressed size
            patched += 1
        start = found + 1
    assert patched == 1
    path = write_file(tmp_path, "liar.xlsx", bytes(workbook))
    with zipfile.ZipFile(path) as archive:
        assert archive.getinfo(name.decode()).file_size == 1024
    before = database_state(a.institution, b.institution)
    error = refusal(a.institution, path)
    assert error.code == "binary_file" and "CRC" in error.message
    assert database_state(a.institution, b.institution) == before


def test_a_million_shared_strings_in_a_small_workbook_are_refused_quickly(tenants, tmp_path):
    a, b = tenants
    strings = (b'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/'
               b'spreadsheetml/2006/main" count="1000000" uniqueCount="1000000">'
               + b"".join(b"<si><t>%d</t></si>" % i for i in range(1_000_000)) + b"</sst>")
    workbook = with_shared_strings(xlsx_bytes(GOOD_ROWS), strings)
    assert len(workbook) < 3 * 1024 * 1024
    path = write_file(tmp_path, "strings.xlsx", workbook)
    before = database_state(a.institution, b.institution)
    started = time.perf_counter()
    error = refusal(a.institution, path)
    assert time.perf_counter() - started < 10
    assert error.code == "xlsx_too_many_strings" and "500,000" in error.message
    assert database_state(a.institution, b.institution) == before


def with_shared_strings(workbook: bytes, strings: bytes) -> bytes:
    """The workbook with a shared-strings part, declared as Excel declares it (openpyxl writes inline strings)."""
    with zipfile.ZipFile(io.BytesIO(workbook)) as archive:
        types = archive.read("[Content_Types].xml").replace(
            b"</Types>", b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-'
                         b'officedocument.spreadsheetml.sharedStrings+xml"/></Types>')
        rels = archive.read("xl/_rels/workbook.xml.rels").replace(
            b"</Relationships>", b'<Relationship Id="rIdStrings" Type="http://schemas.openxmlformats.org/'
                                 b'officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>'
                                 b"</Relationships>")
    return rewrite_parts(workbook, {"[Content_Types].xml": types, "xl/_rels/workbook.xml.rels": rels,
                                    "xl/sharedStrings.xml": strings})


def test_shared_strings_within_the_limit_are_read(tenant_a, tmp_path):
    strings = (b'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/'
               b'spreadsheetml/2006/main"><si><t>S1</t></si><si><t>Ann</t></si></sst>')
    workbook = with_shared_strings(xlsx_bytes([["student_id", "name"], ["placeholder", "x"]]), strings)
    with zipfile.ZipFile(io.BytesIO(workbook)) as archive:
        sheet = archive.read(SHEET)
    sheet = sheet.replace(b'<c r="A2" t="inlineStr"><is><t>placeholder</t></is></c>', b'<c r="A2" t="s"><v>0</v></c>')
    sheet = sheet.replace(b'<c r="B2" t="inlineStr"><is><t>x</t></is></c>', b'<c r="B2" t="s"><v>1</v></c>')
    path = write_file(tmp_path, "strings.xlsx", rewrite_parts(workbook, {SHEET: sheet}))
    assert import_preview(institution=tenant_a.institution, path=path).rows == [["S1", "Ann"]]


def test_a_workbook_with_more_cells_than_the_limit_is_refused(tenants, tmp_path, settings):
    a, b = tenants
    settings.IMPORT_XLSX_MAX_CELLS = 100
    rows = [GOOD_ROWS[0]] + [[f"X{i}", "Ann", 3, "f"] for i in range(30)]
    path = write_file(tmp_path, "cells.xlsx", xlsx_bytes(rows))
    before = database_state(a.institution, b.institution)
    error = refusal(a.institution, path)
    assert error.code == "xlsx_too_many_cells" and "100 cells" in error.message
    assert database_state(a.institution, b.institution) == before


@pytest.mark.parametrize("old,new,code,fragments", [
    # XML holds no NUL: a workbook spelling one is refused as unreadable, with the parser's position.
    (b"<t>Bo</t>", b"<t>B&#0;o</t>", "binary_file", ["invalid character", "line 1"]),
    (b'r="D3"', b'r="XFD3"', "too_many_columns", ["16,384", "at most 500"]),
    (b"<worksheet ", b'<!DOCTYPE worksheet [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><worksheet ',
     "xlsx_dtd", [SHEET, "DTD"]),
    (b'<row r="3"', b'<row r="99999999"', "binary_file", ["99,999,999", "beyond Excel's last row"]),
], ids=["nul-character", "column-XFD", "dtd", "row-beyond-excel"])
def test_a_hostile_sheet_is_refused_with_its_message(tenants, tmp_path, old, new, code, fragments):
    a, b = tenants
    path = sheet_edited(tmp_path, "hostile.xlsx", old, new)
    before = database_state(a.institution, b.institution)
    error = refusal(a.institution, path)
    assert error.code == code and all(fragment in error.message for fragment in fragments), error.message
    assert database_state(a.institution, b.institution) == before


def test_a_workbook_with_lying_dimensions_reads_only_its_cells(tenants, tmp_path):
    a, _b = tenants
    path = sheet_edited(tmp_path, "dims.xlsx", b'<dimension ref="A1:D3" />', b'<dimension ref="A1:XFD1048576" />')
    report = run(a.institution, path, commit=False)
    assert (report.rows, report.created, report.error_count) == (2, 2, 0)


def test_a_damaged_sheet_is_a_specific_error_not_a_crash(tenants, tmp_path):
    a, b = tenants
    workbook = xlsx_bytes(GOOD_ROWS)
    path = write_file(tmp_path, "broken.xlsx", rewrite_parts(
        workbook, {SHEET: b"<worksheet><sheetData><row><c r='A1'"}))
    before = database_state(a.institution, b.institution)
    error = refusal(a.institution, path)
    assert error.code == "binary_file" and "cannot be read as XLSX" in error.message
    assert database_state(a.institution, b.institution) == before


# --- columns and new features -------------------------------------------------------------------

def test_a_file_with_more_columns_than_the_cap_is_refused_with_what_to_do(tenants, tmp_path):
    a, b = tenants
    header = ["student_id"] + [f"c{i}" for i in range(5000)]
    row = ["S1"] + ["1"] * 5000
    path = write_file(tmp_path, "wide.csv", ",".join(header) + "\n" + ",".join(row) + "\n")
    before = database_state(a.institution, b.institution)
    with pytest.raises(ImportFileError) as caught:
        import_preview(institution=a.institution, path=path)
    assert caught.value.code == "too_many_columns"
    assert "5001 columns" in caught.value.message and "at most 500" in caught.value.message
    assert "Remove the columns you do not need" in caught.value.message
    assert database_state(a.institution, b.institution) == before


def test_a_mapping_creating_more_new_features_than_the_cap_is_refused_and_creates_none(tenants, tmp_path, settings):
    a, b = tenants
    settings.IMPORT_MAX_NEW_FEATURES = 3
    header = ["student_id"] + [f"extra_{i}" for i in range(5)]
    path = write_file(tmp_path, "new.csv", ",".join(header) + "\nS1,1,2,3,4,5\n")
    before = database_state(a.institution, b.institution)
    error = refusal(a.institution, path)
    assert error.code == "too_many_new_features"
    assert "create 5 new features" in error.message and "at most 3" in error.message and "ignore" in error.message
    assert database_state(a.institution, b.institution) == before
    assert not FeatureDefinition.objects.for_institution(a.institution).filter(key__startswith="extra").exists()


def test_the_mapping_page_says_why_too_many_new_features_are_refused(
    client, tenants, settings, django_capture_on_commit_callbacks
):
    a, b = tenants
    settings.IMPORT_MAX_NEW_FEATURES = 2
    client.force_login(a.admin)
    content = b"student_id,extra_1,extra_2,extra_3\nS1,1,2,3\n"
    before = database_state(a.institution, b.institution)
    upload(client, "alpha", "new.csv", content)
    upload_obj = latest_upload(a.institution)
    url = reverse("import-mapping", args=["alpha", upload_obj.pk])
    form = client.get(url).context["form"]
    response = client.post(url, form_data(form))
    assert response.status_code == 400
    assert "would create 3 new features" in response.content.decode()
    upload_obj.refresh_from_db()
    assert upload_obj.validation_job_id is None  # only its preview job ran
    assert list(Job.objects.for_institution(a.institution).values_list("pk", flat=True)) == [upload_obj.preview_job_id]
    assert database_state(a.institution, b.institution) == before


def test_a_header_name_longer_than_200_characters_is_refused(tenants, tmp_path):
    a, b = tenants
    path = write_file(tmp_path, "long-header.csv", "student_id," + "h" * 300 + "\nS1,1\n")
    before = database_state(a.institution, b.institution)
    error = refusal(a.institution, path)
    assert error.code == "header_too_long" and "Column(s) 2" in error.message and "200 characters" in error.message
    assert database_state(a.institution, b.institution) == before


def test_an_overlong_csv_cell_is_refused_with_its_line(tenants, tmp_path):
    a, b = tenants
    path = write_file(tmp_path, "long-cell.csv", GOOD_CSV + "S9,\"" + "n" * 200_000 + "\",s@example.edu,1,yes,f,x\r\n")
    before = database_state(a.institution, b.institution)
    error = refusal(a.institution, path)
    assert error.code == "malformed_csv" and "line 4" in error.message
    assert "field larger than field limit" in error.message
    assert database_state(a.institution, b.institution) == before


def test_a_workbook_cell_longer_than_excel_allows_is_refused_with_the_cell(tenants, tmp_path):
    a, b = tenants
    # openpyxl cuts what it writes to Excel's limit; another program's workbook need not.
    path = sheet_edited(tmp_path, "long.xlsx", b"<t>Bo</t>", b"<t>" + b"n" * 40_000 + b"</t>")
    before = database_state(a.institution, b.institution)
    error = refusal(a.institution, path)
    assert error.code == "cell_too_long" and "cell B3" in error.message and "32,767" in error.message
    assert database_state(a.institution, b.institution) == before


def test_a_workbook_of_more_than_a_thousand_parts_is_refused(tenants, tmp_path):
    a, b = tenants
    parts = {f"xl/media/image{i}.png": b"x" for i in range(1001)}
    path = write_file(tmp_path, "parts.xlsx", rewrite_parts(xlsx_bytes(GOOD_ROWS), parts))
    before = database_state(a.institution, b.institution)
    error = refusal(a.institution, path)
    assert error.code == "xlsx_too_large" and "parts" in error.message
    assert database_state(a.institution, b.institution) == before


# --- sep= line, trailing lines ------------------------------------------------------------------

def test_excel_sep_line_names_the_delimiter_and_is_not_the_header(tenant_a, tmp_path):
    content = "sep=;\r\nstudent_id;name;units_approved\r\nS1;Ann, Lee;3\r\nS2;Bo;4\r\n"
    path = write_file(tmp_path, "sep.csv", content)
    preview = import_preview(institution=tenant_a.institution, path=path)
    assert preview.info.delimiter == ";" and preview.info.header == ["student_id", "name", "units_approved"]
    report = run(tenant_a.institution, path)
    assert (report.rows, report.created, report.error_count) == (2, 2, 0)


def test_sep_line_wins_over_what_the_sniffer_would_guess(tenant_a, tmp_path):
    content = "\ufeffsep=|\nstudent_id|name\nS1|Lee; Ann\n"
    path = write_file(tmp_path, "sep.csv", content)
    preview = import_preview(institution=tenant_a.institution, path=path)
    assert preview.info.delimiter == "|" and preview.rows == [["S1", "Lee; Ann"]]


def test_trailing_blank_and_separator_only_lines_are_ignored(tenant_a, tmp_path):
    content = GOOD_CSV + ",,,,,,\r\n\r\n   \r\n,,,\r\n;;\r\n"
    content = content.replace(";;\r\n", "")  # a comma file: a semicolon line would be data
    path = write_file(tmp_path, "trailing.csv", content)
    report = run(tenant_a.institution, path)
    assert (report.rows, report.created + report.updated, report.error_count) == (2, 2, 0)


# --- bounded reports and job listings -----------------------------------------------------------

def test_reports_cut_long_cells_and_list_a_bounded_number_of_problems(tenants, tmp_path):
    a, b = tenants
    long_value = "x" * 20_000
    rows = "".join(f"B{i:05d},N,b{i}@example.edu,{long_value},yes,f,Enrolled\r\n"
                   for i in range(MAX_REPORTED_ERRORS + 500))
    path = write_file(tmp_path, "long.csv", HEADER + rows)
    before = database_state(a.institution, b.institution)
    report = run(a.institution, path)
    assert report.error_count == MAX_REPORTED_ERRORS + 500 and len(report.errors) == MAX_REPORTED_ERRORS
    assert report.errors_truncated
    assert all(len(error.value) <= 200 and len(error.reason) <= 400 for error in report.errors)
    assert report.errors[0].value.endswith("…")
    assert database_state(a.institution, b.institution) == before


def test_job_listing_stays_small_after_an_import_with_huge_bad_cells(
    api_client, tenants, django_capture_on_commit_callbacks
):
    a, b = tenants
    api_client.force_authenticate(a.admin)
    long_value = "9" * 100_000
    rows = "".join(f"B{i:05d},N,b{i}@example.edu,{long_value},yes,f,Enrolled\r\n" for i in range(300))
    before = database_state(a.institution, b.institution)
    response = post_file(api_client, "alpha", "long.csv", (HEADER + rows).encode(),
                         django_capture_on_commit_callbacks)
    assert response.status_code == 202
    listing = api_client.get(reverse("api-job-list", args=["alpha"]))
    assert listing.status_code == 200 and len(listing.content) < 30_000
    job = listing.json()["results"][0]
    assert job["result"]["error_count"] == 300 and len(job["result"]["errors"]) == 10
    assert job["result"]["truncated_lists"] == ["errors"]
    detail = api_client.get(job["url"]).json()
    assert len(detail["result"]["errors"]) == 300 and len(api_client.get(job["url"]).content) < 300_000
    assert database_state(a.institution, b.institution) == before
    # Institution B's admin sees none of A's jobs.
    api_client.force_authenticate(b.admin)
    assert api_client.get(reverse("api-job-list", args=["beta"])).json()["results"] == []
    assert api_client.get(job["url"]).status_code == 404


# --- oversize bodies ----------------------------------------------------------------------------

def test_the_upload_page_refuses_an_oversize_body_before_reading_it(client, tenants, settings):
    a, b = tenants
    settings.IMPORT_MAX_FILE_BYTES = 1000
    client.force_login(a.admin)
    before = database_state(a.institution, b.institution)
    body = b"x" * (2 * 1024 * 1024)
    response = client.post(reverse("import-upload", args=["alpha"]),
                           {"file": SimpleUploadedFile("big.csv", body)}, follow=True)
    assert response.redirect_chain[0][1] == 302
    page = response.content.decode()
    assert "the largest accepted file is" in page and "IMPORT_MAX_FILE_BYTES" in page
    assert not ImportUpload.objects.for_institution(a.institution).exists()
    assert database_state(a.institution, b.institution) == before


def test_the_upload_page_rejects_an_unreadable_content_length_without_an_error(client, tenant_a):
    client.force_login(tenant_a.admin)
    response = client.generic("POST", reverse("import-upload", args=["alpha"]), b"",
                              content_type="multipart/form-data; boundary=x", CONTENT_LENGTH="abc")
    assert response.status_code < 500
