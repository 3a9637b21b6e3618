"""The OneRoster import over the API: the upload answers 202 and a job stores a preview that writes
nothing, a confirm queues the job that imports it into one institution only, specific refusals
recorded on the job, and the read resources kept per institution.

The jobs run in-process when the request's transaction commits (``execute=True``)."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import TestCase, override_settings

from courses.models import (
    AcademicSession,
    Course,
    Enrolment,
    Instructor,
    RosterImport,
    RosterImportStatus,
    Section,
    SectionTerm,
    TeachingAssignment,
)
from institutions.api_keys import api_key_create
from institutions.models import JobKind, JobStatus
from institutions.scoping import institution_scope

from .roster_files import csv_bytes, roster_rows, roster_zip

pytestmark = pytest.mark.django_db
MODELS = (AcademicSession, Course, Section, SectionTerm, Instructor, TeachingAssignment, Enrolment)


def _url(tenant, tail=""):
    return f"/api/v1/institutions/{tenant.institution.slug}/{tail}"


def _post(client, url, data=None, **kwargs):
    """A POST whose queued job runs (in-process) once the request's transaction commits."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(url, data, **kwargs)


def _upload(client, tenant, content: bytes | None = None, name="roster.zip", **extra):
    """Students are matched on users.csv's identifier (S001...) unless ``student_id_field=None``."""
    files = SimpleUploadedFile(name, roster_zip() if content is None else content)
    extra.setdefault("student_id_field", "identifier")
    extra = {key: value for key, value in extra.items() if value is not None}
    return _post(client, _url(tenant, "roster-imports/"), {"files": files, **extra}, format="multipart")


def _previewed(client, tenant, content=None, **extra) -> dict:
    """Upload (202) and read the roster import once its preview job ran."""
    response = _upload(client, tenant, content, **extra)
    assert response.status_code == 202, response.json()
    body = client.get(response.json()["url"]).json()
    assert body["status"] == "previewed", body
    return body


def _refused(client, tenant, content=None, **extra) -> dict:
    """Upload (202); the preview job refuses it: the roster import's state and its job's result."""
    response = _upload(client, tenant, content, **extra)
    assert response.status_code == 202, response.json()
    body = client.get(response.json()["url"]).json()
    assert body["status"] == "failed" and body["preview_job"]["status"] == JobStatus.FAILED, body
    assert body["preview"] == {} and set(_counts(tenant).values()) == {0}
    assert RosterImport.objects.for_institution(tenant.institution).get(pk=body["id"]).files == []
    return body


def _confirm(client, tenant, roster_id):
    return _post(client, _url(tenant, f"roster-imports/{roster_id}/confirm/"))


def _counts(tenant) -> dict[str, int]:
    return {model.__name__: model.objects.for_institution(tenant.institution).count() for model in MODELS}


def _preview_and_confirm(client, tenant, content=None):
    preview = _previewed(client, tenant, content)
    confirmed = _confirm(client, tenant, preview["id"])
    assert confirmed.status_code == 202, confirmed.json()
    done = client.get(preview["url"]).json()
    assert done["status"] == "committed" and done["commit_job"]["status"] == JobStatus.SUCCEEDED, done
    return preview, done


