"""The file-import endpoint (202 + job), and the page, CLI and API producing the same students."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from institutions.api_keys import ALL_SCOPES, api_key_create
from institutions.models import Job, JobKind, JobStatus, Role
from students.models import FeatureDefinition, ImportMapping, ImportUpload, Student
from tests.factories import InstitutionFactory, MembershipFactory, UserFactory

from .import_helpers import GOOD_CSV, UCI_FILE, database_state, student_snapshot
from .test_import_pages import import_through_pages

pytestmark = pytest.mark.django_db


def post_file(api_client, slug, name, content, capture, **data):
    with capture(execute=True):
        return api_client.post(reverse("api-import-file", args=[slug]),
                               {"file": SimpleUploadedFile(name, content), **data}, format="multipart")


def test_file_endpoint_answers_202_with_the_job_to_poll(api_client, tenant_a, django_capture_on_commit_callbacks):
    api_client.force_authenticate(tenant_a.admin)
    response = post_file(api_client, "alpha", "good.csv", GOOD_CSV.encode(), django_capture_on_commit_callbacks)

    assert response.status_code == 202, response.content
    job_url = response.json()["job_url"]
    assert job_url.endswith(reverse("api-job-detail", args=["alpha", response.json()["job_id"]]))
    assert response["Location"] == job_url
    job = api_client.get(job_url).json()
    assert job["kind"] == JobKind.IMPORT and job["status"] == JobStatus.SUCCEEDED
    assert Student.objects.for_institution(tenant_a.institution).get(external_id="N100").name == "Costa, Rui"


def test_file_endpoint_with_an_api_key_and_an_invalid_value_reports_it_on_the_job(
    api_client, tenants, django_capture_on_commit_callbacks
):
    a, b = tenants
    _key, raw = api_key_create(institution=a.institution, name="SIS", scopes=list(ALL_SCOPES), created_by=a.admin)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    before = database_state(a.institution, b.institution)
    content = GOOD_CSV.replace(",m,Dropout", ",x,Dropout").encode()

    response = post_file(api_client, "alpha", "bad.csv", content, django_capture_on_commit_callbacks)

    assert response.status_code == 202
    job = Job.objects.for_institution(a.institution).get(pk=response.json()["job_id"])
    assert job.status == JobStatus.FAILED and "nothing was imported" in job.error
    assert job.result["errors"] == [{"row": 3, "column": "gender", "value": "x",
                                     "reason": "'x' is not one of the categories (f, m)"}]
    assert database_state(a.institution, b.institution) == before


@pytest.mark.parametrize("content,code", [
    (b"\x1f\x8b\x08\x00gzip", "binary_file"),
    (b"", "empty_file"),
])
def test_file_refused_as_a_whole_fails_its_job_with_the_code_and_writes_nothing(
    api_client, tenants, content, code, django_capture_on_commit_callbacks
):
    a, b = tenants
    api_client.force_authenticate(a.admin)
    before = database_state(a.institution, b.institution)
    response = post_file(api_client, "alpha", "x.csv", content, django_capture_on_commit_callbacks)
    assert response.status_code == 202  # the file is read by the job, in the worker
    job = api_client.get(response.json()["job_url"]).json()
    assert job["status"] == JobStatus.FAILED and job["result"]["file_error"]["code"] == code
    assert job["error"] == job["result"]["file_error"]["message"]
    assert database_state(a.institution, b.institution) == before


def test_a_mapping_that_is_not_json_answers_400_before_the_file_is_stored(
    api_client, tenant_a, django_capture_on_commit_callbacks
):
    api_client.force_authenticate(tenant_a.admin)
    response = post_file(api_client, "alpha", "good.csv", GOOD_CSV.encode(), django_capture_on_commit_callbacks,
                         mapping="{not json")
    assert response.status_code == 400 and response.json()["code"] == "invalid_mapping"
    assert not ImportUpload.objects.for_institution(tenant_a.institution).exists()
    assert not Job.objects.for_institution(tenant_a.institution).exists()


def test_without_a_mapping_the_job_suggests_one_and_returns_it(api_client, tenant_a,
                                                              django_capture_on_commit_callbacks):
    api_client.force_authenticate(tenant_a.admin)
    response = post_file(api_client, "alpha", "good.csv", GOOD_CSV.encode(), django_capture_on_commit_callbacks,
                         dry_run="true")
    assert response.status_code == 202 and response.json()["mapping"] is None
    job = api_client.get(response.json()["job_url"]).json()
    assert job["status"] == JobStatus.SUCCEEDED
    assert job["result"]["mapping"]["columns"]["student_id"]["target"] == "external_id"
    upload = ImportUpload.objects.for_institution(tenant_a.institution).get(pk=response.json()["upload_id"])
    assert upload.mapping == job["result"]["mapping"]


def test_a_given_mapping_that_does_not_fit_the_file_fails_the_job_and_is_not_remembered(
    api_client, tenant_a, django_capture_on_commit_callbacks
):
    api_client.force_authenticate(tenant_a.admin)
    before = database_state(tenant_a.institution)
    mapping = '{"columns": {"no_such_column": "external_id"}}'
    response = post_file(api_client, "alpha", "good.csv", GOOD_CSV.encode(), django_capture_on_commit_callbacks,
                         mapping=mapping)
    assert response.status_code == 202
    job = api_client.get(response.json()["job_url"]).json()
    assert job["status"] == JobStatus.FAILED and "no_such_column" in job["error"]
    assert job["result"]["file_error"]["code"]
    assert not ImportMapping.objects.for_institution(tenant_a.institution).exists()
    assert database_state(tenant_a.institution) == before

    good = '{"columns": {"student_id": "external_id", "name": "name"}}'
    response = post_file(api_client, "alpha", "good.csv", GOOD_CSV.encode(), django_capture_on_commit_callbacks,
                         mapping=good, dry_run="true")
    assert api_client.get(response.json()["job_url"]).json()["status"] == JobStatus.SUCCEEDED
    remembered = ImportMapping.objects.for_institution(tenant_a.institution).get()
    assert remembered.columns["student_id"]["target"] == "external_id"


def test_oversize_file_answers_413(api_client, tenant_a, settings, django_capture_on_commit_callbacks):
    settings.IMPORT_MAX_FILE_BYTES = 10
    settings.IMPORT_MAX_BULK_FILE_BYTES = 10  # the API's limit (tests/students/test_bulk_upload.py: the two)
    api_client.force_authenticate(tenant_a.admin)
    response = post_file(api_client, "alpha", "x.csv", GOOD_CSV.encode(), django_capture_on_commit_callbacks)
    assert response.status_code == 413 and response.json()["code"] == "file_too_large"


def test_dry_run_validates_and_writes_nothing(api_client, tenant_a, django_capture_on_commit_callbacks):
    api_client.force_authenticate(tenant_a.admin)
    before = database_state(tenant_a.institution)
    response = post_file(api_client, "alpha", "good.csv", GOOD_CSV.encode(), django_capture_on_commit_callbacks,
                         dry_run="true")
    job = Job.objects.for_institution(tenant_a.institution).get(pk=response.json()["job_id"])
    assert job.status == JobStatus.SUCCEEDED and job.result["summary"].startswith("Ready to import: 1 created")
    assert database_state(tenant_a.institution) == before


def test_advisor_cannot_import_files(api_client, tenant_a, django_capture_on_commit_callbacks):
    api_client.force_authenticate(tenant_a.advisor)
    response = post_file(api_client, "alpha", "good.csv", GOOD_CSV.encode(), django_capture_on_commit_callbacks)
    assert response.status_code == 403


def test_cannot_import_into_another_institution(api_client, tenants, django_capture_on_commit_callbacks):
    a, b = tenants
    api_client.force_authenticate(a.admin)
    before = database_state(b.institution)
    response = post_file(api_client, "beta", "good.csv", GOOD_CSV.encode(), django_capture_on_commit_callbacks)
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert database_state(b.institution) == before
    assert not Job.objects.for_institution(b.institution).exists()


def test_page_cli_and_api_produce_the_same_students(client, api_client, tenants, tmp_path,
                                                    django_capture_on_commit_callbacks):
    a, b = tenants
    c_institution = InstitutionFactory(slug="gamma")
    c_admin = UserFactory(username="gamma-admin")
    MembershipFactory(institution=c_institution, user=c_admin, role=Role.ADMIN)
    for institution in (a.institution, b.institution):
        FeatureDefinition.objects.for_institution(institution).filter(key="gender").delete()  # UCI codes it 0/1
        Student.objects.for_institution(institution).delete()  # numbered rows: only a first import

    import_through_pages(client, a, "uci.csv", UCI_FILE.read_bytes(), django_capture_on_commit_callbacks)
    call_command("import_students", "beta", str(UCI_FILE), "--no-progress", stdout=StringIO())
    api_client.force_authenticate(c_admin)
    response = post_file(api_client, "gamma", "uci.csv", UCI_FILE.read_bytes(), django_capture_on_commit_callbacks)
    assert response.status_code == 202

    snapshots = []
    for institution in (a.institution, b.institution, c_institution):
        snapshot = {key: value for key, value in student_snapshot(institution).items() if key.startswith("UCI-")}
        snapshots.append(snapshot)
    assert len(snapshots[0]) == 4424
    assert snapshots[0] == snapshots[1] == snapshots[2]
    jobs = [Job.objects.for_institution(i).get(kind=JobKind.IMPORT, params__commit=True)
            for i in (a.institution, b.institution, c_institution)]
    assert [job.counts["created"] for job in jobs] == [4424, 4424, 4424]
    assert {job.triggered_by for job in jobs} == {"user", "cli", "api"}


BULK_URL = "/api/v1/institutions/{}/students/bulk-upsert/"


def test_bulk_upsert_takes_10000_students_in_one_request_and_refuses_more(api_client, tenants):
    a, b = tenants
    api_client.force_authenticate(a.admin)
    batch = [{"external_id": f"B{n:05d}", "cohort": "2026", "features": {"units_approved": n % 31, "gender": "m"}}
             for n in range(10_000)]

    response = api_client.post(BULK_URL.format("alpha"), {"students": batch}, format="json")

    assert response.status_code == 200, response.content[:300]
    assert (response.json()["created"], len(response.json()["results"])) == (10_000, 10_000)
    assert Student.objects.for_institution(a.institution).filter(external_id__startswith="B").count() == 10_000
    again = api_client.post(BULK_URL.format("alpha"), {"students": batch}, format="json").json()
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 10_000)
    too_many = api_client.post(BULK_URL.format("alpha"), {"students": [*batch, {"external_id": "X"}]}, format="json")
    assert too_many.status_code == 400 and "at most 10000 students" in str(too_many.json()["errors"])
    assert not Student.objects.for_institution(b.institution).filter(external_id__startswith="B").exists()


def test_bulk_upsert_sends_import_committed_only_when_something_changed(api_client, tenant_a):
    from students.signals import import_committed

    received = []

    def receiver(sender, **kwargs):
        received.append(kwargs)

    import_committed.connect(receiver)
    try:
        api_client.force_authenticate(tenant_a.admin)
        batch = {"students": [{"external_id": "S001", "name": "Renamed"}]}
        assert api_client.post(BULK_URL.format("alpha"), batch, format="json").json()["updated"] == 1
        assert api_client.post(BULK_URL.format("alpha"), batch, format="json").json()["unchanged"] == 1
    finally:
        import_committed.disconnect(receiver)
    assert received == [{"signal": import_committed, "institution_id": tenant_a.institution.pk, "job_id": None}]


def test_bulk_upsert_keeps_carriage_returns_quotes_and_commas_exactly(api_client, tenant_a):
    # On PostgreSQL these values travel through COPY's CSV format; a bare "\r" used to break it.
    api_client.force_authenticate(tenant_a.admin)
    names = {"CR1": "line\rbreak", "CR2": 'say "hi", then\r\nleave', "CR3": "tab\there\nand newline"}
    batch = [{"external_id": key, "name": name} for key, name in names.items()]

    response = api_client.post(BULK_URL.format("alpha"), {"students": batch}, format="json")

    assert response.status_code == 200, response.content[:300]
    stored = dict(Student.objects.for_institution(tenant_a.institution).filter(external_id__in=names)
                  .values_list("external_id", "name"))
    assert stored == names
    changed = {**names, "CR1": "line\rbreak, edited"}
    api_client.post(BULK_URL.format("alpha"), {"students": [{"external_id": "CR1", "name": changed["CR1"]}]},
                    format="json")
    assert Student.objects.for_institution(tenant_a.institution).get(external_id="CR1").name == changed["CR1"]
