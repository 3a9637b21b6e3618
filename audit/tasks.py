"""Celery tasks of the access log: the daily retention run, one job per institution with work."""

from celery import shared_task
from celery.signals import task_postrun

from institutions.models import Institution, Job, JobKind
from institutions.scoping import institution_scope
from institutions.task_scope import institution_job_task

from . import batching
from .services import access_log_retention_run, access_log_retention_start, access_retention_cutoff


@shared_task(acks_late=True, ignore_result=True)
def expire_access_log() -> int:
    """Daily (beat): a retention job for each institution that has entries past AUDIT_RETENTION_DAYS."""
    before = access_retention_cutoff()
    started = 0
    for institution in Institution.objects.order_by("pk"):
        with institution_scope(institution):
            started += access_log_retention_start(institution=institution, before=before) is not None
    return started


@institution_job_task(kind=JobKind.AUDIT_RETENTION, acks_late=True, ignore_result=True)
def run_access_log_retention(*, institution: Institution, job: Job) -> None:
    """Remove the institution's access log entries older than the job's cut-off."""
    access_log_retention_run(institution=institution, job=job)


@task_postrun.connect(dispatch_uid="audit_batch_after_task")
def write_access_entries_after_task(**kwargs) -> None:
    # A Celery pool process may be ended without running atexit: a task's reads are written when it ends.
    batching.flush()