def test_preview_writes_nothing_but_itself_and_confirm_imports_into_this_institution_only(tenants, api_client):
    a, b = tenants
    api_client.force_authenticate(a.admin)
    response = _upload(api_client, a)
    assert response.status_code == 202, response.json()
    queued = response.json()
    assert queued["status"] == "checking" and queued["preview"] == {}  # answered before the job ran
    assert queued["preview_job"]["kind"] == JobKind.ROSTER_IMPORT and queued["preview_job"]["status"] == "queued"
    assert response["Location"] == queued["url"] and queued["url"].endswith(f"/roster-imports/{queued['id']}/")
    body = api_client.get(queued["url"]).json()
    assert body["status"] == "previewed" and body["uploaded_by"] == a.admin.username
    assert body["preview_job"]["status"] == JobStatus.SUCCEEDED
    assert body["preview"]["counts"]["sections"] == {"create": 3, "update": 0, "unchanged": 0, "delete": 0}
    assert body["preview"]["counts"]["enrolments"]["create"] == 5
    assert body["preview"]["counts"]["instructors"]["create"] == 2
    assert body["preview"]["ignored_files"] == ["manifest.csv"]
    assert set(_counts(a).values()) == {0}  # previewed: nothing imported yet

    confirmed = _confirm(api_client, a, body["id"])
    assert confirmed.status_code == 202, confirmed.json()
    assert confirmed.json()["status"] == "committing" and confirmed.json()["commit_job"]["status"] == "queued"
    done = api_client.get(body["url"]).json()
    assert done["status"] == "committed" and done["committed_by"] == a.admin.username
    assert _counts(a) == {"AcademicSession": 2, "Course": 2, "Section": 3, "SectionTerm": 4, "Instructor": 2,
                          "TeachingAssignment": 3, "Enrolment": 5}
    assert set(_counts(b).values()) == {0}
    # B has students with the very same external ids: the enrolments link A's.
    with institution_scope(a.institution):
        linked = set(Enrolment.objects.values_list("student__institution_id", "student__external_id"))
    assert linked == {(a.institution.pk, f"S00{i}") for i in (1, 2, 3, 4)}
    # The stored files are gone once committed: no copy of the roster outlives the import.
    assert RosterImport.objects.for_institution(a.institution).get().files == []


def test_the_same_roster_again_changes_nothing(tenant_a, api_client):
    api_client.force_authenticate(tenant_a.admin)
    _preview_and_confirm(api_client, tenant_a)
    before = {model.__name__: sorted(model.objects.for_institution(tenant_a.institution)
                                     .values_list("id", "updated_at")) for model in MODELS if model is not SectionTerm}
    preview, _ = _preview_and_confirm(api_client, tenant_a)
    counts = preview["preview"]["counts"]
    assert all(kind["create"] == kind["update"] == kind["delete"] == 0 for kind in counts.values())
    assert counts["enrolments"]["unchanged"] == 5
    after = {model.__name__: sorted(model.objects.for_institution(tenant_a.institution)
                                    .values_list("id", "updated_at")) for model in MODELS if model is not SectionTerm}
    assert after == before


def test_a_later_roster_updates_and_deletes_and_the_preview_says_what_goes_with_it(tenant_a, api_client):
    api_client.force_authenticate(tenant_a.admin)
    _preview_and_confirm(api_client, tenant_a)
    rows = roster_rows()
    rows["classes"][0]["location"] = "Room 9"
    rows["classes"][1]["termSourcedIds"] = "t-2026a"
    rows["courses"][1]["status"] = "tobedeleted"  # chemistry goes, with its section and enrolments
    rows["classes"] = rows["classes"][:2]
    rows["enrollments"] = [row for row in rows["enrollments"] if row["classSourcedId"] != "k-chem-1"]
    preview, _ = _preview_and_confirm(api_client, tenant_a, roster_zip(rows))
    counts = preview["preview"]["counts"]
    assert counts["sections"] == {"create": 0, "update": 2, "unchanged": 0, "delete": 0}
    assert counts["courses"]["delete"] == 1
    assert preview["preview"]["cascade"] == {"sections": 1, "enrolments": 2, "teaching": 1}
    changes = {item["source_id"]: item["changes"] for item in preview["preview"]["examples"]["sections"]}
    assert changes["k-math-1"] == {"location": ["Room 4", "Room 9"]}
    assert changes["k-math-2"] == {"terms": [["t-2026a", "t-2027s"], ["t-2026a"]]}
    with institution_scope(tenant_a.institution):
        assert Section.objects.get(source_id="k-math-1").location == "Room 9"
        assert not Section.objects.filter(source_id="k-chem-1").exists()
        assert Enrolment.objects.count() == 3
        assert SectionTerm.objects.count() == 2


def test_enrolments_of_students_the_platform_does_not_know_are_skipped_and_listed(tenant_a, api_client):
    rows = roster_rows()
    rows["users"].append({"sourcedId": "u-new", "givenName": "New", "familyName": "Comer", "identifier": "S999"})
    rows["enrollments"].append({"sourcedId": "e-new", "classSourcedId": "k-math-1", "userSourcedId": "u-new",
                                "role": "student"})
    api_client.force_authenticate(tenant_a.admin)
    body = _previewed(api_client, tenant_a, roster_zip(rows), student_id_field="identifier")
    skipped = body["preview"]["skipped"]
    assert skipped["unknown_students"] == 1 and skipped["unknown_student_ids"] == ["S999"]
    assert body["preview"]["counts"]["enrolments"]["create"] == 5


