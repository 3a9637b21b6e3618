"""Celery tasks of the predictions app: thin wrappers that take ids and run scoped.

Both job tasks use acks_late (with the project-wide ``task_reject_on_worker_lost``): a worker
killed mid-run leaves the message unacknowledged, Redis hands it to another worker after the
visibility timeout, and the services continue from the last committed chunk.
"""

from __future__ import annotations

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

import ml
from institutions.jobs import job_fail, job_mark_running, job_progress, job_succeed, register_job_runner
from institutions.models import Institution, Job, JobKind, JobStatus
from institutions.scoping import institution_scope

from .frames import NoFeatureSchema
from .models import ModelTrigger
from .services.requests import rescore_request, retrain_request
from .services.scoring import SCORING_CHUNK_SIZE, predictions_rescore
from .services.training import model_version_train

logger = logging.getLogger(__name__)

RETRAIN_TIME_LIMIT = 2 * 60 * 60
RESCORE_TIME_LIMIT = 60 * 60

_TRIGGERS = {choice.value for choice in ModelTrigger}


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
        job_mark_running(job, total=100, stage="preparing training data")

        def progress(fraction: float, stage: str) -> None:
            job_progress(job, done=int(max(0.0, min(1.0, fraction)) * 100), stage=stage[:120])

        trigger = job.triggered_by if job.triggered_by in _TRIGGERS else ModelTrigger.USER
        try:
            version = model_version_train(
                institution=institution, trigger=trigger, created_by=job.created_by, job=job,
                search_iterations=job.params.get("search_iterations"), progress=progress,
            )
        except (ml.DataInsufficientError, NoFeatureSchema) as exc:
            job_fail(job, error=str(exc))
            return
        except SoftTimeLimitExceeded:
            job_fail(job, error="Training took longer than the time limit and was stopped; nothing was stored.")
            return
        except Exception as exc:
            job_fail(job, error=f"Training failed: {exc}")
            raise
        job_succeed(
            job, counts={"training_size": version.training_size},
            result={"model_version": version.number, "model_version_id": version.pk, "status": version.status,
                    "gate_passed": bool(version.gate.get("passed"))},
        )


@shared_task(acks_late=True, ignore_result=True, time_limit=RESCORE_TIME_LIMIT,
             soft_time_limit=RESCORE_TIME_LIMIT - 60)
def rescore_students(*, institution_id: int, job_id: int) -> None:
    claimed = _claim(institution_id, job_id)
    if claimed is None:
        return
    institution, job = claimed
    with institution_scope(institution):
        job_mark_running(job, stage="finding students to score")
        try:
            outcome = predictions_rescore(
                institution=institution, job=job, full=bool(job.params.get("full")),
                chunk_size=int(job.params.get("chunk_size") or SCORING_CHUNK_SIZE),
            )
        except SoftTimeLimitExceeded:
            job_fail(job, error="Scoring took longer than the time limit; the chunks already stored are kept "
                                "and the next run continues from there.")
            return
        except Exception as exc:
            job_fail(job, error=f"Scoring failed: {exc}")
            raise
        job_succeed(job, counts=outcome.counts(),
                    result={"model_version": outcome.model_version, "message": outcome.message,
                            "seconds": outcome.timings})


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
