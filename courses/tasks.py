"""Celery tasks of the courses app: thin wrappers around its services."""

from __future__ import annotations

from celery import shared_task

from institutions.models import Institution, Job, JobKind
from institutions.task_scope import institution_job_task

from .roster_import import roster_job_run
from .surveys import surveys_close_ended, surveys_send_due_reminders


@shared_task
def close_ended_surveys() -> int:
    """Beat, every five minutes: close the surveys whose window ended and revoke their links."""
    return surveys_close_ended()


@shared_task
def send_due_survey_reminders() -> int:
    """Beat, every five minutes: each open survey's automatic reminder, once its time has come."""
    return surveys_send_due_reminders()


@institution_job_task(kind=JobKind.ROSTER_IMPORT, acks_late=True, ignore_result=True)
def run_roster_import(*, institution: Institution, job: Job) -> None:
    """Check a stored OneRoster upload (the preview) or apply a confirmed one (the commit)."""
    roster_job_run(institution=institution, job=job)