def test_students_are_matched_on_sourced_id_by_default(tenant_a, api_client):
    api_client.force_authenticate(tenant_a.admin)
    # The users' sourcedIds (u-s1...) are no student's external id.
    body = _previewed(api_client, tenant_a, student_id_field=None)
    assert body["preview"]["skipped"]["unknown_students"] == 4
    assert body["preview"]["counts"]["enrolments"]["create"] == 0


def test_the_csv_files_can_be_sent_without_a_zip(tenant_a, api_client):
    api_client.force_authenticate(tenant_a.admin)
    files = [SimpleUploadedFile(f"{stem}.csv", csv_bytes(stem, rows)) for stem, rows in roster_rows().items()]
    response = _post(api_client, _url(tenant_a, "roster-imports/"), {"files": files, "student_id_field": "identifier"},
                     format="multipart")
    assert response.status_code == 202, response.json()
    assert api_client.get(response.json()["url"]).json()["preview"]["counts"]["enrolments"]["create"] == 5


@pytest.mark.parametrize(("change", "code", "words"), [
    (lambda rows: rows.pop("enrollments"), "roster_missing_file", "lacks enrollments.csv"),
    (lambda rows: rows.update(extra=[{"a": 1}]), "roster_unknown_file", "extra.csv"),
])
def test_a_file_set_that_is_not_a_roster_is_refused_with_a_specific_message(tenant_a, api_client, change, code,
                                                                             words):
    rows = roster_rows()
    change(rows)
    api_client.force_authenticate(tenant_a.admin)
    if "extra" in rows:
        content = roster_zip({k: v for k, v in rows.items() if k != "extra"}, extra={"extra.csv": b"a\r\n1\r\n"})
    else:
        content = roster_zip(rows)
    body = _refused(api_client, tenant_a, content)
    assert body["result"]["code"] == code and words in body["preview_job"]["error"]


