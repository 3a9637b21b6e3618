"""An import never changes stored data the administrator did not see coming: a file without ids
never updates existing students, a column blank in every row leaves stored values alone unless
clearing is asked for, and only plain decimal notation is read as a number."""

from __future__ import annotations

import pytest

from students.importing import ImportFileError, import_file, import_preview, mapping_from_dict
from students.models import Student

from .import_helpers import UCI_FILE, database_state, write_file

pytestmark = pytest.mark.django_db


def run(institution, path, *, commit=True, mapping=None):
    mapping = mapping if mapping is not None else import_preview(institution=institution, path=path).mapping
    return import_file(institution=institution, path=path, mapping=mapping, commit=commit)


def refused(institution, path, mapping=None, *, commit=True) -> ImportFileError:
    with pytest.raises(ImportFileError) as caught:
        run(institution, path, mapping=mapping, commit=commit)
    return caught.value


# --- files without ids -------------------------------------------------------------------------

def test_numbering_rows_is_not_suggested_once_the_institution_has_students(tenants):
    a, _b = tenants
    assert Student.objects.for_institution(a.institution).exists()
    assert import_preview(institution=a.institution, path=UCI_FILE).mapping.id_row_prefix == ""
    Student.objects.for_institution(a.institution).delete()
    assert import_preview(institution=a.institution, path=UCI_FILE).mapping.id_row_prefix == "UCI"


@pytest.mark.parametrize("commit", [True, False])
def test_a_file_numbered_by_rows_never_updates_existing_students(tenants, tmp_path, commit):
    # As in the report: a first import numbered the rows, then a cut of the same export, numbered
    # again, would have matched UCI-00001.. to other students and overwritten them.
    a, b = tenants
    Student.objects.for_institution(a.institution).delete()
    first = write_file(tmp_path, "first.csv", "units_approved\r\n1\r\n2\r\n3\r\n4\r\n")
    mapping = {"columns": {"units_approved": {"target": "feature", "feature": "units_approved"}},
               "id_row_prefix": "UCI"}
    assert run(a.institution, first, mapping=mapping_from_dict(mapping)).created == 4
    before = database_state(a.institution, b.institution)
    cut = write_file(tmp_path, "cut.csv", "units_approved\r\n9\r\n8\r\n7\r\n")

    error = refused(a.institution, cut, mapping_from_dict(mapping), commit=commit)

    assert error.code == "row_numbers_with_students"
    assert "already has students" in error.message and "map it as the external id" in error.message
    assert database_state(a.institution, b.institution) == before


# --- numbers -----------------------------------------------------------------------------------

UNITS = {"columns": {"student_id": "external_id",
                     "units_approved": {"target": "feature", "feature": "units_approved"}}}


@pytest.mark.parametrize("cell", ["1_9", "nan", "inf", "-Infinity", "\u0661\u0662", "1,5", "0x10", "1.2.3", "1e400",
                                  "12 3", "1.234,5", "٣"])
def test_only_plain_decimal_notation_is_read_as_a_number(tenants, tmp_path, cell):
    a, b = tenants
    before = database_state(a.institution, b.institution)
    path = write_file(tmp_path, "odd.csv", f'student_id,units_approved\r\nS001,"{cell}"\r\n')
    report = run(a.institution, path, mapping=mapping_from_dict(UNITS))
    assert report.error_count == 1 and not report.committed
    (error,) = report.errors
    assert error.row == 2 and error.column == "units_approved"
    assert "not a plain decimal number" in error.reason or "finite" in error.reason
    assert database_state(a.institution, b.institution) == before


@pytest.mark.parametrize(("cell", "stored"), [("12", 12.0), ("-0", 0.0), (".5", 0.5), ("3.", 3.0), ("1e1", 10.0),
                                              ("+4", 4.0), (" 7 ", 7.0)])
