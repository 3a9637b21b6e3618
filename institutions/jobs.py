"""Job lifecycle: create, dispatch to Celery, claim, report progress, finish, cancel, sweep.

A job row is written before anything is queued, so work is never lost: if the broker is
unreachable the job stays ``queued`` with ``dispatch_error`` set, the user is told, and
:func:`job_dispatch_pending` (run by beat, and on worker start-up) sends it again later; it also
re-sends a job still queued long after it was sent (a message lost with a Redis restart).

A worker takes a job with :func:`job_claim`, one atomic ``UPDATE ... WHERE status = 'queued'``,
so a job runs once however often its message arrives. The running attempt holds a *lease*
(``lease_expires_at``) that its heartbeat thread and every progress call renew; when a worker
dies the lease runs out and :func:`job_sweep` (beat, every minute) re-queues the job, or fails it
with the reason after ``JOB_MAX_ATTEMPTS`` runs. A cancel request is seen by the next progress
call, which raises :class:`JobCancelled`; the task wrapper records it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import psycopg2
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.db.models import Exists, F, OuterRef, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerOperationalError

from .models import ACTIVE_JOB_STATUSES, Institution, Job, JobStatus, WorkerHeartbeat
from .signals import job_stopped_outside_its_task
from .webhooks import webhook_emit

logger = logging.getLogger(__name__)

# kind -> the Celery task that runs it; each app registers its own kinds (see <app>/tasks.py).
_JOB_RUNNERS: dict[str, Callable[..., Any]] = {}
# Errors that mean the database connection went away (a restart, a network cut), not a bug;
# psycopg2's own for what bypasses Django's cursor wrapper (COPY).
DATABASE_CONNECTION_ERRORS = (OperationalError, InterfaceError, psycopg2.OperationalError, psycopg2.InterfaceError)


class JobStopped(Exception):
    """The running attempt must stop: raised by progress calls, caught by the task wrapper."""


class JobCancelled(JobStopped):
    """An administrator cancelled the job."""


class JobLeaseLost(JobStopped):
    """The job is no longer this attempt's (its lease expired and the sweeper re-queued it, or it
    finished elsewhere): stop and write nothing more."""


class JobNotCancellable(Exception):
    def __init__(self, job: Job):
        super().__init__(f"Job #{job.pk} has already finished ({job.get_status_display().lower()}); "
                         "there is nothing to cancel.")


def register_job_runner(kind: str, task) -> None:
    _JOB_RUNNERS[kind] = task


def _lease_until(now):
    return now + timedelta(seconds=settings.JOB_LEASE_SECONDS)


def job_create(
    *, institution: Institution, kind: str, params: dict | None = None, created_by=None,
    triggered_by: str = "user", join_active: bool = False, upgrade: dict | None = None,
) -> tuple[Job, bool]:
    """Create a job, or with ``join_active`` join the one of this kind that will do the work asked.

    Returns ``(job, created)``. Joining keeps "at most one job of a kind per institution at a
    time" without losing a request:

    - a job of this kind still *queued* (it has read nothing yet) covers the request: it is
      joined, after its params take ``upgrade`` (e.g. ``{"full": True}``) if given;
    - a *running* job has already read what it works on (a rescore chose its students, a
      retrain its rows), and nothing proves the request's data was among them: writes are
      stamped before they commit, so no timestamp can. So a follow-up job is created with
      ``waits_for`` the running one and sent when that one finishes; later requests join the
      follow-up while it waits. At most one job runs and one waits per kind and institution.
    """
    with transaction.atomic():
        if join_active:
            # Lock the institution row so two concurrent requests cannot both create a job.
            Institution.objects.select_for_update().filter(pk=institution.pk).first()
            active = list(Job.objects.for_institution(institution).filter(
                kind=kind, status__in=ACTIVE_JOB_STATUSES
            ).order_by("created_at", "id"))
            running = next((job for job in active if job.status == JobStatus.RUNNING), None)
            for queued in (job for job in active if job.status == JobStatus.QUEUED):
                if not upgrade or all(queued.params.get(key) == value for key, value in upgrade.items()):
                    return queued, False
                merged = {**queued.params, **upgrade}
                # Only while it is still queued: a job that started meanwhile read its params already.
                if Job.objects.for_institution(institution).filter(pk=queued.pk, status=JobStatus.QUEUED).update(
                        params=merged, updated_at=timezone.now()):
                    queued.params = merged
                    return queued, False
                running = running or queued
            if running is not None:
                running.refresh_from_db()
                if not running.is_finished:
                    job = Job.objects.for_institution(institution).create(
                        kind=kind, params=params or {}, created_by=created_by, triggered_by=triggered_by,
                        waits_for=running,
                    )
                    return job, True
        job = Job.objects.for_institution(institution).create(
            kind=kind, params=params or {}, created_by=created_by, triggered_by=triggered_by
        )
    return job, True


def job_dispatch(job: Job) -> bool:
    """Queue the job's task after the surrounding transaction commits. False if the broker is down.

    A follow-up (``waits_for`` a job still active) is not sent now: its predecessor sends it
    when it finishes (:func:`_release_followers`), or the dispatcher does.
    """
    task = _JOB_RUNNERS.get(job.kind)
    if task is None:
        raise LookupError(f"no runner registered for job kind {job.kind!r}")

    def send() -> None:
        if not _waiting(job):
            _send(job, task)

    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(send)
        return True
    if _waiting(job):
        return True
    return _send(job, task)


def _waiting(job: Job) -> bool:
    return job.waits_for_id is not None and Job.objects.for_institution(job.institution).filter(
        pk=job.waits_for_id, status__in=ACTIVE_JOB_STATUSES).exists()


def _send(job: Job, task) -> bool:
    try:
        task.apply_async(kwargs={"institution_id": job.institution_id, "job_id": job.pk})
    except (BrokerOperationalError, OSError) as exc:  # the broker is unreachable; anything else is a bug
        logger.warning("could not queue job %s: %s", job.pk, exc)
        Job.objects.for_institution(job.institution).filter(pk=job.pk).update(
            dispatch_error=f"Could not reach the task queue: {exc}. It will be retried automatically.",
        )
        job.dispatch_error = "queue unreachable"
        return False
    # Every send stamps the time: the dispatcher re-sends a job still queued long after it (lost).
    # An eager run (tests, the CLI) has finished by now and must keep what it wrote.
    Job.objects.for_institution(job.institution).filter(pk=job.pk, status=JobStatus.QUEUED).update(
        dispatched_at=timezone.now(), dispatch_error=""
    )
    return True


def job_dispatch_pending() -> int:
    """Send queued jobs no worker has taken: never sent (broker down), sent more than
    ``JOB_REDISPATCH_SECONDS`` ago (the message was lost, e.g. Redis restarted without its data),
    or follow-ups whose predecessor finished. Returns how many were sent.

    Safe to repeat: a job reached twice by its messages runs once (:func:`job_claim`).
    """
    sent = 0
    stale = timezone.now() - timedelta(seconds=settings.JOB_REDISPATCH_SECONDS)
    predecessor_active = Job.objects.unscoped().filter(pk=OuterRef("waits_for_id"), status__in=ACTIVE_JOB_STATUSES)
    pending = (
        Job.objects.unscoped().filter(status=JobStatus.QUEUED)
        .filter(Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=stale))
        .exclude(Exists(predecessor_active)).select_related("institution").order_by("created_at", "id")
    )
    for job in pending:
        if job.kind in _JOB_RUNNERS and _send(job, _JOB_RUNNERS[job.kind]):
            sent += 1
    return sent


def _release_followers(job: Job) -> None:
    """Send the follow-ups queued behind ``job``, now that it finished."""
    for follower in Job.objects.for_institution(job.institution).filter(waits_for=job, status=JobStatus.QUEUED):
        if follower.kind in _JOB_RUNNERS:
            _send(follower, _JOB_RUNNERS[follower.kind])


def job_claim(*, institution: Institution, job_id: int) -> Job | None:
    """Take the job a task message names for this attempt, or None when there is nothing to run.

    One atomic UPDATE: the job must be queued (and not behind an unfinished job), or running on a
    lease that expired (its worker died and this is the broker's redelivery) with attempts left.
    None for a job deleted, finished, cancelled, or running under a live lease elsewhere: a
    duplicate message (a re-send, a redelivery) of work that is done or in hand.
    """
    now = timezone.now()
    predecessor_active = Job.objects.unscoped().filter(pk=OuterRef("waits_for_id"), status__in=ACTIVE_JOB_STATUSES)
    claimable = Q(status=JobStatus.QUEUED) | Q(
        status=JobStatus.RUNNING, lease_expires_at__lt=now, attempts__lt=settings.JOB_MAX_ATTEMPTS,
        cancel_requested_at__isnull=True,
    )
    claimed = (
        Job.objects.for_institution(institution).filter(pk=job_id).filter(claimable)
        .exclude(Exists(predecessor_active))
        .update(status=JobStatus.RUNNING, attempts=F("attempts") + 1, lease_expires_at=_lease_until(now),
                started_at=now, updated_at=now, error="", dispatch_error="")
    )
    if not claimed:
        logger.info("job %s of institution %s not claimed: finished, cancelled or held elsewhere",
                    job_id, institution.pk)
        return None
    return Job.objects.for_institution(institution).get(pk=job_id)


class _Heartbeat(threading.Thread):
    """Renews a running attempt's lease every ``JOB_HEARTBEAT_SECONDS`` on its own connection,
    so a long step without progress calls (a training fit) keeps the job. Dies with the process."""

    def __init__(self, job: Job):
        super().__init__(name=f"job-{job.pk}-heartbeat", daemon=True)
        self.job_id, self.attempt = job.pk, job.attempts
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(settings.JOB_HEARTBEAT_SECONDS):
                try:
                    held = Job.objects.unscoped().filter(
                        pk=self.job_id, status=JobStatus.RUNNING, attempts=self.attempt
                    ).update(lease_expires_at=_lease_until(timezone.now()))
                except DatabaseError as exc:  # the database is away: try again at the next beat
                    logger.warning("heartbeat of job %s failed: %s", self.job_id, exc)
                    connection.close()
                    continue
                if not held:
                    return  # finished, or taken over: nothing left to hold
        finally:
            connection.close()


_heartbeats: dict[int, _Heartbeat] = {}
_heartbeats_lock = threading.Lock()


def _heartbeat_start(job: Job) -> None:
    if connection.in_atomic_block:
        # The caller's transaction holds the job row unseen by other connections (tests running
        # tasks in-process): nothing to renew from outside it, and the run is short.
        return
    with _heartbeats_lock:
        if job.pk in _heartbeats:
            return
        beat = _heartbeats[job.pk] = _Heartbeat(job)
    beat.start()


def job_heartbeat_stop(job: Job) -> None:
    with _heartbeats_lock:
        beat = _heartbeats.pop(job.pk, None)
    if beat is not None:
        beat.stopped.set()


def _held(job: Job):
    """The job's row, narrowed to this attempt when this process claimed it."""
    rows = Job.objects.for_institution(job.institution).filter(pk=job.pk)
    if job.status == JobStatus.RUNNING:
        rows = rows.filter(status=JobStatus.RUNNING, attempts=job.attempts)
    return rows


def job_mark_running(job: Job, *, total: int = 0, stage: str = "") -> None:
    """The run begins: set its first stage; claim the job first if nothing claimed it (the CLI)."""
    if job.status != JobStatus.RUNNING:
        claimed = job_claim(institution=job.institution, job_id=job.pk)
        if claimed is None:
            job.refresh_from_db()
            raise JobCancelled(f"job #{job.pk} is {job.status}; not started") if job.is_finished else \
                JobLeaseLost(f"job #{job.pk} is held by another attempt")
        job.__dict__.update({field.attname: getattr(claimed, field.attname) for field in Job._meta.concrete_fields})
    now = timezone.now()
    _held(job).update(progress_total=total, stage=stage, updated_at=now,
                      lease_expires_at=_lease_until(now))
    job.refresh_from_db()
    _heartbeat_start(job)
    logger.info("job %s (%s) running, attempt %s", job.pk, job.kind, job.attempts)


def job_progress(job: Job, *, done: int | None = None, total: int | None = None, stage: str | None = None) -> None:
    """Record progress and renew the lease. Raises :class:`JobCancelled` when a cancel was asked
    for, :class:`JobLeaseLost` when the job is no longer this attempt's (for a job this process
    claimed; see :func:`job_mark_running`). Without ``done`` the count is left as it is (other
    processes add to it: :func:`job_progress_add`)."""
    now = timezone.now()
    fields: dict[str, Any] = {"updated_at": now, "lease_expires_at": _lease_until(now)}
    if done is not None:
        fields["progress_done"] = done
    if total is not None:
        fields["progress_total"] = total
    if stage is not None:
        fields["stage"] = stage
    if job.status != JobStatus.RUNNING:
        Job.objects.for_institution(job.institution).filter(pk=job.pk).update(**fields)
        return
    if _held(job).filter(cancel_requested_at__isnull=True).update(**fields):
        return
    current = Job.objects.for_institution(job.institution).filter(pk=job.pk).first()
    if current is not None and current.status == JobStatus.RUNNING and current.attempts == job.attempts:
        raise JobCancelled(f"job #{job.pk} was cancelled")
    raise JobLeaseLost(f"job #{job.pk} is no longer held by attempt {job.attempts}")


def job_progress_add(job: Job, *, done: int) -> bool:
    """Count ``done`` more units of a running job's work, from any process that helps the attempt
    holding it (a chunk of a rescore fanned out over the workers). Neither renews the lease (that
    stays the holder's) nor depends on which attempt holds it. False, and nothing counted, when the
    job no longer runs or a cancel was asked for: the helper stops."""
    return bool(Job.objects.for_institution(job.institution).filter(
        pk=job.pk, status=JobStatus.RUNNING, cancel_requested_at__isnull=True,
    ).update(progress_done=F("progress_done") + done, updated_at=timezone.now()))


def _finish(job: Job, fields: dict[str, Any]) -> bool:
    """Write a final state, unless the job already finished or belongs to another attempt."""
    job_heartbeat_stop(job)
    finished = _held(job).filter(status__in=ACTIVE_JOB_STATUSES).update(**fields)
    job.refresh_from_db()
    if not finished:
        logger.warning("job %s: final state %s not recorded; it is %s (attempt %s)", job.pk,
                       fields.get("status"), job.status, job.attempts)
        return False
    # Ids, kind, status, time and the counts' numbers only: an error's text may quote a value.
    seconds = (job.finished_at - job.started_at).total_seconds() if job.finished_at and job.started_at else None
    numbers = {key: value for key, value in (job.counts or {}).items() if isinstance(value, int | float)}
    logger.info("job %s (%s) %s%s; counts %s", job.pk, job.kind, job.status,
                f" after {seconds:.1f} s" if seconds is not None else "", numbers)
    _emit_job_finished(job)
    _release_followers(job)
    return True


def job_succeed(job: Job, *, counts: dict | None = None, result: dict | None = None) -> None:
    now = timezone.now()
    _finish(job, {"status": JobStatus.SUCCEEDED, "finished_at": now, "updated_at": now, "counts": counts or {},
                  "result": result or {}, "progress_done": F("progress_total"), "stage": "done",
                  "lease_expires_at": None})


def job_fail(job: Job, *, error: str, counts: dict | None = None, result: dict | None = None) -> None:
    """Record the failure (with its counts and result in the same write, so a poller never sees a
    failed job without them); on a fresh connection if this one is broken (the database restarted
    under the task), so the job never stays ``running`` with a dead worker behind it."""
    now = timezone.now()
    fields: dict[str, Any] = {"status": JobStatus.FAILED, "finished_at": now, "updated_at": now, "error": error,
                              "lease_expires_at": None}
    if counts is not None:
        fields["counts"] = counts
    if result is not None:
        fields["result"] = result
    try:
        _finish(job, fields)
    except DATABASE_CONNECTION_ERRORS as exc:
        logger.warning("job %s: recording its failure failed (%s); retrying on a fresh connection", job.pk, exc)
        if job_record_on_fresh_connection(job, fields):
            job.status, job.error = JobStatus.FAILED, error
            _release_after_fresh_write(job)


def job_record_on_fresh_connection(job: Job, fields: dict[str, Any], *, within: float = 30.0) -> bool:
    """Write ``fields`` to the job from a new thread (so on a new connection), retrying while the
    database comes back (a restart takes seconds), for up to ``within`` seconds. False if it never
    did: the lease then runs out and the sweeper takes the job."""
    done = threading.Event()

    def write() -> None:
        delay, deadline = 0.25, time.monotonic() + within
        try:
            while True:
                try:
                    rows = Job.objects.unscoped().filter(pk=job.pk, status__in=ACTIVE_JOB_STATUSES)
                    if job.status == JobStatus.RUNNING:
                        rows = rows.filter(attempts=job.attempts)
                    rows.update(**fields)
                    done.set()
                    return
                except DATABASE_CONNECTION_ERRORS as exc:
                    connection.close()
                    if time.monotonic() + delay > deadline:
                        logger.error("job %s: could not record %s: %s", job.pk, fields.get("status"), exc)
                        return
                    time.sleep(delay)
                    delay = min(delay * 2, 4.0)
        finally:
            connection.close()

    job_heartbeat_stop(job)
    thread = threading.Thread(target=write, name=f"job-{job.pk}-record", daemon=True)
    thread.start()
    thread.join()
    return done.is_set()


def _release_after_fresh_write(job: Job, *, outside_task: bool = False) -> None:
    # The task's own connection is broken; tell listeners from a fresh one too.
    def release() -> None:
        try:
            fresh = Job.objects.unscoped().select_related("institution").get(pk=job.pk)
            _emit_job_finished(fresh)
            _release_followers(fresh)
            if outside_task:
                _stopped_outside_its_task(fresh)
        except DatabaseError:
            logger.exception("job %s: webhooks and follow-ups after a fresh-connection write failed", job.pk)
        finally:
            connection.close()

    thread = threading.Thread(target=release, daemon=True)
    thread.start()
    thread.join()


def job_cancel(*, job: Job, user=None) -> Job:
    """Cancel a queued job at once, or ask a running one to stop at its next progress call.

    Raises :class:`JobNotCancellable` for a finished job. Records who asked and when.
    """
    now = timezone.now()
    rows = Job.objects.for_institution(job.institution).filter(pk=job.pk)
    who = getattr(user, "username", None) or "an administrator"
    if rows.filter(status=JobStatus.QUEUED).update(
            status=JobStatus.CANCELLED, cancel_requested_at=now, cancelled_by=user, finished_at=now, updated_at=now,
            stage="cancelled", error=f"Cancelled by {who} before it started."):
        job.refresh_from_db()
        _emit_job_finished(job)
        _release_followers(job)
        _stopped_outside_its_task(job)
        return job
    if not rows.filter(status=JobStatus.RUNNING).update(
            cancel_requested_at=Coalesce("cancel_requested_at", Value(now)), cancelled_by=user, updated_at=now):
        job.refresh_from_db()
        raise JobNotCancellable(job)
    job.refresh_from_db()
    return job


def job_record_cancelled(job: Job, *, note: str = "") -> None:
    """The running attempt stopped on a cancel request: record it (with who asked)."""
    current = Job.objects.for_institution(job.institution).filter(pk=job.pk).select_related("cancelled_by").first()
    who = getattr(getattr(current, "cancelled_by", None), "username", None) or "an administrator"
    stage = getattr(current, "stage", "") or "its first step"
    now = timezone.now()
    _finish(job, {"status": JobStatus.CANCELLED, "finished_at": now, "updated_at": now, "lease_expires_at": None,
                  "error": f"Cancelled by {who}; stopped during {stage}. {note}".strip()})


def job_requeue_after_interruption(job: Job, *, reason: str) -> None:
    """The attempt stopped on a transient fault (the database went away): queue the job again for
    the dispatcher, or fail it when it used its attempts. Written on a fresh connection."""
    now = timezone.now()
    if job.attempts >= settings.JOB_MAX_ATTEMPTS:
        fields = {"status": JobStatus.FAILED, "finished_at": now, "updated_at": now, "lease_expires_at": None,
                  "error": f"Stopped {job.attempts} times ({reason}); given up. Start it again once the cause "
                           "is fixed."}
    else:
        fields = {"status": JobStatus.QUEUED, "dispatched_at": None, "lease_expires_at": None, "updated_at": now,
                  "stage": f"re-queued after attempt {job.attempts}: {reason}"[:120]}
    if job_record_on_fresh_connection(job, fields) and fields["status"] == JobStatus.FAILED:
        _release_after_fresh_write(job, outside_task=True)


def job_sweep() -> dict[str, int]:
    """Beat, every minute: running jobs whose lease ran out (their worker died or hangs) are
    re-queued and sent again, failed with the reason after ``JOB_MAX_ATTEMPTS`` attempts, or
    recorded as cancelled when a cancel was asked for. Returns counts per outcome."""
    now = timezone.now()
    outcome = {"requeued": 0, "failed": 0, "cancelled": 0}
    expired = Job.objects.unscoped().filter(status=JobStatus.RUNNING).filter(
        Q(lease_expires_at__lt=now)
        | Q(lease_expires_at__isnull=True, updated_at__lt=now - timedelta(seconds=settings.JOB_LEASE_SECONDS))
    ).select_related("institution", "cancelled_by")
    for job in expired:
        # Only if nothing renewed it since we looked (a heartbeat racing the sweep wins).
        rows = Job.objects.unscoped().filter(pk=job.pk, status=JobStatus.RUNNING, attempts=job.attempts,
                                             lease_expires_at=job.lease_expires_at)
        seen = timezone.localtime(job.lease_expires_at or job.updated_at).strftime("%Y-%m-%d %H:%M:%S %Z")
        if job.cancel_requested_at is not None:
            who = getattr(job.cancelled_by, "username", None) or "an administrator"
            fields = {"status": JobStatus.CANCELLED, "error": f"Cancelled by {who}; its worker had stopped "
                                                              f"responding (lease ran out at {seen})."}
            key = "cancelled"
        elif job.attempts >= settings.JOB_MAX_ATTEMPTS:
            fields = {"status": JobStatus.FAILED, "error": (
                f"The worker running this job stopped responding on each of its {job.attempts} attempts (the last "
                f"lease ran out at {seen}); it was given up. Start it again; if it keeps stopping, the operators "
                "should look at the workers' logs (memory, time limits).")}
            key = "failed"
        else:
            fields = {"status": JobStatus.QUEUED, "dispatched_at": None,
                      "stage": f"re-queued: the worker of attempt {job.attempts} stopped responding"[:120]}
            key = "requeued"
        final = fields["status"] != JobStatus.QUEUED
        if final:
            fields["finished_at"] = now
        if not rows.update(**fields, lease_expires_at=None, lease_expiries=F("lease_expiries") + 1, updated_at=now):
            continue
        outcome[key] += 1
        logger.warning("sweeper: job %s (%s, institution %s) %s after attempt %s", job.pk, job.kind,
                       job.institution_id, key, job.attempts)
        job.refresh_from_db()
        if final:
            _emit_job_finished(job)
            _release_followers(job)
            _stopped_outside_its_task(job)
        elif job.kind in _JOB_RUNNERS:
            _send(job, _JOB_RUNNERS[job.kind])
    return outcome


def _stopped_outside_its_task(job: Job) -> None:
    job_stopped_outside_its_task.send_robust(sender=Job, institution=job.institution, job=job)


def _emit_job_finished(job: Job) -> None:
    webhook_emit(institution=job.institution, event="job.finished", payload={"job": {
        "id": job.pk, "kind": job.kind, "status": job.status, "counts": job.counts, "error": job.error,
        "triggered_by": job.triggered_by, "started_at": job.started_at, "finished_at": job.finished_at,
    }})


def worker_heartbeat_record(worker: str) -> None:
    """``worker`` is alive now; heartbeats of workers silent for a day are forgotten."""
    now = timezone.now()
    WorkerHeartbeat.objects.update_or_create(worker=worker[:200], defaults={"seen_at": now})
    WorkerHeartbeat.objects.filter(seen_at__lt=now - timedelta(days=1)).delete()