def _zip_with(replace: dict[str, tuple[bytes, bytes]]) -> bytes:
    """The test roster's zip with one byte string replaced in the named files."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(roster_zip())) as source, zipfile.ZipFile(buffer, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename in replace:
                data = data.replace(*replace[info.filename])
            target.writestr(info.filename, data)
    return buffer.getvalue()


@pytest.mark.parametrize(("replace", "code", "words"), [
    ({"enrollments.csv": (b",role,", b",roleType,")}, "roster_missing_column", "enrollments.csv lacks the column role"),
    ({"users.csv": (b"Lovelace", "Lövelace".encode("latin-1"))}, "roster_not_utf8", "users.csv is not UTF-8"),
    ({"classes.csv": (b"Room 4", b'"Room 4')}, "roster_bad_csv", "classes.csv cannot be read as CSV"),
])
def test_a_file_that_cannot_be_read_is_refused_with_what_to_fix(tenant_a, api_client, replace, code, words):
    api_client.force_authenticate(tenant_a.admin)
    body = _refused(api_client, tenant_a, _zip_with(replace))
    assert body["result"]["code"] == code and words in body["preview_job"]["error"]
    assert body["preview_job"]["result"]["file_error"]["code"] == code


def test_a_broken_zip_is_refused(tenant_a, api_client):
    api_client.force_authenticate(tenant_a.admin)
    broken = _refused(api_client, tenant_a, b"PK\x03\x04 not really a zip")
    assert broken["result"]["code"] == "roster_bad_zip"


def test_row_errors_name_the_file_row_and_column_and_nothing_is_written(tenant_a, api_client):
    rows = roster_rows()
    rows["enrollments"][0]["classSourcedId"] = "k-nowhere"
    rows["academicSessions"][1]["endDate"] = "2026-13-01"
    api_client.force_authenticate(tenant_a.admin)
    body = _refused(api_client, tenant_a, roster_zip(rows))
    assert body["result"]["code"] == "roster_invalid" and body["preview_job"]["result"]["code"] == "roster_invalid"
    found = {(item["file"], item["row"], item["column"]) for item in body["result"]["errors"]}
    assert ("academicSessions.csv", 3, "endDate") in found
    rows["academicSessions"][1]["endDate"] = "2027-05-30"
    body = _refused(api_client, tenant_a, roster_zip(rows))
    assert body["result"]["errors"] == [{"file": "enrollments.csv", "row": 2, "column": "classSourcedId",
                                         "value": "k-nowhere", "reason": "is in neither classes.csv nor the platform"}]
    assert "1 problem(s)" in body["preview_job"]["error"]


@override_settings(ROSTER_IMPORT_MAX_UNCOMPRESSED_BYTES=2000)
def test_a_zip_that_inflates_beyond_the_limit_is_refused(tenant_a, api_client):
    api_client.force_authenticate(tenant_a.admin)
    body = _refused(api_client, tenant_a, roster_zip(extra={"padding/roles.csv": b"userSourcedId,role\r\n"
                                                            + b"x,y\r\n" * 5000}))
    assert body["result"]["code"] == "roster_too_large"


@override_settings(IMPORT_MAX_FILE_BYTES=500)
def test_an_upload_beyond_the_size_limit_is_refused_with_413(tenant_a, api_client):
    api_client.force_authenticate(tenant_a.admin)
    response = _upload(api_client, tenant_a)
    assert response.status_code == 413 and response.json()["code"] == "file_too_large"
    assert not RosterImport.objects.for_institution(tenant_a.institution).exists()


def test_a_preview_made_stale_by_a_change_in_between_is_not_applied(tenant_a, api_client):
    api_client.force_authenticate(tenant_a.admin)
    first = _previewed(api_client, tenant_a)
    second = _previewed(api_client, tenant_a)
    assert _confirm(api_client, tenant_a, first["id"]).status_code == 202
    assert api_client.get(first["url"]).json()["status"] == "committed"
    before = _counts(tenant_a)
    assert _confirm(api_client, tenant_a, second["id"]).status_code == 202
    stale = api_client.get(second["url"]).json()
    assert stale["status"] == "previewed" and stale["commit_job"]["status"] == JobStatus.FAILED
    assert stale["commit_job"]["result"]["code"] == "roster_preview_changed"
    assert "changed since the preview" in stale["commit_job"]["error"]
    assert stale["preview"]["counts"]["sections"]["unchanged"] == 3 and _counts(tenant_a) == before
    assert _confirm(api_client, tenant_a, second["id"]).status_code == 202  # reviewed: it does nothing
    assert api_client.get(second["url"]).json()["status"] == "committed"
    done = _confirm(api_client, tenant_a, second["id"])
    assert done.status_code == 400 and done.json()["code"] == "roster_not_pending"


def test_a_discarded_preview_cannot_be_confirmed(tenant_a, api_client):
    api_client.force_authenticate(tenant_a.admin)
    preview = _previewed(api_client, tenant_a)
    discarded = api_client.post(_url(tenant_a, f"roster-imports/{preview['id']}/discard/"))
    assert discarded.json()["status"] == RosterImportStatus.DISCARDED
    assert RosterImport.objects.for_institution(tenant_a.institution).get().files == []
    assert _confirm(api_client, tenant_a, preview["id"]).status_code == 400
    assert set(_counts(tenant_a).values()) == {0}


def test_advisors_and_viewers_cannot_import(tenant_a, api_client):
    for user in (tenant_a.advisor, tenant_a.viewer):
        api_client.force_authenticate(user)
        assert _upload(api_client, tenant_a).status_code == 403
    assert not RosterImport.objects.for_institution(tenant_a.institution).exists()


# --- reads, and the other institution ----------------------------------------------------------

RESOURCES = ("terms", "courses", "sections", "instructors", "enrolments", "roster-imports")


@pytest.fixture
def imported_a(tenant_a, api_client):
    api_client.force_authenticate(tenant_a.admin)
    rows = roster_rows()
    files = [SimpleUploadedFile(f"{stem}.csv", csv_bytes(stem, file_rows)) for stem, file_rows in rows.items()]
    preview = _post(api_client, _url(tenant_a, "roster-imports/"), {"files": files, "student_id_field": "identifier"},
                    format="multipart").json()
    _confirm(api_client, tenant_a, preview["id"])
    assert api_client.get(preview["url"]).json()["status"] == "committed"
    api_client.force_authenticate(None)
    return tenant_a


def test_the_read_resources_list_the_roster(imported_a, api_client):
    api_client.force_authenticate(imported_a.admin)
    sections = api_client.get(_url(imported_a, "sections/")).json()["results"]
    by_code = {section["class_code"]: section for section in sections}
    assert by_code["MATH101-1"]["instructors"][0]["name"] == "Ada Lovelace"
    assert by_code["MATH101-1"]["enrolment_count"] == 3 and len(by_code["MATH101-2"]["terms"]) == 2
    course = by_code["MATH101-1"]["course"]
    assert api_client.get(_url(imported_a, f"sections/?course={course}")).json()["count"] == 2
    instructors = api_client.get(_url(imported_a, "instructors/")).json()["results"]
    assert [len(item["sections"]) for item in instructors] == [2, 1]
    student = imported_a.students[0]
    enrolments = api_client.get(_url(imported_a, f"enrolments/?student={student.pk}")).json()["results"]
    assert [item["student_external_id"] for item in enrolments] == ["S001"]
    terms = api_client.get(_url(imported_a, "terms/")).json()["results"]
    assert [term["title"] for term in terms] == ["Spring 2027", "Autumn 2026"]
    # Advisors read the roster; viewers (aggregates only) do not.
    api_client.force_authenticate(imported_a.advisor)
    assert api_client.get(_url(imported_a, "sections/")).status_code == 200
    api_client.force_authenticate(imported_a.viewer)
    assert api_client.get(_url(imported_a, "sections/")).status_code == 403


@pytest.mark.parametrize("resource", RESOURCES)
def test_admin_of_other_institution_gets_404_on_every_roster_resource(imported_a, tenant_b, api_client, resource):
    api_client.force_authenticate(imported_a.admin)
    own = api_client.get(_url(imported_a, f"{resource}/")).json()["results"]
    assert own
    api_client.force_authenticate(tenant_b.admin)
    assert api_client.get(_url(imported_a, f"{resource}/")).status_code == 404
    assert api_client.get(_url(tenant_b, f"{resource}/")).json()["results"] == []
    missing = api_client.get(_url(tenant_b, f"{resource}/999999999/"))
    foreign = api_client.get(_url(tenant_b, f"{resource}/{own[0]['id']}/"))
    assert foreign.status_code == 404 and foreign.content == missing.content


def test_other_institution_cannot_confirm_or_discard_a_preview_nor_import_into_it(tenant_a, tenant_b, api_client):
    api_client.force_authenticate(tenant_a.admin)
    preview = _previewed(api_client, tenant_a)
    api_client.force_authenticate(tenant_b.admin)
    for verb in ("confirm", "discard"):
        assert _post(api_client, _url(tenant_b, f"roster-imports/{preview['id']}/{verb}/")).status_code == 404
        assert _post(api_client, _url(tenant_a, f"roster-imports/{preview['id']}/{verb}/")).status_code == 404
    assert api_client.get(_url(tenant_b, f"roster-imports/{preview['id']}/")).status_code == 404
    assert _upload(api_client, tenant_a).status_code == 404
    roster = RosterImport.objects.for_institution(tenant_a.institution).get()
    assert roster.status == RosterImportStatus.PREVIEWED and roster.commit_job is None
    assert not RosterImport.objects.for_institution(tenant_b.institution).exists()
    # B's jobs page and jobs API do not list A's roster job.
    assert api_client.get(_url(tenant_b, "jobs/")).json()["results"] == []


def test_an_api_key_reads_the_roster_with_the_courses_scope_and_only_its_own(imported_a, tenant_b, api_client):
    _, raw = api_key_create(institution=imported_a.institution, name="LMS", scopes=["courses:read"],
                            created_by=imported_a.admin)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert api_client.get(_url(imported_a, "sections/")).json()["count"] == 3
    assert api_client.get(_url(tenant_b, "sections/")).status_code == 404
    assert api_client.get(_url(imported_a, "students/")).status_code == 403
    assert _upload(api_client, imported_a).status_code == 403  # importing needs imports:write
