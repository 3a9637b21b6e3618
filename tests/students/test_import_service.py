"""The import service: parsing real-world files, refusing bad ones with a specific message and
writing nothing, idempotent upserts with change history, and tenant isolation."""

from __future__ import annotations

import gzip
import io
import zipfile

import pytest
from openpyxl import Workbook

from institutions.csv_export import formula_safe_writer, neutralise_cell
from students.importing import ImportFileError, import_file, import_preview, mapping_from_dict
from students.models import ChangeSource, FeatureDefinition, Outcome, Student, StudentChange

from .import_helpers import GOOD_CSV, OULAD_EXCERPT, UCI_FILE, database_state, write_file

pytestmark = pytest.mark.django_db


def suggested(institution, path, **kwargs):
    return import_preview(institution=institution, path=path, **kwargs).mapping


def run(institution, path, *, commit=True, mapping=None, **kwargs):
    mapping = mapping if mapping is not None else suggested(institution, path)
    return import_file(institution=institution, path=path, mapping=mapping, commit=commit, **kwargs)


def refused(institution, path, mapping=None) -> ImportFileError:
    with pytest.raises(ImportFileError) as caught:
        run(institution, path, mapping=mapping)
    return caught.value


# --- real files -------------------------------------------------------------------------------

def test_uci_file_exactly_as_published_imports_with_the_suggested_mapping(tenant_a):
    institution = tenant_a.institution
    FeatureDefinition.objects.for_institution(institution).filter(key="gender").delete()  # UCI codes it 0/1
    Student.objects.for_institution(institution).delete()  # numbered rows: only a first import
    preview = import_preview(institution=institution, path=UCI_FILE)
    assert preview.info.encoding == "utf-8-sig" and preview.info.delimiter == ";"
    assert "Daytime/evening attendance" in preview.info.header  # the trailing tab is stripped
    columns = preview.mapping.columns
    assert columns["Nacionality"].feature == "nationality" and columns["Nacionality"].protected
    assert columns["Target"].target == "outcome"
    assert preview.mapping.id_row_prefix == "UCI"

    report = run(institution, UCI_FILE, mapping=preview.mapping)

    assert (report.rows, report.created, report.updated, report.error_count) == (4424, 4424, 0, 0)
    students = Student.objects.for_institution(institution)
    assert students.filter(outcome=Outcome.DROPPED_OUT, external_id__startswith="UCI-").count() == 1421
    assert students.filter(outcome=Outcome.GRADUATED, external_id__startswith="UCI-").count() == 2209
    first = students.get(external_id="UCI-00001")
    assert first.features["course"] == "171" and first.features["admission_grade"] == 127.3
    assert first.features["daytime_attendance"] is True
    nationality = FeatureDefinition.objects.for_institution(institution).get(key="nationality")
    assert nationality.protected and {"value": "1", "label": "Portuguese"} in nationality.categories


def test_oulad_student_in_several_presentations_is_one_record_per_presentation(tenant_b):
    institution = tenant_b.institution
    FeatureDefinition.objects.for_institution(institution).filter(key="gender").delete()
    preview = import_preview(institution=institution, path=OULAD_EXCERPT)
    assert preview.mapping.id_columns == ["code_module", "code_presentation", "id_student"]
    assert preview.mapping.columns["code_module"].target == "program"
    assert preview.mapping.columns["code_presentation"].target == "cohort"

    report = run(institution, OULAD_EXCERPT, mapping=preview.mapping)

    assert report.created == 308 and report.error_count == 0
    student = Student.objects.for_institution(institution).get(external_id="AAA-2013J-11391")
    assert (student.program, student.cohort, student.outcome) == ("AAA", "2013J", Outcome.GRADUATED)
    assert student.features["imd_band"] == "90-100%" and student.features["age_band"] == "55<="
    withdrawn = Student.objects.for_institution(institution).filter(
        outcome=Outcome.DROPPED_OUT, external_id__contains="-").count()
    assert withdrawn == OULAD_EXCERPT.read_text().count('"Withdrawn"')
    imd = FeatureDefinition.objects.for_institution(institution).get(key="imd_band")
    assert imd.kind == "categorical" and {"value": "0-10%", "label": "0-10%"} in imd.categories


