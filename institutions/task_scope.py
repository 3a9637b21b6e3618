"""Celery tasks that run for one institution: the decorator loads it and enters its scope.

As PostHog's ``with_team_scope``: a task says what it runs for, and its body receives the
institution (and, for a job task, the claimed job) instead of repeating the lookup and the
``institution_scope`` block. Messages keep their format, keyword arguments only
(``institution_id``, plus ``job_id`` or the task's own ids), so queued messages stay valid.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from celery import shared_task

from .jobs import (
    DATABASE_CONNECTION_ERRORS,
    JobCancelled,
    JobLeaseLost,
    job_claim,
    job_heartbeat_stop,
    job_record_cancelled,
    job_requeue_after_interruption,
    register_job_runner,
)
from .models import Institution
from .observability import job_log_context
from .scoping import institution_scope, viewer_restriction

logger = logging.getLogger(__name__)


def _institution(institution_id: int, task_name: str) -> Institution | None:
    institution = Institution.objects.filter(pk=institution_id).first()
    if institution is None:  # deleted since the message was sent (or a beat entry outlived it)
        logger.warning("%s: no institution %s; message dropped", task_name, institution_id)
    return institution


def institution_task(**options: Any) -> Callable[[Callable[..., Any]], Any]:
    """``shared_task(**options)`` whose body runs in the scope of the message's ``institution_id``.

    The body is called as ``body(institution=..., **the message's other kwargs)``.
    """

    def decorate(body: Callable[..., Any]):
        # functools.wraps keeps the body's name and module, so the task's name is unchanged;
        # Celery checks messages against this wrapper's own signature (the message format).
        @functools.wraps(body)
        def run(*, institution_id: int, **kwargs: Any) -> Any:
            institution = _institution(institution_id, body.__name__)
            if institution is None:
                return None
            with institution_scope(institution), viewer_restriction(None):
                return body(institution=institution, **kwargs)

        return shared_task(**options)(run)

    return decorate


def institution_job_task(*, kind: str, **options: Any) -> Callable[[Callable[..., Any]], Any]:
    """``shared_task(**options)`` that runs jobs of ``kind``, registered as that kind's runner.

    The body is called as ``body(institution=..., job=...)`` in the institution's scope, with
    the job claimed (one atomic update, see ``jobs.job_claim``): a message for a deleted,
    finished or cancelled job, or one another attempt holds (a re-send, a redelivery), is
    acknowledged and does nothing. While the body runs a heartbeat renews the job's lease. The
    body stopping on a cancel is recorded as cancelled; on a lost database connection the job is
    re-queued (recorded on a fresh connection) for the dispatcher, or failed after its attempts.
    """

    def decorate(body: Callable[..., Any]):
        @functools.wraps(body)
        def run(*, institution_id: int, job_id: int) -> Any:
            institution = _institution(institution_id, body.__name__)
            if institution is None:
                return None
            with institution_scope(institution), viewer_restriction(None):
                job = job_claim(institution=institution, job_id=job_id)
                if job is None:
                    return None
                try:
                    with job_log_context(job.pk):
                        return body(institution=institution, job=job)
                except JobCancelled:
                    job_record_cancelled(job)
                except JobLeaseLost:
                    logger.warning("%s: job %s was taken from attempt %s; stopped", body.__name__, job.pk,
                                   job.attempts)
                except DATABASE_CONNECTION_ERRORS as exc:
                    logger.exception("%s: job %s lost its database connection", body.__name__, job.pk)
                    job_requeue_after_interruption(job, reason=f"the database connection was lost ({exc})"[:200])
                finally:
                    job_heartbeat_stop(job)
                return None

        task = shared_task(**options)(run)
        register_job_runner(kind, task)
        return task

    return decorate