def test_plain_decimal_numbers_are_read_as_written(tenants, tmp_path, cell, stored):
    a, _b = tenants
    path = write_file(tmp_path, "plain.csv", f'student_id,units_approved\r\nS001,"{cell}"\r\n')
    report = run(a.institution, path, mapping=mapping_from_dict(UNITS))
    assert report.error_count == 0 and report.committed
    assert Student.objects.for_institution(a.institution).get(external_id="S001").features["units_approved"] == stored


def test_a_decimal_comma_is_read_only_when_the_mapping_says_so(tenants, tmp_path):
    a, b = tenants
    path = write_file(tmp_path, "comma.csv", 'student_id;units_approved\r\nS001;3,5\r\nS002;12\r\n')
    before = database_state(a.institution, b.institution)
    plain = run(a.institution, path, mapping=mapping_from_dict(UNITS))
    assert [e.value for e in plain.errors] == ["3,5"] and database_state(a.institution, b.institution) == before

    report = run(a.institution, path, mapping=mapping_from_dict({**UNITS, "decimal_comma": True}))
    assert report.committed and report.error_count == 0
    assert Student.objects.for_institution(a.institution).get(external_id="S001").features["units_approved"] == 3.5

    with_points = write_file(tmp_path, "points.csv", 'student_id;units_approved\r\nS001;3.5\r\nS002;1.234,5\r\n')
    refused_points = run(a.institution, with_points, mapping=mapping_from_dict({**UNITS, "decimal_comma": True}))
    assert [e.value for e in refused_points.errors] == ["3.5", "1.234,5"]
    assert "decimal comma" in refused_points.errors[0].reason


def test_the_decimal_comma_is_suggested_for_a_file_that_writes_numbers_so(tenants, tmp_path):
    a, _b = tenants
    comma = write_file(tmp_path, "comma.csv", 'student_id;grade;units_approved\r\nS001;13,5;3\r\nS002;12;4\r\n')
    point = write_file(tmp_path, "point.csv", 'student_id;grade;units_approved\r\nS001;13.5;3\r\nS002;12;4\r\n')
    suggested = import_preview(institution=a.institution, path=comma).mapping
    assert suggested.decimal_comma and suggested.columns["grade"].kind == "numeric"
    assert not import_preview(institution=a.institution, path=point).mapping.decimal_comma
    report = run(a.institution, comma, mapping=suggested)
    assert report.committed and Student.objects.for_institution(a.institution).get(
        external_id="S001").features["grade"] == 13.5


def test_the_api_refuses_a_feature_number_written_as_text_in_odd_notation(tenants):
    from rest_framework.test import APIClient

    a, _b = tenants
    api = APIClient()
    api.force_authenticate(a.admin)
    student = a.students[0]
    url = f"/api/v1/institutions/{a.institution.slug}/students/{student.pk}/"
    response = api.patch(url, {"features": {"units_approved": "1_9"}}, format="json")
    assert response.status_code == 400 and "plain decimal" in str(response.json())
    student.refresh_from_db()
    assert student.features["units_approved"] == 1.0
    assert api.patch(url, {"features": {"units_approved": "19"}}, format="json").status_code == 200


# --- columns blank in every row ------------------------------------------------------------------

BLANK_EMAIL_CSV = "student_id,email,units_approved\r\nS001,,11\r\nS002,,12\r\nS003,,13\r\n"


def emails(institution) -> dict:
    return dict(Student.objects.for_institution(institution).values_list("external_id", "email"))


@pytest.fixture
def tenants_with_emails(tenants):
    for tenant in tenants:
        for student in Student.objects.for_institution(tenant.institution):
            Student.objects.for_institution(tenant.institution).filter(pk=student.pk).update(
                email=f"{student.external_id.lower()}@{tenant.institution.slug}.example.edu")
    return tenants


