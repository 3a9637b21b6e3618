"""Celery tasks of privacy: thin wrappers that run services under the institution's scope."""

from institutions.models import Institution, Job, JobKind
from institutions.task_scope import institution_job_task, institution_task

from .retention import retention_job_run, retention_policy_get, retention_run_request


@institution_job_task(kind=JobKind.RETENTION, acks_late=True, ignore_result=True)
def run_retention(*, institution: Institution, job: Job) -> None:
    """Apply the institution's retention rules; the report goes on the job."""
    retention_job_run(institution=institution, job=job)


@institution_task(acks_late=True, ignore_result=True)
def scheduled_retention(*, institution: Institution) -> None:
    """Beat, daily per institution (privacy.retention.retention_schedule_sync): queue a run."""
    policy = retention_policy_get(institution=institution)
    if policy.pk is not None and policy.enabled and policy.has_rules:
        retention_run_request(institution=institution, triggered_by="schedule")
