""""Retrain now" in the browser hands the work to a real worker process and shows its progress.

The request only records and queues the job; the worker (a separate process, on the same broker
the embedded default or CI uses) trains, and the job's progress fragment, which the jobs page
polls, moves from queued through running stages to succeeded. Another institution's admin gets
404 on the job's progress.
"""

from __future__ import annotations

import time

import pytest
from django.urls import reverse

from institutions.models import Job, JobKind, JobStatus

from .conftest import add_population, fast_settings

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_retrain_now_returns_before_the_job_runs_and_the_job_page_shows_its_progress(
    celery_worker_process, tenants, client
):
    a, b = tenants
    add_population(a.institution, known=600, current=60)
    fast_settings(a.institution)
    client.force_login(a.admin)

    response = client.post(reverse("model-retrain", args=[a.institution.slug]))

    assert response.status_code == 302
    job = Job.objects.for_institution(a.institution).get(kind=JobKind.RETRAIN)
    # The request did not train: the worker had not finished the job when the page answered.
    assert job.status in (JobStatus.QUEUED, JobStatus.RUNNING)
    jobs_page = client.get(response["Location"])
    assert f'id="job-{job.pk}-progress"' in jobs_page.content.decode()

    progress_url = reverse("prediction-job-progress", args=[a.institution.slug, job.pk])
    seen_running_with_stage = False
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        fragment = client.get(progress_url).content.decode()
        if "Running" in fragment and " · " in fragment:
            seen_running_with_stage = True
        if "Succeeded" in fragment or "Failed" in fragment:
            break
        time.sleep(0.05)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert seen_running_with_stage, "the progress fragment never showed a running stage"
    assert "100%" in fragment
    # The fragment stops polling once the job has finished.
    assert "hx-get" not in fragment

    client.force_login(b.admin)
    assert client.get(reverse("prediction-job-progress", args=[b.institution.slug, job.pk])).status_code == 404
