"""Celery tasks of the predictions app: thin wrappers that take ids and run scoped.

Both job tasks use acks_late (with the project-wide ``task_reject_on_worker_lost``): a worker
killed mid-run leaves the message unacknowledged, Redis hands it to another worker after the
visibility timeout, and the services continue from the last committed chunk.
"""

from __future__ import annotations

import functools
import logging

from celery import shared_task
from kombu.exceptions import OperationalError as BrokerOperationalError

from institutions.models import Institution, Job, JobKind
from institutions.scoping import institution_scope
from institutions.task_scope import institution_job_task, institution_task

from .services.fanout import rescore_chunks_help
from .services.history_partitions import prediction_partitions_maintain
from .services.history_retention import HISTORY_MAX_SECONDS, history_cleanup_run, history_cleanup_start
from .services.jobs import rescore_job_run, retrain_job_run
from .services.realised import realised_check
from .services.requests import retrain_request, scheduled_rescore_request
from .services.scoring import TOP_FACTORS

logger = logging.getLogger(__name__)

RETRAIN_TIME_LIMIT = 2 * 60 * 60
RESCORE_TIME_LIMIT = 60 * 60


@institution_job_task(kind=JobKind.RETRAIN, acks_late=True, ignore_result=True, time_limit=RETRAIN_TIME_LIMIT,
                      soft_time_limit=RETRAIN_TIME_LIMIT - 120)
def retrain_model(*, institution: Institution, job: Job) -> None:
    retrain_job_run(institution=institution, job=job)


@institution_job_task(kind=JobKind.RESCORE, acks_late=True, ignore_result=True, time_limit=RESCORE_TIME_LIMIT,
                      soft_time_limit=RESCORE_TIME_LIMIT - 60)
def rescore_students(*, institution: Institution, job: Job) -> None:
    rescore_job_run(institution=institution, job=job, send_helpers=functools.partial(
        _rescore_chunks_send, institution_id=institution.pk, job_id=job.pk))


@institution_task(acks_late=True, ignore_result=True, time_limit=RESCORE_TIME_LIMIT,
                  soft_time_limit=RESCORE_TIME_LIMIT - 60)
def rescore_chunks(*, institution: Institution, job_id: int) -> None:
    """Scores chunks of a large rescore beside the job's own task (services.fanout)."""
    rescore_chunks_help(institution=institution, job_id=job_id, top_factors=TOP_FACTORS)


def _rescore_chunks_send(count: int, *, institution_id: int, job_id: int) -> int:
    """Queue ``count`` chunk tasks for the job; how many were sent (the broker may be away: the
    job's own task then scores every chunk)."""
    for sent in range(count):
        try:
            rescore_chunks.apply_async(kwargs={"institution_id": institution_id, "job_id": job_id})
        except (BrokerOperationalError, OSError) as exc:
            logger.warning("rescore job %s: could not queue chunk tasks: %s", job_id, exc)
            return sent
    return count


@institution_task(acks_late=True, ignore_result=True, time_limit=120)
def scheduled_rescore(*, institution: Institution) -> None:
    """Beat entry (per institution, see services.schedules.prediction_schedule_sync)."""
    scheduled_rescore_request(institution=institution)


@institution_task(acks_late=True, ignore_result=True, time_limit=120)
def scheduled_retrain(*, institution: Institution) -> None:
    retrain_request(institution=institution, triggered_by="schedule")


@shared_task(acks_late=True, ignore_result=True)
def apply_history_retention() -> int:
    """Daily (beat): the history's partitions ahead created and empty old ones dropped (platform
    level), then a clean-up job for each institution whose retention setting expires some history."""
    prediction_partitions_maintain()
    started = 0
    for institution in Institution.objects.order_by("pk"):
        with institution_scope(institution):
            started += history_cleanup_start(institution=institution) is not None
    return started


@institution_job_task(kind=JobKind.HISTORY_RETENTION, acks_late=True, ignore_result=True,
                      time_limit=HISTORY_MAX_SECONDS + 300, soft_time_limit=HISTORY_MAX_SECONDS + 240)
def run_history_cleanup(*, institution: Institution, job: Job) -> None:
    history_cleanup_run(institution=institution, job=job)


@shared_task(acks_late=True, ignore_result=True)
def check_realised_performance() -> int:
    """Daily (beat): for each institution, one task that checks whether its live model's
    predictions came true (predictions.services.realised)."""
    institutions = list(Institution.objects.order_by("pk").values_list("pk", flat=True))
    for institution_id in institutions:
        check_institution_realised_performance.delay(institution_id=institution_id)
    return len(institutions)


@institution_task(acks_late=True, ignore_result=True, time_limit=15 * 60, soft_time_limit=14 * 60)
def check_institution_realised_performance(*, institution: Institution) -> None:
    realised_check(institution=institution)
