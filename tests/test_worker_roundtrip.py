"""A task goes through Redis to a real worker process, which writes to PostgreSQL."""

import time
from pathlib import Path

import pytest

from institutions.jobs import job_create, job_dispatch
from institutions.models import Job, JobKind, JobStatus

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_real_worker_runs_a_job_through_redis_and_writes_to_the_database(celery_worker_process, tenant_a):
    import institutions.tasks  # noqa: F401 - registers the runner

    job, _ = job_create(institution=tenant_a.institution, kind=JobKind.HEALTH_CHECK)
    assert job_dispatch(job) is True
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = Job.objects.for_institution(tenant_a.institution).get(pk=job.pk)
        if job.status == JobStatus.SUCCEEDED:
            break
        time.sleep(0.2)
    assert job.status == JobStatus.SUCCEEDED, Path(celery_worker_process["log"]).read_text()[-3000:]
    assert job.counts == {"checked": 1}
    assert job.result["worker"]
