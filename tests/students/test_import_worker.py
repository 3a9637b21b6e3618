"""An uploaded file goes through Redis to a real worker, which validates and commits it."""

import time
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from institutions.models import Job, JobKind, JobStatus
from students.models import Student, StudentChange

from .import_helpers import GOOD_CSV

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_real_worker_imports_an_uploaded_file(celery_worker_process, tenant_a, api_client):
    api_client.force_authenticate(tenant_a.admin)
    response = api_client.post(reverse("api-import-file", args=["alpha"]),
                               {"file": SimpleUploadedFile("good.csv", GOOD_CSV.encode())}, format="multipart")
    assert response.status_code == 202
    job_id = response.json()["job_id"]
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        job = Job.objects.for_institution(tenant_a.institution).get(pk=job_id)
        if job.is_finished:
            break
        time.sleep(0.3)
    assert job.status == JobStatus.SUCCEEDED, (job.error, Path(celery_worker_process["log"]).read_text()[-3000:])
    assert job.counts == {"rows": 2, "created": 1, "updated": 1, "unchanged": 0, "error_rows": 0, "skipped": 0}
    assert Student.objects.for_institution(tenant_a.institution).get(external_id="N100").name == "Costa, Rui"
    assert StudentChange.objects.for_institution(tenant_a.institution).filter(job_id=job_id).count() == 2
    assert job.kind == JobKind.IMPORT and job.triggered_by == "api"
