"""Reading the access log: the admin's search and a student's "who saw this record"."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.db.models import QuerySet

from institutions.models import Institution

from . import batching
from .models import AccessEntry


@dataclass(frozen=True)
class AccessLogQuery:
    """What the access log page searches by; every part optional. Dates are whole days, inclusive,
    in the institution's time zone (the caller turns them into ``since``/``before``)."""

    user_id: int | None = None
    api_key_id: int | None = None
    student_id: int | None = None
    since: datetime.datetime | None = None
    before: datetime.datetime | None = None
    action: str = ""


def access_entry_search(*, institution: Institution, query: AccessLogQuery) -> QuerySet[AccessEntry]:
    """The institution's entries matching ``query``, newest first (each filter uses an index led by
    the institution), including the reads of this process that were still waiting in its batch."""
    batching.flush()
    return _entries(institution, query)


def _entries(institution: Institution, query: AccessLogQuery) -> QuerySet[AccessEntry]:
    entries = AccessEntry.objects.for_institution(institution)
    if query.user_id is not None:
        entries = entries.filter(actor_user_id=query.user_id)
    if query.api_key_id is not None:
        entries = entries.filter(api_key_id=query.api_key_id)
    if query.student_id is not None:
        entries = entries.filter(student_id=query.student_id)
    if query.since is not None:
        entries = entries.filter(created_at__gte=query.since)
    if query.before is not None:
        entries = entries.filter(created_at__lt=query.before)
    if query.action:
        entries = entries.filter(action=query.action)
    return entries.order_by("-created_at", "-id")


def student_access_entries(*, institution: Institution, student_id: int, limit: int = 20) -> list[AccessEntry]:
    """The latest reads of one student's own record (a list names the student only when it was
    filtered by them; appearing in a list or an export is recorded as that list's filter and size).
    For the profile's panel: it does not wait for the batch, so the latest reads appear within
    ``AUDIT_BATCH_MAX_WAIT_MS`` (a profile view would otherwise pay a write again)."""
    return list(_entries(institution, AccessLogQuery(student_id=student_id))[:limit])