def test_a_column_blank_in_every_row_leaves_the_stored_values_alone_and_the_report_says_so(
    tenants_with_emails, tmp_path
):
    a, _b = tenants_with_emails
    stored = emails(a.institution)
    assert all(stored[key] for key in ("S001", "S002", "S003"))
    path = write_file(tmp_path, "blank.csv", BLANK_EMAIL_CSV)
    mapping = import_preview(institution=a.institution, path=path).mapping
    assert mapping.columns["email"].target == "email"

    preview = import_file(institution=a.institution, path=path, mapping=mapping, commit=False)
    assert preview.blank_columns == {"email": 3}
    assert preview.cleared == {} and {c["field"] for c in preview.changes} == {"features.units_approved"}
    done = import_file(institution=a.institution, path=path, mapping=mapping, commit=True)

    assert done.committed and done.blank_columns == {"email": 3} and done.updated == 3
    assert emails(a.institution) == stored
    assert Student.objects.for_institution(a.institution).get(external_id="S003").features["units_approved"] == 13


def test_a_blank_column_clears_the_stored_values_only_when_the_mapping_says_so(tenants_with_emails, tmp_path):
    a, b = tenants_with_emails
    path = write_file(tmp_path, "blank.csv", BLANK_EMAIL_CSV)
    mapping = import_preview(institution=a.institution, path=path).mapping
    mapping.clear_blank_columns = ["email"]
    preview = import_file(institution=a.institution, path=path, mapping=mapping, commit=False)
    assert preview.blank_columns == {} and preview.cleared == {"email": 3}
    import_file(institution=a.institution, path=path, mapping=mapping, commit=True)
    assert [emails(a.institution)[key] for key in ("S001", "S002", "S003")] == ["", "", ""]
    assert all(emails(b.institution)[key] for key in ("S001", "S002", "S003"))  # B's students untouched


def test_a_feature_column_blank_in_every_row_keeps_the_stored_values(tenants, tmp_path):
    a, _b = tenants
    path = write_file(tmp_path, "blank.csv", "student_id,name,units_approved\r\nS001,Ann,\r\nS002,Bo,\r\n")
    done = import_file(institution=a.institution, path=path, commit=True,
                       mapping=import_preview(institution=a.institution, path=path).mapping)
    assert done.blank_columns == {"units_approved": 2}
    features = dict(Student.objects.for_institution(a.institution).values_list("external_id", "features"))
    assert (features["S001"]["units_approved"], features["S002"]["units_approved"]) == (1.0, 2.0)


def test_a_column_blank_in_some_rows_clears_those_values_and_lists_them(tenants, tmp_path):
    a, _b = tenants
    path = write_file(tmp_path, "some.csv", "student_id,units_approved\r\nS001,\r\nS002,9\r\n")
    preview = import_file(institution=a.institution, path=path, commit=False,
                          mapping=import_preview(institution=a.institution, path=path).mapping)
    assert preview.blank_columns == {} and preview.cleared == {"features.units_approved": 1}
    (cleared,) = [c for c in preview.changes if c["cleared"]]
    assert (cleared["external_id"], cleared["old"]) == ("S001", "1.0")


def test_the_page_offers_to_clear_a_blank_column_and_then_lists_what_it_would_clear(
    tenants_with_emails, client, django_capture_on_commit_callbacks
):
    from django.urls import reverse

    from .import_helpers import latest_upload
    from .test_import_pages import commit, upload, validate

    a, b = tenants_with_emails
    stored = emails(a.institution)
    client.force_login(a.admin)
    upload(client, a.institution.slug, "blank.csv", BLANK_EMAIL_CSV.encode())
    upload_obj = latest_upload(a.institution)
    validate(client, a.institution, upload_obj, django_capture_on_commit_callbacks)
    detail = reverse("import-detail", args=[a.institution.slug, upload_obj.pk])
    page = client.get(detail).content.decode()
    assert "is blank in every row" in page and "3 stored values it would have cleared were left alone" in page

    clear_url = reverse("import-clear-blank", args=[a.institution.slug, upload_obj.pk])
    client.force_login(b.admin)  # another institution's admin cannot
    for slug in (a.institution.slug, b.institution.slug):
        url = reverse("import-clear-blank", args=[slug, upload_obj.pk])
        with django_capture_on_commit_callbacks(execute=True):
            assert client.post(url, {"column": "email"}).status_code == 404
    client.force_login(a.admin)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(clear_url, {"column": "email"}).status_code == 302
    page = client.get(detail).content.decode()
    assert "3 stored values would be cleared" in page and "email (3)" in page
    assert emails(a.institution) == stored  # still only a preview
    commit(client, a.institution, upload_obj, django_capture_on_commit_callbacks)
    assert [emails(a.institution)[key] for key in ("S001", "S002", "S003")] == ["", "", ""]


