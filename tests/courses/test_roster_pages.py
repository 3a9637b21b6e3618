"""The roster import pages: upload, preview (nothing imported), confirm; other institutions and
other roles get nothing."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from courses.models import Enrolment, RosterImport, RosterImportStatus, Section

from .roster_files import csv_bytes, roster_rows, roster_zip

pytestmark = pytest.mark.django_db


def _post_roster(client, tenant, content=None, **data):
    files = SimpleUploadedFile("roster.zip", roster_zip() if content is None else content)
    return client.post(f"/i/{tenant.institution.slug}/rosters/",
                       {"files": files, "student_id_field": "identifier", **data})


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
    confirmed = client.post(f"/i/{a.institution.slug}/rosters/{roster.pk}/confirm/", follow=True)
    assert "The roster was imported." in confirmed.content.decode()
    roster.refresh_from_db()
    assert roster.status == RosterImportStatus.COMMITTED and roster.committed_by == a.admin
    assert Enrolment.objects.for_institution(a.institution).count() == 5
    assert not Enrolment.objects.for_institution(b.institution).exists()


def test_the_upload_page_lists_each_row_problem_and_imports_nothing(client, tenant_a):
    rows = roster_rows()
    rows["classes"][0]["termSourcedIds"] = "t-unknown"
    client.force_login(tenant_a.admin)
    response = _post_roster(client, tenant_a, roster_zip(rows))
    page = response.content.decode()
    assert response.status_code == 200
    assert "1 problem(s); nothing was imported" in page
    assert "classes.csv" in page and "t-unknown" in page
    assert "is in neither academicSessions.csv nor the platform" in page
    assert not RosterImport.objects.for_institution(tenant_a.institution).exists()


def test_a_file_that_is_no_roster_is_refused_on_the_page(client, tenant_a):
    client.force_login(tenant_a.admin)
    files = SimpleUploadedFile("students.csv", csv_bytes("orgs", []))
    response = client.post(f"/i/{tenant_a.institution.slug}/rosters/", {"files": files,
                                                                          "student_id_field": "identifier"})
    assert "Not a OneRoster file: students.csv" in response.content.decode()
    assert not RosterImport.objects.for_institution(tenant_a.institution).exists()


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
    assert _post_roster(client, a).status_code == 404
    roster.refresh_from_db()
    assert roster.status == RosterImportStatus.PREVIEWED
    assert "roster.zip" not in client.get(f"/i/{b.institution.slug}/rosters/").content.decode()


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
