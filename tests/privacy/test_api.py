"""POST students/<id>/erase/: a dry run answers what the page lists; the erasure needs the external id."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from institutions.api_keys import api_key_create
from privacy.erasure import erasure_plan
from privacy.models import ErasureRecord
from students.models import Student

pytestmark = pytest.mark.django_db


def url(tenant, student_id):
    return f"/api/v1/institutions/{tenant.institution.slug}/students/{student_id}/erase/"


def key_client(tenant, scopes):
    _key, secret = api_key_create(institution=tenant.institution, name="SIS", scopes=scopes, created_by=tenant.admin)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def test_a_dry_run_answers_the_pages_counts_and_changes_nothing(tenants, api_client):
    a, _b = tenants
    student = a.students[0]
    api_client.force_authenticate(a.admin)
    response = api_client.post(url(a, student.pk), {"dry_run": True}, format="json")
    assert response.status_code == 200
    assert response.json() == {"dry_run": True,
                               "counts": erasure_plan(institution=a.institution, students=[student]).counts}
    assert response.json()["counts"]["deleted"]["students"] == 1
    assert Student.objects.for_institution(a.institution).filter(pk=student.pk).exists()


def test_erasing_needs_the_exact_external_id_and_records_who(tenants):
    a, _b = tenants
    student = a.students[0]
    client = key_client(a, ["students:write"])
    for body in ({}, {"confirm_external_id": "s001"}, {"confirm_external_id": "S002"}):
        response = client.post(url(a, student.pk), body, format="json")
        assert response.status_code == 400 and response.json()["code"] == "confirmation_mismatch"
    assert client.post(url(a, student.pk), {"dry_run": "maybe"}, format="json").status_code == 400
    assert Student.objects.for_institution(a.institution).filter(pk=student.pk).exists()
    response = client.post(url(a, student.pk), {"confirm_external_id": student.external_id}, format="json")
    assert response.status_code == 201
    record = ErasureRecord.objects.for_institution(a.institution).get()
    assert response.json()["erasure_id"] == str(record.erasure_id) and record.via == "api"
    assert record.erased_by.username.startswith("apikey-")
    assert not Student.objects.for_institution(a.institution).filter(pk=student.pk).exists()
    assert client.post(url(a, student.pk), {"dry_run": True}, format="json").status_code == 404


def test_keys_without_students_write_and_non_admins_are_refused(tenants, api_client):
    a, _b = tenants
    student = a.students[0]
    for scopes in (["students:read"], ["interventions:write"]):
        assert key_client(a, scopes).post(url(a, student.pk), {"dry_run": True}, format="json").status_code == 403
    for user in (a.advisor, a.viewer):
        api_client.force_authenticate(user)
        assert api_client.post(url(a, student.pk), {"confirm_external_id": student.external_id},
                               format="json").status_code == 403
    assert Student.objects.for_institution(a.institution).filter(pk=student.pk).exists()


def test_another_institution_gets_404_for_the_students_of_a(tenants, api_client):
    a, b = tenants
    student = a.students[0]
    b_key = key_client(b, ["students:write"])
    assert b_key.post(url(b, student.pk), {"confirm_external_id": student.external_id},
                      format="json").status_code == 404
    assert b_key.post(url(a, student.pk), {"dry_run": True}, format="json").status_code == 404
    api_client.force_authenticate(b.admin)
    assert api_client.post(url(b, student.pk), {"confirm_external_id": student.external_id},
                           format="json").status_code == 404
    assert api_client.post(url(b, "abc"), {"dry_run": True}, format="json").status_code == 404
    assert Student.objects.for_institution(a.institution).filter(pk=student.pk).exists()