# --- what the suggestion maps: the outcome and the program -------------------------------------------

@pytest.mark.parametrize(("header", "values", "target"), [
    ("status", ["Graduate", "Dropout", "Enrolled"], "outcome"),
    ("Status", ["graduated", "withdrawn"], "outcome"),
    ("status", ["active", "inactive", "on leave"], "status"),
    ("final_status", ["Pass", "Fail"], "outcome"),
    ("Final outcome", ["Dropped out"], "outcome"),
    ("result", ["Pass", "Withdrawn"], "outcome"),
    ("student_status", ["Dropout", "Graduate"], "outcome"),
])
def test_common_outcome_headers_are_suggested_as_the_outcome(tenant_a, tmp_path, header, values, target):
    rows = "".join(f"S{i:03d},{value}\r\n" for i, value in enumerate(values, start=1))
    path = write_file(tmp_path, "outcomes.csv", f"student_id,{header}\r\n{rows}")
    mapping = import_preview(institution=tenant_a.institution, path=path).mapping
    assert mapping.columns[header].target == target


def test_a_course_column_is_suggested_as_the_program_and_fills_the_lists(tenants, tmp_path):
    from workspace.selectors import program_and_cohort_choices

    a, b = tenants
    path = write_file(tmp_path, "courses.csv", "student_id,course\r\nS001,Zeta Nursing\r\nS002,Zeta Management\r\n")
    mapping = import_preview(institution=a.institution, path=path).mapping
    assert mapping.columns["course"].target == "program"
    import_file(institution=a.institution, path=path, mapping=mapping, commit=True)
    assert {"Zeta Management", "Zeta Nursing"} <= set(program_and_cohort_choices(institution=a.institution)[0])
    assert "Zeta Nursing" not in program_and_cohort_choices(institution=b.institution)[0]


def test_the_uci_course_code_stays_a_feature_and_its_label_becomes_the_program(tenants):
    from students.uci_schema import COURSES

    a, _b = tenants
    Student.objects.for_institution(a.institution).delete()
    from students.models import FeatureDefinition

    FeatureDefinition.objects.for_institution(a.institution).filter(key="gender").delete()
    mapping = import_preview(institution=a.institution, path=UCI_FILE).mapping
    assert mapping.program_from == "Course" and mapping.columns["Course"].target == "new_feature"
    import_file(institution=a.institution, path=UCI_FILE, mapping=mapping, commit=True)
    first = Student.objects.for_institution(a.institution).get(external_id="UCI-00001")
    assert first.features["course"] == "171" and first.program == COURSES["171"]
    programs = set(Student.objects.for_institution(a.institution).values_list("program", flat=True))
    assert programs <= set(COURSES.values()) and len(programs) == 17


def test_program_from_must_name_a_feature_column_and_not_compete_with_a_program_column(tenant_a, tmp_path):
    path = write_file(tmp_path, "p.csv", "student_id,course,gender\r\nS001,Nursing,f\r\n")
    base = {"columns": {"student_id": "external_id", "course": "program",
                        "gender": {"target": "feature", "feature": "gender"}}}
    for program_from, words in (("student_id", "not a column mapped to a feature"), ("gender", "choose one")):
        error = refused(tenant_a.institution, path, mapping_from_dict({**base, "program_from": program_from}))
        assert error.code == "invalid_mapping" and words in error.message
