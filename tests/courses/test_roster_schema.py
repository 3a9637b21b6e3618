"""The roster resources answer what the OpenAPI schema says (status, content type, body)."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import TestCase

from institutions.api_keys import ALL_SCOPES, api_key_create

from ..api.test_schema_truth import _conforms
from .roster_files import roster_zip

pytestmark = pytest.mark.django_db


def test_every_roster_resource_answers_as_the_schema_says(tenant_a, tenant_b, api_client):
    _, raw = api_key_create(institution=tenant_a.institution, name="SIS", scopes=list(ALL_SCOPES),
                            created_by=tenant_a.admin)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    base = "/api/v1/institutions/alpha/"
    template = "/api/v1/institutions/{institution_slug}/"
    with TestCase.captureOnCommitCallbacks(execute=True):
        created = api_client.post(f"{base}roster-imports/", {"files": SimpleUploadedFile("r.zip", roster_zip()),
                                                             "student_id_field": "identifier"}, format="multipart")
    assert created.status_code == 202
    _conforms(created, "POST", f"{template}roster-imports/")
    roster = created.json()["id"]
    with TestCase.captureOnCommitCallbacks(execute=True):
        confirmed = api_client.post(f"{base}roster-imports/{roster}/confirm/")
    assert confirmed.status_code == 202
    _conforms(confirmed, "POST", f"{template}roster-imports/{{id}}/confirm/")
    for resource in ("terms", "courses", "sections", "instructors", "enrolments", "roster-imports"):
        listed = api_client.get(f"{base}{resource}/")
        assert listed.status_code == 200 and listed.json()["results"], resource
        _conforms(listed, "GET", f"{template}{resource}/")
        detail = api_client.get(f"{base}{resource}/{listed.json()['results'][0]['id']}/")
        _conforms(detail, "GET", f"{template}{resource}/{{id}}/")