def test_oulad_failures_and_withdrawals_keep_their_own_outcome_when_the_mapping_says_so(tenant_b):
    institution = tenant_b.institution
    FeatureDefinition.objects.for_institution(institution).filter(key="gender").delete()
    mapping = suggested(institution, OULAD_EXCERPT).as_dict()
    # Without outcome values for them, Withdrawn is dropped out and Fail is other, as always.
    assert mapping["outcome_values"].get("Withdrawn") in (None, Outcome.DROPPED_OUT)
    mapping["outcome_values"] = {**mapping["outcome_values"], "Withdrawn": "withdrawn", "Fail": "failed"}

    run(institution, OULAD_EXCERPT, mapping=mapping_from_dict(mapping))

    students = Student.objects.for_institution(institution).filter(external_id__contains="-")
    text = OULAD_EXCERPT.read_text()
    assert students.filter(outcome=Outcome.WITHDRAWN).count() == text.count('"Withdrawn"') > 0
    assert students.filter(outcome=Outcome.FAILED).count() == text.count('"Fail"') > 0
    assert not students.filter(outcome__in=[Outcome.DROPPED_OUT, Outcome.OTHER]).exists()


def test_oulad_mapped_by_id_student_alone_is_refused_as_duplicate_ids(tenant_b):
    institution = tenant_b.institution
    mapping = suggested(institution, OULAD_EXCERPT).as_dict()
    mapping["id_columns"] = []
    mapping["columns"]["id_student"] = {"target": "external_id"}
    before = database_state(institution)

    error = refused(institution, OULAD_EXCERPT, mapping)

    assert error.code == "duplicate_ids"
    assert "appear more than once" in error.message and "code_module + code_presentation + id_student" in error.message
    assert database_state(institution) == before


# --- parsing ----------------------------------------------------------------------------------

def test_windows_1252_file_is_decoded(tenant_a, tmp_path):
    path = write_file(tmp_path, "latin.csv", "student_id;name\r\nS001;José Gonçalves\r\n", encoding="cp1252")
    report = run(tenant_a.institution, path)
    assert report.encoding == "cp1252" and report.updated == 1
    assert Student.objects.for_institution(tenant_a.institution).get(external_id="S001").name == "José Gonçalves"


def test_tab_delimited_file_with_quoted_multiline_field_and_lf(tenant_a, tmp_path):
    path = write_file(tmp_path, "tabs.tsv", 'student_id\tname\tunits_approved\nN1\t"Line one\nline two"\t4\n')
    report = run(tenant_a.institution, path)
    assert report.delimiter == "\t" and report.created == 1
    student = Student.objects.for_institution(tenant_a.institution).get(external_id="N1")
    assert student.name == "Line one\nline two" and student.features == {"units_approved": 4.0}


def test_xlsx_workbook_is_read(tenant_a, tmp_path):
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["student_id", "name", "units_approved", "gender"])
    sheet.append(["X1", "Xia", 7, "m"])
    sheet.append([1234, "Numeric Id", 2.5, "f"])
    path = tmp_path / "students.xlsx"
    workbook.save(path)
    report = run(tenant_a.institution, path)
    assert report.format == "xlsx" and report.created == 2
    assert Student.objects.for_institution(tenant_a.institution).get(external_id="1234").features == {
        "units_approved": 2.5, "gender": "f"}


