"""Celery tasks of the tenancy layer. Tasks take ids, never model instances, and run scoped."""

import socket

from celery import shared_task

from .jobs import job_dispatch_pending, job_mark_running, job_succeed, register_job_runner
from .models import Institution, Job, JobKind
from .scoping import institution_scope
from .webhooks import webhook_deliver, webhook_dispatch_due, webhook_schedule_retry


@shared_task(acks_late=True, ignore_result=True)
def dispatch_pending_jobs() -> int:
    """Periodic: re-queue jobs that could not be queued while the broker was down."""
    return job_dispatch_pending()


@shared_task(acks_late=True, ignore_result=True, time_limit=60, soft_time_limit=50)
def worker_health_check(*, institution_id: int, job_id: int) -> None:
    """Prove the queue works end to end: a worker picks this up and writes to the database."""
    institution = Institution.objects.get(pk=institution_id)
    with institution_scope(institution):
        job = Job.objects.get(pk=job_id)
        job_mark_running(job, total=1, stage="health check")
        job_succeed(job, counts={"checked": 1}, result={"worker": socket.gethostname()})


register_job_runner(JobKind.HEALTH_CHECK, worker_health_check)


@shared_task(acks_late=True, ignore_result=True, time_limit=60, soft_time_limit=45)
def deliver_webhook(*, institution_id: int, delivery_id: int) -> None:
    """One delivery attempt; on failure the next one is queued with exponential backoff."""
    institution = Institution.objects.get(pk=institution_id)
    with institution_scope(institution):
        delay = webhook_deliver(institution=institution, delivery_id=delivery_id)
    if delay is not None:
        webhook_schedule_retry(institution_id=institution_id, delivery_id=delivery_id, delay=delay)


@shared_task(acks_late=True, ignore_result=True)
def dispatch_due_webhooks() -> int:
    """Periodic: re-send deliveries whose task was never queued (broker down) or was lost."""
    return webhook_dispatch_due()
