"""Before an import commits, the administrator sees what it will do to each student: created,
updated with old -> new for every changed value, unchanged, and the stored values it would clear;
the list is downloadable as CSV from the page and the API, and the commit lists what it did.
A commit whose preview went stale (students written since) writes nothing and says so."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from students.importing import import_file, import_preview
from students.importing.changes import CHANGES_CSV_HEADER
from students.importing.uploads import import_changes_path
from students.models import Student

from .import_helpers import database_state, latest_upload, write_file
from .test_import_pages import commit, upload, validate

pytestmark = pytest.mark.django_db

# S001 and S002 exist in both fixture institutions (units_approved 1.0 and 2.0, gender f); S003 too.
CHANGING_CSV = (
    "student_id,name,units_approved,gender\r\n"
    "S001,Ann Lee,1,f\r\n"        # units the same (1 == 1.0); the name changes
    "S002,,7,m\r\n"               # name cleared, units 2 -> 7, gender f -> m
    "N900,New Person,3,f\r\n"     # created
)


def dry_run(institution, path, **kwargs):
    mapping = import_preview(institution=institution, path=path).mapping
    return import_file(institution=institution, path=path, mapping=mapping, commit=False, **kwargs), mapping


def csv_lines(path_or_bytes) -> list[dict]:
    text = path_or_bytes.read_text(encoding="utf-8") if hasattr(path_or_bytes, "read_text") \
        else path_or_bytes.decode("utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == CHANGES_CSV_HEADER
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def test_a_dry_run_lists_every_students_changes_with_old_and_new_values_and_writes_nothing(tenants, tmp_path):
    a, b = tenants
    with_names = Student.objects.for_institution(a.institution)
    with_names.filter(external_id="S001").update(name="Ann Old")
    with_names.filter(external_id="S002").update(name="Bo Stored")
    before = database_state(a.institution, b.institution)
    path = write_file(tmp_path, "changes.csv", CHANGING_CSV)

    report, _mapping = dry_run(a.institution, path, changes_path=tmp_path / "out.csv")

    assert database_state(a.institution, b.institution) == before
    assert (report.created, report.updated, report.unchanged) == (1, 2, 0)
    listed = {(c["external_id"], c["action"], c["field"], c["old"], c["new"], c["cleared"]) for c in report.changes}
    assert listed == {
        ("S001", "updated", "name", "Ann Old", "Ann Lee", False),
        ("S002", "updated", "name", "Bo Stored", "", True),
        ("S002", "updated", "features.units_approved", "2.0", "7.0", False),
        ("S002", "updated", "features.gender", "f", "m", False),
        ("N900", "created", "", "", "", False),
    }
    assert report.cleared == {"name": 1} and report.changed_lines == 5 and not report.changes_truncated
    lines = csv_lines(tmp_path / "out.csv")
    assert [(line["row"], line["external_id"], line["action"]) for line in lines] == [
        ("2", "S001", "updated"), ("3", "S002", "updated"), ("3", "S002", "updated"), ("3", "S002", "updated"),
        ("4", "N900", "created"),
    ]
    assert {line["cleared"] for line in lines if line["field"] == "name" and line["external_id"] == "S002"} == {"yes"}


def stored_values(institution) -> dict:
    values = {}
    for student in Student.objects.for_institution(institution):
        for name in ("name", "email", "program", "cohort", "status", "outcome", "outcome_date"):
            values[(student.external_id, name)] = getattr(student, name)
        for key, value in student.features.items():
            values[(student.external_id, f"features.{key}")] = value
    return values


def test_the_commit_changes_exactly_the_stored_values_its_dry_run_listed(tenants, tmp_path):
    a, _b = tenants
    path = write_file(tmp_path, "changes.csv", CHANGING_CSV)
    preview, mapping = dry_run(a.institution, path)
    before = stored_values(a.institution)

    done = import_file(institution=a.institution, path=path, mapping=mapping, commit=True)

    after = stored_values(a.institution)
    changed = {key for key in before if after.get(key) != before[key]}
    listed = {(c["external_id"], c["field"]) for c in preview.changes if c["action"] == "updated"}
    assert changed == listed
    assert {key[0] for key in set(after) - set(before)} == {"N900"}
    assert done.changes == preview.changes and done.cleared == preview.cleared


def test_unchanged_students_are_listed_in_the_csv_but_not_as_changes(tenants, tmp_path):
    a, _b = tenants
    path = write_file(tmp_path, "same.csv", "student_id,units_approved\r\nS001,1\r\nS002,2.0\r\n")
    report, _mapping = dry_run(a.institution, path, changes_path=tmp_path / "out.csv")
    assert (report.created, report.updated, report.unchanged) == (0, 0, 2)
    assert report.changes == [] and report.changed_lines == 0 and report.cleared == {}
    assert [(line["external_id"], line["action"]) for line in csv_lines(tmp_path / "out.csv")] == [
        ("S001", "unchanged"), ("S002", "unchanged")]


def test_a_file_with_errors_lists_what_importing_only_its_valid_rows_would_change(tenants, tmp_path):
    a, b = tenants
    path = write_file(tmp_path, "bad.csv", "student_id,units_approved\r\nS001,abc\r\nS002,9\r\nS003,3\r\n")
    report, mapping = dry_run(a.institution, path, changes_path=tmp_path / "out.csv")
    assert report.has_errors and report.valid_rows == 2
    assert [(c["external_id"], c["old"], c["new"]) for c in report.changes] == [("S002", "2.0", "9.0")]
    assert [(line["external_id"], line["action"]) for line in csv_lines(tmp_path / "out.csv")] == [
        ("S002", "updated"), ("S003", "unchanged")]

    # Importing only the valid rows changes exactly what was listed.
    before = stored_values(a.institution)
    done = import_file(institution=a.institution, path=path, mapping=mapping, commit=True, valid_rows_only=True)
    after = stored_values(a.institution)
    changed = {key for key in before if after[key] != before[key]}
    assert done.committed and changed == {("S002", "features.units_approved")}

    # A committing import refused for its errors writes nothing and leaves no list.
    state = database_state(a.institution, b.institution)
    with_errors = write_file(tmp_path, "bad2.csv", "student_id,units_approved\r\nS001,abc\r\nS004,5\r\n")
    refused = import_file(institution=a.institution, path=with_errors, mapping=mapping, commit=True,
                          changes_path=tmp_path / "refused.csv")
    assert refused.has_errors and not refused.committed and refused.changes == []
    assert not (tmp_path / "refused.csv").exists() and database_state(a.institution, b.institution) == state


def test_the_listed_changes_are_bounded_and_the_csv_holds_them_all(tenants, tmp_path, settings):
    a, _b = tenants
    rows = "".join(f"N{i:04d},{i % 30}\r\n" for i in range(450))
    path = write_file(tmp_path, "many.csv", "student_id,units_approved\r\n" + rows)
    report, _mapping = dry_run(a.institution, path, changes_path=tmp_path / "out.csv")
    assert report.created == 450 and len(report.changes) == 200 and report.changed_lines == 450
    assert report.changes_truncated and report.as_dict()["changes_truncated"] is True
    assert len(csv_lines(tmp_path / "out.csv")) == 450


def test_long_values_are_cut_in_the_list(tenants, tmp_path, monkeypatch):
    from students.importing import changes

    monkeypatch.setattr(changes, "MAX_VALUE_CHARS", 50)
    a, _b = tenants
    Student.objects.for_institution(a.institution).filter(external_id="S001").update(name="y" * 200)
    path = write_file(tmp_path, "long.csv", f"student_id,name\r\nS001,{'x' * 50}\r\n")
    report, _mapping = dry_run(a.institution, path)
    (change,) = report.changes
    assert change["old"] == "y" * 49 + "…" and change["new"] == "x" * 50


# --- the pages --------------------------------------------------------------------------------

def test_the_validation_page_shows_the_changes_and_the_cleared_values_and_offers_the_csv(
    tenants, client, django_capture_on_commit_callbacks
):
    a, b = tenants
    Student.objects.for_institution(a.institution).filter(external_id="S002").update(name="Bo Stored")
    client.force_login(a.admin)
    upload(client, a.institution.slug, "changes.csv", CHANGING_CSV.encode())
    upload_obj = latest_upload(a.institution)
    validate(client, a.institution, upload_obj, django_capture_on_commit_callbacks)

    page = client.get(reverse("import-detail", args=[a.institution.slug, upload_obj.pk])).content.decode()
    assert "What the import would change" in page
    assert "1 stored value would be cleared" in page and "name (1)" in page
    assert "Bo Stored" in page and "(cleared)" in page
    csv_response = client.get(reverse("import-changes-csv", args=[a.institution.slug, upload_obj.pk]))
    assert csv_response.status_code == 200 and csv_response["Content-Type"].startswith("text/csv")
    lines = csv_lines(b"".join(csv_response.streaming_content))
    assert {line["external_id"] for line in lines} == {"S001", "S002", "N900"}

    # Another institution's admin gets a 404 for the page and the CSV of this upload.
    client.force_login(b.admin)
    for name in ("import-detail", "import-changes-csv"):
        assert client.get(reverse(name, args=[b.institution.slug, upload_obj.pk])).status_code == 404
        assert client.get(reverse(name, args=[a.institution.slug, upload_obj.pk])).status_code == 404


def test_the_commit_page_lists_what_the_import_changed(tenants, client, django_capture_on_commit_callbacks):
    a, _b = tenants
    client.force_login(a.admin)
    upload(client, a.institution.slug, "changes.csv", CHANGING_CSV.encode())
    upload_obj = latest_upload(a.institution)
    validate(client, a.institution, upload_obj, django_capture_on_commit_callbacks)
    commit(client, a.institution, upload_obj, django_capture_on_commit_callbacks)
    upload_obj.refresh_from_db()
    assert upload_obj.status == "committed"
    page = client.get(reverse("import-detail", args=[a.institution.slug, upload_obj.pk])).content.decode()
    assert "What the import changed" in page
    assert import_changes_path(upload_obj.commit_job).is_file()
    csv_response = client.get(reverse("import-changes-csv", args=[a.institution.slug, upload_obj.pk]))
    assert {line["external_id"] for line in csv_lines(b"".join(csv_response.streaming_content))} == {
        "S001", "S002", "N900"}


def test_a_commit_after_students_changed_since_validation_writes_nothing_and_asks_to_validate_again(
    tenants, client, django_capture_on_commit_callbacks
):
    a, b = tenants
    client.force_login(a.admin)
    upload(client, a.institution.slug, "changes.csv", CHANGING_CSV.encode())
    upload_obj = latest_upload(a.institution)
    validate(client, a.institution, upload_obj, django_capture_on_commit_callbacks)
    # Someone edits a student after the administrator saw the list of changes.
    student = Student.objects.for_institution(a.institution).get(external_id="S003")
    student.name = "Edited meanwhile"
    student.save()
    before = database_state(a.institution, b.institution)

    commit(client, a.institution, upload_obj, django_capture_on_commit_callbacks)

    assert database_state(a.institution, b.institution) == before
    upload_obj.refresh_from_db()
    assert upload_obj.status == "uploaded"
    assert upload_obj.commit_job.result["file_error"]["code"] == "students_changed"
    page = client.get(reverse("import-detail", args=[a.institution.slug, upload_obj.pk])).content.decode()
    assert "validate the file again" in page
    # Validating again shows the current changes, and the commit then goes through.
    validate(client, a.institution, upload_obj, django_capture_on_commit_callbacks)
    upload_obj.refresh_from_db()
    assert upload_obj.commit_job is None and upload_obj.status == "validated"
    commit(client, a.institution, upload_obj, django_capture_on_commit_callbacks)
    upload_obj.refresh_from_db()
    assert upload_obj.status == "committed"
    assert Student.objects.for_institution(a.institution).get(external_id="S002").features["units_approved"] == 7


# --- the API ----------------------------------------------------------------------------------

def key_client(tenant):
    from rest_framework.test import APIClient

    from institutions.api_keys import ALL_SCOPES, api_key_create

    _key, raw = api_key_create(institution=tenant.institution, name="SIS", scopes=list(ALL_SCOPES),
                               created_by=tenant.admin)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return api


def test_the_apis_dry_run_returns_the_changes_and_the_csv_and_no_other_institution_gets_them(
    tenants, django_capture_on_commit_callbacks
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    a, b = tenants
    before = database_state(a.institution, b.institution)
    client_a = key_client(a)
    with django_capture_on_commit_callbacks(execute=True):
        accepted = client_a.post(
            reverse("api-import-file", args=[a.institution.slug]),
            {"file": SimpleUploadedFile("changes.csv", CHANGING_CSV.encode()), "dry_run": "true"},
            format="multipart",
        )
    assert accepted.status_code == 202, accepted.content
    assert database_state(a.institution, b.institution) == before
    job = client_a.get(accepted.json()["job_url"]).json()
    assert job["status"] == "succeeded"
    assert {(c["external_id"], c["field"]) for c in job["result"]["changes"]} >= {
        ("S002", "features.units_approved"), ("N900", "")}
    assert job["result"]["cleared"] == {"name": 1}
    changes = client_a.get(accepted.json()["changes_url"])
    assert changes.status_code == 200
    assert len(csv_lines(b"".join(changes.streaming_content))) == 5  # S001 name; S002 name, units, gender; N900 created
    upload_id = accepted.json()["upload_id"]

    client_b = key_client(b)
    for slug in (b.institution.slug, a.institution.slug):
        response = client_b.get(reverse("api-import-changes", args=[slug, upload_id]))
        assert response.status_code == 404
    assert client_a.get(reverse("api-import-changes", args=[a.institution.slug, "abc"])).status_code == 404


def test_the_report_names_the_features_the_import_would_create_and_then_links_to_confirm_them(
    tenants, client, django_capture_on_commit_callbacks
):
    a, _b = tenants
    client.force_login(a.admin)
    upload(client, a.institution.slug, "new.csv", b"student_id,credits\r\nS001,30\r\nS002,45\r\n")
    upload_obj = latest_upload(a.institution)
    validate(client, a.institution, upload_obj, django_capture_on_commit_callbacks)
    detail = reverse("import-detail", args=[a.institution.slug, upload_obj.pk])
    page = client.get(detail).content.decode()
    assert "New features to create" in page and "credits" in page
    commit(client, a.institution, upload_obj, django_capture_on_commit_callbacks)
    page = client.get(detail).content.decode()
    assert "confirm their ranges and flags" in page and reverse("feature-schema", args=[a.institution.slug]) in page


def test_the_page_of_a_file_with_errors_previews_what_importing_only_the_valid_rows_would_change(
    tenants, client, django_capture_on_commit_callbacks
):
    a, _b = tenants
    client.force_login(a.admin)
    upload(client, a.institution.slug, "bad.csv", b"student_id,units_approved\r\nS001,abc\r\nS002,9\r\n")
    upload_obj = latest_upload(a.institution)
    validate(client, a.institution, upload_obj, django_capture_on_commit_callbacks)
    upload_obj.refresh_from_db()
    assert upload_obj.status == "invalid"
    page = client.get(reverse("import-detail", args=[a.institution.slug, upload_obj.pk])).content.decode()
    assert "What importing only the 1 valid rows would change" in page and "Import only the valid rows" in page
    commit(client, a.institution, upload_obj, django_capture_on_commit_callbacks, valid_rows_only="1",
           confirm_skip="1")
    upload_obj.refresh_from_db()
    assert upload_obj.status == "committed"
    assert Student.objects.for_institution(a.institution).get(external_id="S002").features["units_approved"] == 9
