"""Every read of student-level data appends one entry, at the place each channel hands it out:
pages, exports, the API, import reports. Another institution's ids record nothing anywhere."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from audit.models import AccessAction, AccessEntry
from audit.services import WITHHELD
from interventions.models import Flag, Intervention, InterventionType
from tests.interventions.conftest import record_run
from tests.students.import_helpers import GOOD_CSV

pytestmark = pytest.mark.django_db
ADDRESS = "198.51.100.4"


def entries(tenant):
    return list(AccessEntry.objects.for_institution(tenant.institution).order_by("id"))


def page_client(user) -> Client:
    client = Client(REMOTE_ADDR=ADDRESS)
    client.force_login(user)
    return client


def test_profile_view_records_who_which_student_when_and_from_where(tenants):
    a, b = tenants
    student = a.students[0]
    response = page_client(a.advisor).get(reverse("student-detail", args=["alpha", student.pk]))
    assert response.status_code == 200
    [entry] = entries(a)
    assert (entry.action, entry.student_id, entry.actor_user_id, entry.actor_name, entry.ip_address) == (
        AccessAction.PROFILE_VIEW, student.pk, a.advisor.pk, a.advisor.username, ADDRESS)
    assert entry.api_key_id is None and entry.created_at is not None
    assert entries(b) == []


def test_another_institutions_student_records_nothing_in_either_institution(tenants):
    a, b = tenants
    client = page_client(a.admin)
    assert client.get(reverse("student-detail", args=["alpha", b.students[0].pk])).status_code == 404
    assert client.post(reverse("student-what-if", args=["alpha", b.students[0].pk]), "{}",
                       content_type="application/json").status_code == 404
    assert entries(a) == [] and entries(b) == []


def test_a_refused_what_if_records_nothing(tenant_a):
    response = page_client(tenant_a.advisor).post(
        reverse("student-what-if", args=["alpha", tenant_a.students[0].pk]), "not json",
        content_type="application/json")
    assert response.status_code == 400
    assert entries(tenant_a) == []


def test_student_search_records_the_filter_and_count_but_never_the_search_text(tenant_a):
    response = page_client(tenant_a.admin).get(reverse("student-list", args=["alpha"]), {"q": "S00"})
    assert response.status_code == 200
    [entry] = entries(tenant_a)
    assert entry.action == AccessAction.STUDENT_SEARCH
    assert entry.filters == {"q": WITHHELD}
    assert entry.result_count == len(response.context["students"]) == 6
    assert not AccessEntry.objects.for_institution(tenant_a.institution).filter(filters__icontains="S00").exists()


def test_worklist_pages_and_their_csv_export_record_filter_and_row_count(tenant_a):
    a = tenant_a
    record_run(a.institution, {s: 0.9 - i / 10 for i, s in enumerate(a.students)})
    client = page_client(a.admin)
    flagged = client.get(reverse("flagged-list", args=["alpha"]), {"band": "high"})
    assert flagged.status_code == 200
    export = client.get(reverse("flagged-list", args=["alpha"]), {"export": "csv"})
    rows = b"".join(export.streaming_content).decode().strip().splitlines()
    caseload = page_client(a.advisor).get(reverse("caseload", args=["alpha"]))
    assert caseload.status_code == 200
    shown, exported, own = entries(a)
    assert (shown.action, shown.filters, shown.result_count) == (
        AccessAction.FLAGGED_LIST, {"band": "high"}, len(flagged.context["students"]))
    assert (exported.action, exported.result_count) == (AccessAction.WORKLIST_EXPORT, len(rows) - 1)
    assert exported.filters == {"list": AccessAction.FLAGGED_LIST}
    assert (own.action, own.actor_user_id, own.result_count) == (
        AccessAction.CASELOAD, a.advisor.pk, len(caseload.context["students"]))


def test_intervention_pages_record_the_list_and_the_student_of_an_opened_intervention(tenant_a):
    a = tenant_a
    kind = InterventionType.objects.for_institution(a.institution).first() or \
        InterventionType.objects.for_institution(a.institution).create(key="call", label="Call")
    intervention = Intervention.objects.for_institution(a.institution).create(
        student=a.students[2], intervention_type=kind, date="2026-11-01", author=a.admin)
    client = page_client(a.admin)
    assert client.get(reverse("intervention-list", args=["alpha"])).status_code == 200
    assert client.get(reverse("intervention-edit", args=["alpha", intervention.pk])).status_code == 200
    listed, opened = entries(a)
    assert (listed.action, listed.result_count) == (AccessAction.INTERVENTION_LIST, 1)
    assert (opened.action, opened.student_id, opened.object_id) == (
        AccessAction.INTERVENTION_VIEW, a.students[2].pk, intervention.pk)


def api_client_with_key(api_client, make_key, tenant):
    api_key, raw = make_key(tenant, name="Nightly SIS sync")
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return api_client, api_key


@pytest.fixture
def make_key():
    from institutions.api_keys import ALL_SCOPES, api_key_create

    def make(tenant, name="SIS"):
        return api_key_create(institution=tenant.institution, name=name, scopes=list(ALL_SCOPES),
                              created_by=tenant.admin)
    return make


def test_api_student_reads_record_the_key_and_lists_record_page_size(tenants, api_client, make_key):
    a, b = tenants
    client, api_key = api_client_with_key(api_client, make_key, a)
    base = "/api/v1/institutions/alpha/students/"
    assert client.get(f"{base}{a.students[1].pk}/", REMOTE_ADDR=ADDRESS).status_code == 200
    assert client.get(base, {"page_size": 2, "page": 2}).status_code == 200
    assert client.get(base, {"program": "No such programme"}).status_code == 200
    assert client.get(f"{base}{b.students[1].pk}/").status_code == 404
    one, page, filtered = entries(a)
    assert (one.action, one.student_id, one.api_key_id, one.actor_user_id, one.ip_address) == (
        AccessAction.API_STUDENT_READ, a.students[1].pk, api_key.pk, None, ADDRESS)
    assert api_key.display_prefix in one.actor_name and "Nightly SIS sync" in one.actor_name
    assert (page.action, page.result_count, page.filters) == (AccessAction.API_STUDENT_LIST, 2, {"page": "2"})
    assert (filtered.filters, filtered.result_count) == ({"program": "No such programme"}, 0)
    assert entries(b) == []


def test_api_interventions_flags_and_predictions_record_their_student(tenants, api_client, make_key):
    a, b = tenants
    client, _ = api_client_with_key(api_client, make_key, a)
    student = a.students[3]
    record_run(a.institution, dict.fromkeys(a.students, 0.5))
    kind = InterventionType.objects.for_institution(a.institution).create(key="mail", label="Mail")
    intervention = Intervention.objects.for_institution(a.institution).create(
        student=student, intervention_type=kind, date="2026-11-01", author=a.admin)
    flag = Flag.objects.for_institution(a.institution).create(student=student, reason="Missed classes",
                                                              raised_by=a.admin)
    base = "/api/v1/institutions/alpha"
    for url in (f"{base}/interventions/?student={student.pk}", f"{base}/interventions/{intervention.pk}/",
                f"{base}/flags/{flag.pk}/", f"{base}/flags/", f"{base}/predictions/",
                f"{base}/students/{student.pk}/prediction/", f"{base}/students/{student.pk}/predictions/"):
        assert client.get(url).status_code == 200, url
    assert client.get(f"{base}/students/{b.students[0].pk}/prediction/").status_code == 404
    b_kind = InterventionType.objects.for_institution(b.institution).create(key="mail", label="Mail")
    b_intervention = Intervention.objects.for_institution(b.institution).create(
        student=b.students[0], intervention_type=b_kind, date="2026-11-01", author=b.admin)
    b_flag = Flag.objects.for_institution(b.institution).create(student=b.students[0], reason="x", raised_by=b.admin)
    for url in (f"{base}/interventions/{b_intervention.pk}/", f"{base}/flags/{b_flag.pk}/",
                f"{base}/students/{b.students[0].pk}/predictions/"):
        assert client.get(url).status_code == 404, url
    got = [(e.action, e.student_id, e.object_id, e.result_count, e.filters) for e in entries(a)]
    assert got == [
        (AccessAction.API_INTERVENTION_LIST, student.pk, None, 1, {}),
        (AccessAction.API_INTERVENTION_READ, student.pk, intervention.pk, None, {}),
        (AccessAction.API_FLAG_READ, student.pk, flag.pk, None, {}),
        (AccessAction.API_FLAG_LIST, None, None, 1, {}),
        (AccessAction.API_PREDICTION_LIST, None, None, len(a.students), {}),
        (AccessAction.API_PREDICTION_READ, student.pk, None, None, {}),
        (AccessAction.API_PREDICTION_HISTORY, student.pk, None, 1, {}),
    ]
    assert entries(b) == []


def test_import_reports_with_cell_values_are_recorded_on_every_channel(tenants, api_client,
                                                                        django_capture_on_commit_callbacks):
    a, b = tenants
    api_client.force_authenticate(a.admin)
    bad = GOOD_CSV + "N200,Bad Row,bad@example.edu,99,yes,f,Enrolled\r\n"
    with django_capture_on_commit_callbacks(execute=True):
        posted = api_client.post(reverse("api-import-file", args=["alpha"]),
                                 {"file": SimpleUploadedFile("bad.csv", bad.encode()), "dry_run": "true"},
                                 format="multipart")
    assert posted.status_code == 202, posted.content
    job_id, upload_id = posted.json()["job_id"], posted.json()["upload_id"]
    AccessEntry.objects.for_institution(a.institution).count()  # whatever the upload itself read
    before = len(entries(a))
    assert api_client.get(reverse("api-job-detail", args=["alpha", job_id])).status_code == 200
    page = page_client(a.admin)
    detail = page.get(reverse("import-detail", args=["alpha", upload_id]))
    assert detail.status_code == 200
    errors_csv = page.get(reverse("import-errors-csv", args=["alpha", upload_id]))
    assert errors_csv.status_code == 200
    # Another institution's admin reaches none of it, and records nothing.
    other = page_client(b.admin)
    assert other.get(reverse("import-detail", args=["beta", upload_id])).status_code == 404
    assert other.get(reverse("import-errors-csv", args=["beta", upload_id])).status_code == 404
    got = [(e.action, e.object_id) for e in entries(a)[before:]]
    assert got[0] == (AccessAction.IMPORT_JOB_RESULT, job_id)
    assert (AccessAction.IMPORT_REPORT, upload_id) in got
    assert got[-1] == (AccessAction.IMPORT_ERRORS_EXPORT, upload_id)
    assert entries(a)[-1].result_count == 1
    assert entries(b) == []


def test_api_activity_list_records_the_student_by_number_never_their_external_id(tenants, api_client, make_key):
    a, b = tenants
    client, _ = api_client_with_key(api_client, make_key, a)
    student = a.students[4]
    url = "/api/v1/institutions/alpha/activity-events/"
    assert client.get(url, {"student": student.external_id, "type": "login"}).status_code == 200
    assert client.get(url, {"student": "NOT-A-STUDENT"}).status_code == 200
    named, unknown = entries(a)
    assert (named.action, named.student_id, named.filters) == (AccessAction.API_ACTIVITY_LIST, student.pk,
                                                               {"type": "login"})
    assert (unknown.student_id, unknown.filters) == (None, {})
    assert entries(b) == []
