"""A viewer (or an advisor) cannot read rejected cell values or the list of changes through an
import job's result, on the jobs API or the job pages; administrators and keys with imports:read
(who can read the import's report anyway) still can."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from institutions.api_keys import api_key_create
from institutions.models import Job, JobKind, JobStatus

pytestmark = pytest.mark.django_db

CELL = "Jane Rejected-Value Doe"
OLD, NEW = "old-secret-value", "new-secret-value"


@pytest.fixture
def import_job(tenants):
    a, _ = tenants
    return Job.objects.for_institution(a.institution).create(
        kind=JobKind.IMPORT, status=JobStatus.SUCCEEDED,
        result={"rows": 3, "valid_rows": 2, "error_count": 1, "committed": False,
                "errors": [{"row": 2, "column": "name", "value": CELL, "reason": f"{CELL!r} is too long"}],
                "changes": [{"external_id": "S001", "field": "name", "old": OLD, "new": NEW}],
                "students_fingerprint": ["2026-01-01T00:00:00Z", 17], "summary": f"1 problem: {CELL}"})


def _bodies(client, slug, job):
    base = f"/api/v1/institutions/{slug}/jobs/"
    return [client.get(base), client.get(f"{base}{job.pk}/")]


@pytest.mark.parametrize("role", ["viewer", "advisor"])
def test_viewers_and_advisors_get_an_import_jobs_figures_without_its_values(tenants, import_job, role):
    a, _ = tenants
    client = APIClient()
    client.force_login(getattr(a, role))
    for response in _bodies(client, "alpha", import_job):
        assert response.status_code == 200
        text = response.content.decode()
        assert CELL not in text and OLD not in text and NEW not in text and "students_fingerprint" not in text
    detail = _bodies(client, "alpha", import_job)[1].json()["result"]
    assert detail == {"rows": 3, "valid_rows": 2, "error_count": 1, "committed": False, "values_hidden": True}


def test_administrators_and_keys_with_the_imports_scope_read_the_whole_result(tenants, import_job):
    a, _ = tenants
    admin = APIClient()
    admin.force_login(a.admin)
    _, raw = api_key_create(institution=a.institution, name="SIS", scopes=["imports:read"], created_by=a.admin)
    key = APIClient()
    key.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    for client in (admin, key):
        detail = client.get(f"/api/v1/institutions/alpha/jobs/{import_job.pk}/").json()["result"]
        assert detail["errors"][0]["value"] == CELL and detail["changes"][0]["new"] == NEW


def test_job_pages_never_show_an_import_job_to_a_viewer_nor_across_institutions(client, tenants, import_job):
    a, b = tenants
    client.force_login(a.viewer)
    assert client.get(reverse("prediction-job-progress", args=["alpha", import_job.pk])).status_code == 404
    listed = client.get(reverse("prediction-job-list", args=["alpha"]))
    assert listed.status_code == 200 and CELL not in listed.content.decode()
    b_viewer = APIClient()
    b_viewer.force_login(b.viewer)
    assert b_viewer.get(f"/api/v1/institutions/beta/jobs/{import_job.pk}/").status_code == 404
    assert b_viewer.get(f"/api/v1/institutions/alpha/jobs/{import_job.pk}/").status_code == 404
