"""Celery tasks of the predictions app: thin wrappers that take ids and run scoped.

Both job tasks use acks_late (with the project-wide ``task_reject_on_worker_lost``): a worker
killed mid-run leaves the message unacknowledged, Redis hands it to another worker after the
visibility timeout, and the services continue from the last committed chunk.
"""

from __future__ import annotations

import logging

from celery import shared_task

from institutions.jobs import register_job_runner
from institutions.models import Institution, Job, JobKind, JobStatus
from institutions.scoping import institution_scope

from .services.jobs import rescore_job_run, retrain_job_run
from .services.requests import rescore_request, retrain_request

logger = logging.getLogger(__name__)

RETRAIN_TIME_LIMIT = 2 * 60 * 60
RESCORE_TIME_LIMIT = 60 * 60


def _claim(institution_id: int, job_id: int) -> tuple[Institution, Job] | None:
    institution = Institution.objects.get(pk=institution_id)
    job = Job.objects.for_institution(institution).filter(pk=job_id).first()
    if job is None or job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED):
        return None  # deleted, or a duplicate delivery of finished work
    return institution, job


@shared_task(acks_late=True, ignore_result=True, time_limit=RETRAIN_TIME_LIMIT,
             soft_time_limit=RETRAIN_TIME_LIMIT - 120)
def retrain_model(*, institution_id: int, job_id: int) -> None:
    claimed = _claim(institution_id, job_id)
    if claimed is None:
        return
    institution, job = claimed
    with institution_scope(institution):
        retrain_job_run(institution=institution, job=job)


@shared_task(acks_late=True, ignore_result=True, time_limit=RESCORE_TIME_LIMIT,
             soft_time_limit=RESCORE_TIME_LIMIT - 60)
def rescore_students(*, institution_id: int, job_id: int) -> None:
    claimed = _claim(institution_id, job_id)
    if claimed is None:
        return
    institution, job = claimed
    with institution_scope(institution):
        rescore_job_run(institution=institution, job=job)


@shared_task(acks_late=True, ignore_result=True, time_limit=120)
def scheduled_rescore(*, institution_id: int) -> None:
    """Beat entry (per institution, see services.schedules.prediction_schedule_sync)."""
    institution = Institution.objects.get(pk=institution_id)
    with institution_scope(institution):
        rescore_request(institution=institution, triggered_by="schedule")


@shared_task(acks_late=True, ignore_result=True, time_limit=120)
def scheduled_retrain(*, institution_id: int) -> None:
    institution = Institution.objects.get(pk=institution_id)
    with institution_scope(institution):
        retrain_request(institution=institution, triggered_by="schedule")


register_job_runner(JobKind.RETRAIN, retrain_model)
register_job_runner(JobKind.RESCORE, rescore_students)
