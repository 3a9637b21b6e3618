"""Celery tasks of the workspace: thin wrappers around workspace.digests."""

from __future__ import annotations

import datetime

from celery import shared_task

from institutions.models import Institution
from institutions.task_scope import institution_task

from . import digests


@shared_task(acks_late=True, ignore_result=True, time_limit=120)
def dispatch_digests() -> int:
    """Beat (every half hour, platform-wide): queue a digest run for each institution in its morning."""
    return digests.digest_dispatch()


@institution_task(acks_late=True, ignore_result=True, time_limit=900, soft_time_limit=840)
def send_digests(*, institution: Institution, scheduled_for: str | None = None) -> dict:
    """Send the institution's digests due at ``scheduled_for`` (ISO time; none: now); a second run
    the same day sends none again."""
    now = datetime.datetime.fromisoformat(scheduled_for) if scheduled_for else None
    return digests.digests_send(institution=institution, now=now)
