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
