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

from .jobs import job_claim, register_job_runner
from .models import Institution
from .scoping import institution_scope

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
            with institution_scope(institution):
                return body(institution=institution, **kwargs)

        return shared_task(**options)(run)

    return decorate


def institution_job_task(*, kind: str, **options: Any) -> Callable[[Callable[..., Any]], Any]:
    """``shared_task(**options)`` that runs jobs of ``kind``, registered as that kind's runner.

    The body is called as ``body(institution=..., job=...)`` in the institution's scope, with
    the job claimed: a message for a deleted or already finished job (a redelivery of work that
    ended) is acknowledged and does nothing.
    """

    def decorate(body: Callable[..., Any]):
        @functools.wraps(body)
        def run(*, institution_id: int, job_id: int) -> Any:
            institution = _institution(institution_id, body.__name__)
            if institution is None:
                return None
            with institution_scope(institution):
                job = job_claim(institution=institution, job_id=job_id)
                if job is None:
                    return None
                return body(institution=institution, job=job)

        task = shared_task(**options)(run)
        register_job_runner(kind, task)
        return task

    return decorate