def test_formula_like_cells_are_stored_as_text_and_neutralised_on_export(tenant_a, tmp_path):
    path = write_file(tmp_path, "f.csv", 'student_id,name,program\r\nN9,"=HYPERLINK(""http://x"")",+33 Nursing\r\n')
    run(tenant_a.institution, path)
    student = Student.objects.for_institution(tenant_a.institution).get(external_id="N9")
    assert student.name == '=HYPERLINK("http://x")' and student.program == "+33 Nursing"
    out = io.StringIO()
    formula_safe_writer(out).writerow([student.name, student.program, "@SUM(A1)", "-x", -3, "plain"])
    assert out.getvalue().strip() == '"\'=HYPERLINK(""http://x"")",\'+33 Nursing,\'@SUM(A1),\'-x,-3,plain'
    assert neutralise_cell(12) == 12


# --- bad input: a specific message each, nothing written ---------------------------------------

def test_empty_file_is_refused(tenants, tmp_path):
    a, b = tenants
    before = database_state(a.institution, b.institution)
    error = refused(a.institution, write_file(tmp_path, "empty.csv", b""), mapping={"columns": {}})
    assert error.code == "empty_file" and "empty" in error.message
    assert database_state(a.institution, b.institution) == before


def test_header_only_file_is_refused(tenant_a, tmp_path):
    before = database_state(tenant_a.institution)
    error = refused(tenant_a.institution, write_file(tmp_path, "h.csv", "student_id,name\r\n"))
    assert error.code == "header_only" and "no data rows" in error.message
    assert database_state(tenant_a.institution) == before


def test_file_without_an_id_column_is_refused(tenant_a, tmp_path):
    before = database_state(tenant_a.institution)
    error = refused(tenant_a.institution, write_file(tmp_path, "noid.csv", "name,units_approved\r\nAnn,3\r\n"))
    assert error.code == "missing_id_column" and "external id" in error.message
    assert database_state(tenant_a.institution) == before


def test_duplicate_ids_in_the_file_are_refused(tenant_a, tmp_path):
    before = database_state(tenant_a.institution)
    path = write_file(tmp_path, "dup.csv", "student_id,name\r\nN1,Ann\r\nN2,Bo\r\nN1,Ann again\r\n")
    error = refused(tenant_a.institution, path)
    assert error.code == "duplicate_ids" and "'N1' on rows 2, 4" in error.message
    assert database_state(tenant_a.institution) == before


def test_ragged_rows_are_refused(tenant_a, tmp_path):
    before = database_state(tenant_a.institution)
    path = write_file(tmp_path, "ragged.csv", "student_id,name,units_approved\r\nN1,Ann,3\r\nN2,Bo,4,extra\r\n")
    error = refused(tenant_a.institution, path)
    assert error.code == "ragged_rows" and "line 3 has 4" in error.message and "3 fields" in error.message
    assert database_state(tenant_a.institution) == before


def test_wrong_delimiter_is_refused(tenant_a, tmp_path):
    before = database_state(tenant_a.institution)
    path = write_file(tmp_path, "semi.csv", "student_id;name\r\nN1;Ann\r\n")
    mapping = {"columns": {"student_id;name": {"target": "external_id"}}, "delimiter": ","}
    error = refused(tenant_a.institution, path, mapping)
    assert error.code == "wrong_delimiter" and "semicolon" in error.message
    assert database_state(tenant_a.institution) == before


def test_undecodable_bytes_are_refused(tenant_a, tmp_path):
    before = database_state(tenant_a.institution)
    path = write_file(tmp_path, "bad.csv", b"student_id,name\r\nN1,Ann\r\nN2,B\x81o\r\n")
    error = refused(tenant_a.institution, path, {"columns": {"student_id": "external_id"}})
    assert error.code == "undecodable" and "0x81" in error.message and "line 3" in error.message
    assert database_state(tenant_a.institution) == before


