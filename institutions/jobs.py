"""Job lifecycle: create, dispatch to Celery, report progress, finish.

A job row is written before anything is queued, so work is never lost: if the broker is
unreachable the job stays ``queued`` with ``dispatch_error`` set, the user is told, and
:func:`job_dispatch_pending` (run by beat, and on worker start-up) sends it again later.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from kombu.exceptions import OperationalError

from .models import ACTIVE_JOB_STATUSES, Institution, Job, JobStatus
from .webhooks import webhook_emit

logger = logging.getLogger(__name__)

# kind -> the Celery task that runs it; each app registers its own kinds (see <app>/tasks.py).
_JOB_RUNNERS: dict[str, Callable[..., Any]] = {}


def register_job_runner(kind: str, task) -> None:
    _JOB_RUNNERS[kind] = task


def job_create(
    *, institution: Institution, kind: str, params: dict | None = None, created_by=None,
    triggered_by: str = "user", join_active: bool = False,
) -> tuple[Job, bool]:
    """Create a job, or with ``join_active`` return the one of this kind already queued or running.

    Returns ``(job, created)``. Joining is what keeps "at most one rescore per institution at a
    time": a second request gets the running job's id instead of starting a duplicate.
    """
    with transaction.atomic():
        if join_active:
            # Lock the institution row so two concurrent requests cannot both create a job.
            Institution.objects.select_for_update().filter(pk=institution.pk).first()
            active = Job.objects.for_institution(institution).filter(
                kind=kind, status__in=ACTIVE_JOB_STATUSES
            ).order_by("created_at").first()
            if active is not None:
                return active, False
        job = Job.objects.for_institution(institution).create(
            kind=kind, params=params or {}, created_by=created_by, triggered_by=triggered_by
        )
    return job, True


def job_dispatch(job: Job) -> bool:
    """Queue the job's task after the surrounding transaction commits. False if the broker is down."""
    task = _JOB_RUNNERS.get(job.kind)
    if task is None:
        raise LookupError(f"no runner registered for job kind {job.kind!r}")

    def send() -> None:
        _send(job, task)

    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(send)
        return True
    return _send(job, task)


def _send(job: Job, task) -> bool:
    try:
        task.apply_async(kwargs={"institution_id": job.institution_id, "job_id": job.pk})
    except (OperationalError, OSError) as exc:  # the broker is unreachable; anything else is a bug
        logger.warning("could not queue job %s: %s", job.pk, exc)
        Job.objects.for_institution(job.institution).filter(pk=job.pk).update(
            dispatch_error=f"Could not reach the task queue: {exc}. It will be retried automatically.",
        )
        job.dispatch_error = "queue unreachable"
        return False
    Job.objects.for_institution(job.institution).filter(pk=job.pk, dispatched_at__isnull=True).update(
        dispatched_at=timezone.now(), dispatch_error=""
    )
    return True


def job_dispatch_pending() -> int:
    """Re-send queued jobs that never reached the broker. Returns how many were sent."""
    sent = 0
    pending = Job.objects.unscoped().filter(status=JobStatus.QUEUED, dispatched_at__isnull=True).select_related(
        "institution"
    )
    for job in pending:
        if job.kind in _JOB_RUNNERS and _send(job, _JOB_RUNNERS[job.kind]):
            sent += 1
    return sent


def job_claim(*, institution: Institution, job_id: int) -> Job | None:
    """The job a task message names, or None when there is nothing to run.

    None for a job deleted since it was queued, or one that already finished: a duplicate
    delivery of work that ended (acks_late redelivers what a worker took but never acknowledged).
    """
    job = Job.objects.for_institution(institution).filter(pk=job_id).first()
    if job is None or job.is_finished:
        return None
    return job


def job_mark_running(job: Job, *, total: int = 0, stage: str = "") -> None:
    now = timezone.now()
    Job.objects.for_institution(job.institution).filter(pk=job.pk).update(
        status=JobStatus.RUNNING, started_at=now, progress_total=total, stage=stage,
        attempts=F("attempts") + 1, updated_at=now, error="",
    )
    job.refresh_from_db()


def job_progress(job: Job, *, done: int, total: int | None = None, stage: str | None = None) -> None:
    fields: dict[str, Any] = {"progress_done": done, "updated_at": timezone.now()}
    if total is not None:
        fields["progress_total"] = total
    if stage is not None:
        fields["stage"] = stage
    Job.objects.for_institution(job.institution).filter(pk=job.pk).update(**fields)


def job_succeed(job: Job, *, counts: dict | None = None, result: dict | None = None) -> None:
    now = timezone.now()
    Job.objects.for_institution(job.institution).filter(pk=job.pk).update(
        status=JobStatus.SUCCEEDED, finished_at=now, updated_at=now, counts=counts or {}, result=result or {},
        progress_done=F("progress_total"), stage="done",
    )
    job.refresh_from_db()
    _emit_job_finished(job)


def job_fail(job: Job, *, error: str, counts: dict | None = None) -> None:
    now = timezone.now()
    fields: dict[str, Any] = {"status": JobStatus.FAILED, "finished_at": now, "updated_at": now, "error": error}
    if counts is not None:
        fields["counts"] = counts
    Job.objects.for_institution(job.institution).filter(pk=job.pk).update(**fields)
    job.refresh_from_db()
    _emit_job_finished(job)


def _emit_job_finished(job: Job) -> None:
    webhook_emit(institution=job.institution, event="job.finished", payload={"job": {
        "id": job.pk, "kind": job.kind, "status": job.status, "counts": job.counts, "error": job.error,
        "triggered_by": job.triggered_by, "started_at": job.started_at, "finished_at": job.finished_at,
    }})
