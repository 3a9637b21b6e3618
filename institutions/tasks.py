"""Celery tasks of the tenancy layer. Tasks take ids, never model instances, and run scoped."""

import socket

from celery import shared_task

from .jobs import job_dispatch_pending, job_mark_running, job_succeed, job_sweep, worker_heartbeat_record
from .models import Institution, Job, JobKind
from .task_scope import institution_job_task, institution_task
from .webhooks import webhook_deliver, webhook_dispatch_due, webhook_schedule_retry


@shared_task(acks_late=True, ignore_result=True)
def dispatch_pending_jobs() -> int:
    """Periodic: send queued jobs that never reached a worker (broker down, or the message lost)."""
    return job_dispatch_pending()


@shared_task(acks_late=True, ignore_result=True, time_limit=120)
def sweep_expired_jobs() -> dict:
    """Periodic (every minute): re-queue or fail running jobs whose worker stopped renewing the lease."""
    return job_sweep()


@institution_job_task(kind=JobKind.HEALTH_CHECK, acks_late=True, ignore_result=True, time_limit=60,
                      soft_time_limit=50)
def worker_health_check(*, institution: Institution, job: Job) -> None:
    """Prove the queue works end to end: a worker picks this up and writes to the database."""
    job_mark_running(job, total=1, stage="health check")
    job_succeed(job, counts={"checked": 1}, result={"worker": socket.gethostname()})


@institution_task(acks_late=True, ignore_result=True, time_limit=60, soft_time_limit=45)
def deliver_webhook(*, institution: Institution, delivery_id: int) -> None:
    """One delivery attempt; on failure the next one is queued with exponential backoff."""
    delay = webhook_deliver(institution=institution, delivery_id=delivery_id)
    if delay is not None:
        webhook_schedule_retry(institution_id=institution.pk, delivery_id=delivery_id, delay=delay)


@shared_task(bind=True, ignore_result=True, time_limit=30, soft_time_limit=20, expires=120)
def record_worker_heartbeat(self) -> None:
    """Beat, every WORKER_HEARTBEAT_SECONDS: the worker that takes it proves the queue is served
    (``/readyz``, ``/metrics``). Expires unread after two minutes, so a backlog of them never
    floods a worker that comes back."""
    worker_heartbeat_record(self.request.hostname or socket.gethostname())


@shared_task(acks_late=True, ignore_result=True)
def dispatch_due_webhooks() -> int:
    """Periodic: re-send deliveries whose task was never queued (broker down) or was lost."""
    return webhook_dispatch_due()
