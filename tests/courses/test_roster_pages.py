"""The roster import pages: upload (a job checks it), preview (nothing imported), confirm (a job
imports it); other institutions and other roles get nothing. The jobs run in-process when the
request's transaction commits, unless a test holds them back (``execute=False``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import TestCase

from courses.models import Enrolment, RosterImport, RosterImportStatus, Section
from courses.tasks import run_roster_import
from institutions.jobs import job_cancel
from institutions.models import Job, JobKind, JobStatus

from .roster_files import csv_bytes, roster_rows, roster_zip

pytestmark = pytest.mark.django_db


def _post_roster(client, tenant, content=None, **data):
    files = SimpleUploadedFile("roster.zip", roster_zip() if content is None else content)
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(f"/i/{tenant.institution.slug}/rosters/",
                           {"files": files, "student_id_field": "identifier", **data})


def _run_queued(callbacks) -> None:
    for callback in callbacks:
        callback()


def test_admin_uploads_sees_the_preview_then_confirms(client, tenants):
    a, b = tenants
    client.force_login(a.admin)
    assert client.get(f"/i/{a.institution.slug}/rosters/").status_code == 200
    response = _post_roster(client, a)
    roster = RosterImport.objects.for_institution(a.institution).get()
    assert response.status_code == 302 and response["Location"] == f"/i/{a.institution.slug}/rosters/{roster.pk}/"
    page = client.get(response["Location"]).content.decode()
    assert "Nothing has been imported yet" in page and "Import this roster" in page
    assert "Calculus I, section 1" in page and "manifest.csv" in page
    assert not Section.objects.for_institution(a.institution).exists()
    with TestCase.captureOnCommitCallbacks(execute=True):
        confirmed = client.post(f"/i/{a.institution.slug}/rosters/{roster.pk}/confirm/")
    assert confirmed["Location"] == f"/i/{a.institution.slug}/rosters/{roster.pk}/"
    assert "The roster was imported." in client.get(confirmed["Location"]).content.decode()
    roster.refresh_from_db()
    assert roster.status == RosterImportStatus.COMMITTED and roster.committed_by == a.admin
    assert Enrolment.objects.for_institution(a.institution).count() == 5
    assert not Enrolment.objects.for_institution(b.institution).exists()


def test_the_upload_page_lists_each_row_problem_and_imports_nothing(client, tenant_a):
    rows = roster_rows()
    rows["classes"][0]["termSourcedIds"] = "t-unknown"
    client.force_login(tenant_a.admin)
    response = _post_roster(client, tenant_a, roster_zip(rows))
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "1 problem; nothing was imported" in page
    assert "classes.csv" in page and "t-unknown" in page
    assert "is in neither academicSessions.csv nor the platform" in page
    roster = RosterImport.objects.for_institution(tenant_a.institution).get()
    assert roster.status == RosterImportStatus.FAILED and roster.files == [] and roster.preview == {}
    assert roster.preview_job.status == JobStatus.FAILED and "1 problem(s)" in roster.preview_job.error
    assert not Section.objects.for_institution(tenant_a.institution).exists()


def test_a_file_that_is_no_roster_is_refused_on_the_page(client, tenant_a):
    client.force_login(tenant_a.admin)
    files = SimpleUploadedFile("students.csv", csv_bytes("orgs", []))
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post(f"/i/{tenant_a.institution.slug}/rosters/", {"files": files,
                                                                              "student_id_field": "identifier"})
    assert "Not a OneRoster file: students.csv" in client.get(response["Location"]).content.decode()
    roster = RosterImport.objects.for_institution(tenant_a.institution).get()
    assert roster.status == RosterImportStatus.FAILED and roster.result["code"] == "roster_unknown_file"
    assert "Not a OneRoster file: students.csv" in roster.preview_job.error


def test_admin_of_other_institution_gets_404_on_every_roster_page(client, tenants):
    a, b = tenants
    client.force_login(a.admin)
    _post_roster(client, a)
    roster = RosterImport.objects.for_institution(a.institution).get()
    client.force_login(b.admin)
    assert client.get(f"/i/{a.institution.slug}/rosters/").status_code == 404
    assert client.get(f"/i/{b.institution.slug}/rosters/{roster.pk}/").status_code == 404
    for verb in ("confirm", "discard"):
        assert client.post(f"/i/{b.institution.slug}/rosters/{roster.pk}/{verb}/").status_code == 404
        assert client.post(f"/i/{a.institution.slug}/rosters/{roster.pk}/{verb}/").status_code == 404
    assert client.get(f"/i/{b.institution.slug}/rosters/{roster.pk}/", headers={"HX-Request": "true"}
                      ).status_code == 404  # nor its progress
    assert _post_roster(client, a).status_code == 404
    roster.refresh_from_db()
    assert roster.status == RosterImportStatus.PREVIEWED and roster.commit_job is None
    assert "roster.zip" not in client.get(f"/i/{b.institution.slug}/rosters/").content.decode()
    assert "OneRoster import" not in client.get(f"/i/{b.institution.slug}/models/jobs/").content.decode()


def test_advisors_and_viewers_cannot_open_or_post_the_roster_pages(client, tenant_a):
    client.force_login(tenant_a.admin)
    _post_roster(client, tenant_a)
    roster = RosterImport.objects.for_institution(tenant_a.institution).get()
    for user in (tenant_a.advisor, tenant_a.viewer):
        client.force_login(user)
        assert client.get(f"/i/{tenant_a.institution.slug}/rosters/").status_code == 403
        assert client.get(f"/i/{tenant_a.institution.slug}/rosters/{roster.pk}/").status_code == 403
        assert client.post(f"/i/{tenant_a.institution.slug}/rosters/{roster.pk}/confirm/").status_code == 403
        assert _post_roster(client, tenant_a).status_code == 403
    assert RosterImport.objects.for_institution(tenant_a.institution).count() == 1
    assert not Section.objects.for_institution(tenant_a.institution).exists()


def test_the_upload_request_only_stores_the_files_and_the_page_shows_the_job_until_it_ran(client, tenants):
    a, b = tenants
    client.force_login(a.admin)
    files = SimpleUploadedFile("roster.zip", roster_zip())
    with TestCase.captureOnCommitCallbacks(execute=False) as queued:
        response = client.post(f"/i/{a.institution.slug}/rosters/", {"files": files, "student_id_field": "identifier"})
    roster = RosterImport.objects.for_institution(a.institution).get()
    # Answered before anything read the roster: no preview, the job waits, the file is stored.
    assert response.status_code == 302 and roster.status == RosterImportStatus.CHECKING and roster.preview == {}
    assert roster.preview_job.kind == JobKind.ROSTER_IMPORT and roster.preview_job.status == JobStatus.QUEUED
    assert len(roster.files) == 1 and roster.files[0][0] == "roster.zip"
    url = f"/i/{a.institution.slug}/rosters/{roster.pk}/"
    page = client.get(url).content.decode()
    assert "Checking roster.zip" in page and "waiting for a worker" in page and f'hx-get="{url}"' in page
    assert "Import this roster" not in page and "vendor/htmx/htmx.min.js" in page
    poll = client.get(url, headers={"HX-Request": "true"})
    assert poll.status_code == 200 and f'hx-get="{url}"' in poll.content.decode()
    # B's admin sees neither the page nor its progress.
    client.force_login(b.admin)
    assert client.get(f"/i/{b.institution.slug}/rosters/{roster.pk}/", headers={"HX-Request": "true"}
                      ).status_code == 404
    client.force_login(a.admin)

    _run_queued(queued)

    roster.refresh_from_db()
    assert roster.status == RosterImportStatus.PREVIEWED and roster.preview_job.status == JobStatus.SUCCEEDED
    poll = client.get(url, headers={"HX-Request": "true"})
    assert poll.status_code == 204 and poll["HX-Refresh"] == "true"  # the browser reloads the page
    assert "Import this roster" in client.get(url).content.decode()

    # Confirming queues the commit job; the request imports nothing itself.
    with TestCase.captureOnCommitCallbacks(execute=False) as queued:
        client.post(f"{url}confirm/")
    roster.refresh_from_db()
    assert roster.status == RosterImportStatus.COMMITTING and roster.commit_job.status == JobStatus.QUEUED
    assert not Section.objects.for_institution(a.institution).exists()
    assert "Importing roster.zip" in client.get(url).content.decode()
    _run_queued(queued)
    roster.refresh_from_db()
    assert roster.status == RosterImportStatus.COMMITTED and roster.files == []
    assert Section.objects.for_institution(a.institution).count() == 3
    assert not Section.objects.for_institution(b.institution).exists()
    jobs = client.get(f"/i/{a.institution.slug}/models/jobs/").content.decode()
    assert "OneRoster import" in jobs


def test_a_commit_job_on_files_that_no_longer_read_records_the_error_and_changes_nothing(client, tenant_a):
    client.force_login(tenant_a.admin)
    _post_roster(client, tenant_a)
    roster = RosterImport.objects.for_institution(tenant_a.institution).get()
    stored = Path(settings.MEDIA_ROOT) / roster.files[0][1]
    stored.write_bytes(b"PK\x03\x04 not really a zip")  # the stored file went bad after the preview
    with TestCase.captureOnCommitCallbacks(execute=True):
        client.post(f"/i/{tenant_a.institution.slug}/rosters/{roster.pk}/confirm/")
    roster.refresh_from_db()
    job = Job.objects.for_institution(tenant_a.institution).get(pk=roster.commit_job_id)
    assert job.status == JobStatus.FAILED and job.result["code"] == "roster_bad_zip" and job.error
    assert roster.status == RosterImportStatus.FAILED and roster.files == [] and not stored.exists()
    assert not Section.objects.for_institution(tenant_a.institution).exists()
    assert not Enrolment.objects.for_institution(tenant_a.institution).exists()


def test_a_job_given_another_institutions_roster_import_finds_nothing_and_changes_nothing(client, tenants):
    a, b = tenants
    client.force_login(b.admin)
    with TestCase.captureOnCommitCallbacks(execute=False):
        client.post(f"/i/{b.institution.slug}/rosters/", {"files": SimpleUploadedFile("roster.zip", roster_zip()),
                                                           "student_id_field": "identifier"})
    theirs = RosterImport.objects.for_institution(b.institution).get()
    job = Job.objects.for_institution(a.institution).create(
        kind=JobKind.ROSTER_IMPORT, params={"roster_import_id": theirs.pk, "step": "preview"})
    run_roster_import.apply(kwargs={"institution_id": a.institution.pk, "job_id": job.pk})
    job.refresh_from_db()
    theirs.refresh_from_db()
    assert job.status == JobStatus.FAILED and "gone" in job.error
    assert theirs.status == RosterImportStatus.CHECKING and theirs.preview == {} and len(theirs.files) == 1
    assert not Section.objects.for_institution(a.institution).exists()
    assert not Section.objects.for_institution(b.institution).exists()


def test_a_cancelled_check_imports_nothing_and_the_roster_can_be_discarded(client, tenant_a):
    client.force_login(tenant_a.admin)
    with TestCase.captureOnCommitCallbacks(execute=False):
        client.post(f"/i/{tenant_a.institution.slug}/rosters/",
                    {"files": SimpleUploadedFile("roster.zip", roster_zip()), "student_id_field": "identifier"})
    roster = RosterImport.objects.for_institution(tenant_a.institution).get()
    job_cancel(job=roster.preview_job, user=tenant_a.admin)
    url = f"/i/{tenant_a.institution.slug}/rosters/{roster.pk}/"
    page = client.get(url).content.decode()
    assert "stopped before it finished" in page and "Cancelled by" in page and "hx-get" not in page
    stored = Path(settings.MEDIA_ROOT) / roster.files[0][1]
    assert stored.exists()
    client.post(f"{url}discard/")
    roster.refresh_from_db()
    assert roster.status == RosterImportStatus.DISCARDED and roster.files == [] and not stored.exists()
    assert not Section.objects.for_institution(tenant_a.institution).exists()