@pytest.mark.parametrize("packer,kind", [
    (lambda data: gzip.compress(data), "gzip archive"),
    (lambda data: _zip(data), "ZIP archive"),
    (lambda data: b"%PDF-1.7\n" + data, "PDF document"),
    (lambda data: b"\x00\x01\x02" + data, "NUL bytes"),
])
def test_binary_or_compressed_file_renamed_csv_is_refused(tenant_a, tmp_path, packer, kind):
    before = database_state(tenant_a.institution)
    path = write_file(tmp_path, "students.csv", packer(GOOD_CSV.encode()))
    error = refused(tenant_a.institution, path, {"columns": {"student_id": "external_id"}})
    assert error.code == "binary_file" and kind in error.message
    assert database_state(tenant_a.institution) == before


def _zip(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("students.csv", data)
    return buffer.getvalue()


def test_oversize_file_is_refused(tenant_a, tmp_path, settings):
    settings.IMPORT_MAX_FILE_BYTES = 100
    before = database_state(tenant_a.institution)
    path = write_file(tmp_path, "big.csv", GOOD_CSV * 3)
    with pytest.raises(ImportFileError) as caught:
        import_file(institution=tenant_a.institution, path=path, mapping={"columns": {"student_id": "external_id"}},
                    commit=True)
    assert caught.value.code == "file_too_large" and "largest accepted file" in caught.value.message
    assert database_state(tenant_a.institution) == before


@pytest.mark.parametrize("column,value,reason", [
    ("units_approved", "abc", "'abc' is not a plain decimal number: write it as 12 or 3.5 (digits, a '.' for "
                              "decimals)"),
    ("units_approved", "45", "45 is outside the valid range 0 to 30"),
    ("gender", "x", "'x' is not one of the categories (f, m)"),
    ("tuition_up_to_date", "maybe", "expected yes/no"),
    ("outcome", "Expelled", "unknown outcome 'Expelled'"),
    ("email", "not-an-email", "not a valid email address"),
])
def test_invalid_value_is_reported_with_row_column_value_reason_and_nothing_is_written(
    tenants, tmp_path, column, value, reason
):
    a, b = tenants
    lines = GOOD_CSV.split("\r\n")
    header = lines[0].split(",")
    cells = lines[2].replace('"Costa, Rui"', "Rui").split(",")
    cells[header.index(column)] = value
    path = write_file(tmp_path, "bad.csv", "\r\n".join([lines[0], lines[1], ",".join(cells)]) + "\r\n")
    before = database_state(a.institution, b.institution)

    report = run(a.institution, path)

    assert not report.committed and report.error_count == 1 and report.error_rows == 1
    error = report.errors[0]
    assert (error.row, error.column, error.value) == (3, column, value)
    assert reason in error.reason
    assert "nothing was imported" in report.summary
    assert database_state(a.institution, b.institution) == before


def test_importing_only_the_valid_rows_is_an_explicit_choice(tenant_a, tmp_path):
    path = write_file(tmp_path, "mixed.csv", "student_id,units_approved\r\nN1,3\r\nN2,99\r\nN3,4\r\n")
    assert not run(tenant_a.institution, path).committed
    assert not Student.objects.for_institution(tenant_a.institution).filter(external_id__startswith="N").exists()

    report = run(tenant_a.institution, path, valid_rows_only=True)

    assert report.committed and (report.created, report.skipped) == (2, 1)
    assert set(Student.objects.for_institution(tenant_a.institution).filter(
        external_id__startswith="N").values_list("external_id", flat=True)) == {"N1", "N3"}


def test_invalid_mapping_is_refused_with_the_reason():
    with pytest.raises(ImportFileError) as caught:
        mapping_from_dict({"columns": {"a": {"target": "salary"}}})
    assert caught.value.code == "invalid_mapping" and "target must be one of" in caught.value.message


# --- upserts ----------------------------------------------------------------------------------

def test_reimporting_the_same_file_changes_nothing_and_says_so(tenant_a, tmp_path):
    path = write_file(tmp_path, "good.csv", GOOD_CSV)
    first = run(tenant_a.institution, path)
    assert (first.created, first.updated, first.unchanged) == (1, 1, 0)
    state = database_state(tenant_a.institution)

    again = run(tenant_a.institution, path)

    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert "nothing changed" in again.summary
    assert database_state(tenant_a.institution) == state


def test_a_later_file_updates_values_and_records_what_changed_and_which_import(tenant_a, tmp_path):
    from institutions.jobs import job_create

    institution = tenant_a.institution
    run(institution, write_file(tmp_path, "one.csv", GOOD_CSV))
    job, _ = job_create(institution=institution, kind="import")
    later = GOOD_CSV.replace("S001,Ann Lee,ann@example.edu,12", "S001,Ann Lee,ann@example.edu,14")
    report = run(institution, write_file(tmp_path, "two.csv", later), job=job, actor=tenant_a.admin)

    assert (report.created, report.updated, report.unchanged) == (0, 1, 1)
    student = Student.objects.for_institution(institution).get(external_id="S001")
    assert student.features["units_approved"] == 14.0
    assert student.features["gender"] == "f"  # values the file does not carry are kept
    change = StudentChange.objects.for_institution(institution).filter(student=student).order_by("-id").first()
    assert change.changes == {"features.units_approved": [12.0, 14.0]}
    assert (change.job_id, change.actor_id, change.source) == (job.pk, tenant_a.admin.pk, ChangeSource.IMPORT)


def test_import_into_a_never_touches_b_even_with_identical_external_ids(tenants, tmp_path):
    a, b = tenants
    before_b = database_state(b.institution)
    path = write_file(tmp_path, "good.csv", GOOD_CSV)

    report = run(a.institution, path)

    assert report.updated == 1  # S001 exists in both institutions; only A's is updated
    assert Student.objects.for_institution(a.institution).get(external_id="S001").name == "Ann Lee"
    assert database_state(b.institution) == before_b


def test_dry_run_counts_without_writing(tenant_a, tmp_path):
    before = database_state(tenant_a.institution)
    report = run(tenant_a.institution, write_file(tmp_path, "good.csv", GOOD_CSV), commit=False)
    assert (report.created, report.updated, report.committed) == (1, 1, False)
    assert "Ready to import" in report.summary
    assert database_state(tenant_a.institution) == before


def test_audit_trail_goes_with_its_student_job_user_and_institution_when_they_are_deleted(tenants, tmp_path):
    # The audit trail's keys are not enforced by the database (bulk writes); Django's deletes
    # must still cascade to, or unlink, its rows, and never touch another institution's.
    from django.contrib.auth import get_user_model

    from institutions.jobs import job_create
    from institutions.models import Institution

    a, b = tenants
    job, _ = job_create(institution=a.institution, kind="import")
    run(a.institution, write_file(tmp_path, "a.csv", GOOD_CSV), job=job, actor=a.admin)
    run(b.institution, write_file(tmp_path, "b.csv", GOOD_CSV))
    changes = StudentChange.all_institutions
    b_rows = sorted(changes.filter(institution=b.institution).values_list("id", "student_id"))
    a_students = Student.objects.for_institution(a.institution)
    imported = set(a_students.filter(external_id__in=["S001", "N100"]).values_list("id", flat=True))
    assert len(imported) == 2
    assert set(changes.filter(institution=a.institution).values_list("student_id", flat=True)) == imported

    gone = a_students.get(external_id="S001")
    gone.delete()
    assert not changes.filter(student_id=gone.pk).exists()
    job.delete()
    get_user_model().objects.filter(pk=a.admin.pk).delete()
    kept = changes.get(institution=a.institution)
    assert (kept.job_id, kept.actor_id) == (None, None)

    Institution.objects.filter(pk=a.institution.pk).delete()
    assert not changes.filter(institution_id=a.institution.pk).exists()
    assert sorted(changes.filter(institution=b.institution).values_list("id", "student_id")) == b_rows
