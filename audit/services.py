"""Writing the access audit trail, and the two sanctioned changes to it (retention, erasure).

:func:`access_record` is the only writer: one entry per request (a list is one entry with its
filter and size, never one per row). The recording hooks of each channel (:mod:`audit.recording`)
call it; so can a view that hands out student-level data some other way.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from accounts.login_protection import client_address
from institutions.jobs import job_create, job_dispatch, job_mark_running, job_succeed
from institutions.models import Institution, Job, JobKind

from . import batching, sql
from .models import AccessAction, AccessEntry

# Query parameters that only page through a list or choose its format: not part of its filter.
PAGING_PARAMETERS = frozenset({"page", "page_size", "cursor", "export", "format", "limit", "offset"})
# Free text that may be a name, an email or an id: its value is never stored (see docs/privacy.md).
FREE_TEXT_PARAMETERS = frozenset({"q", "search"})
WITHHELD = "(search text not recorded)"
MAX_FILTER_KEYS = 30
MAX_FILTER_VALUE_CHARS = 100


@dataclass(frozen=True)
class Accessor:
    """Who read: a member (user id and username) or an API key (its id and label), and from where."""

    name: str
    user_id: int | None = None
    api_key_id: int | None = None
    ip_address: str | None = None


def _address(request) -> str | None:
    text = client_address(request)
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def accessor_from_request(request) -> Accessor:
    """The reader of a page or API request. An API key is named by its public prefix and name, and
    its service user (not a person) is not recorded as the reader."""
    api_key = getattr(request, "auth", None)
    if getattr(api_key, "is_api_key", False):
        return Accessor(name=f"API key {api_key.display_prefix} ({api_key.name})"[:200], api_key_id=api_key.pk,
                        ip_address=_address(request))
    user = request.user
    return Accessor(name=user.get_username(), user_id=user.pk, ip_address=_address(request))


def list_filters(query, *, student_parameter: str | None = None) -> tuple[dict, int | None]:
    """The filter of a list request from its query parameters, and the student it names if any.

    Paging parameters are left out; free-text search is kept only as a marker that one was given
    (the text may be a name); the ``student_parameter`` (an id) goes into the entry's own student
    column, so that erasure unlinks it. Bounded: at most 30 parameters of at most 100 characters.
    """
    filters: dict[str, str | list[str]] = {}
    student_id = None
    for key in list(query.keys())[:MAX_FILTER_KEYS]:
        values = [value for value in query.getlist(key) if value != ""]
        if key in PAGING_PARAMETERS or not values:
            continue
        if key == student_parameter:
            student_id = _possible_id(values[0])
            if student_id is not None:
                continue
        if key in FREE_TEXT_PARAMETERS:
            filters[filter_text(key)] = WITHHELD
            continue
        cut = [filter_text(value) for value in values[:5]]
        filters[filter_text(key)] = cut[0] if len(cut) == 1 else cut
    return filters, student_id


def filter_text(value: str) -> str:
    """A query parameter's text as an entry keeps it: cut to 100 characters, and a NUL (which a
    jsonb value cannot hold, and which a hostile query string may carry) shown as U+FFFD."""
    return value[:MAX_FILTER_VALUE_CHARS].replace("\x00", "\ufffd")


def _possible_id(value) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if 0 < number <= 2**63 - 1 else None


def access_record(
    *, institution: Institution, accessor: Accessor, action: AccessAction | str, student_id: int | None = None,
    object_id: int | None = None, filters: dict | None = None, result_count: int | None = None,
) -> None:
    """Append one entry: inside a transaction, as part of it; outside one, through this process's
    batch (audit.batching: written within ``AUDIT_BATCH_MAX_WAIT_MS``, its commit not waiting for
    the disk)."""
    params = {
        "institution_id": institution.pk, "created_at": timezone.now(), "action": str(action),
        "actor_user_id": accessor.user_id, "actor_name": accessor.name[:200], "api_key_id": accessor.api_key_id,
        "student_id": _possible_id(student_id), "object_id": _possible_id(object_id),
        "filters": json.dumps(filters or {}), "result_count": result_count, "ip_address": accessor.ip_address,
    }
    if not connection.in_atomic_block:
        batching.enqueue(params)
        return
    with connection.cursor() as cursor:
        cursor.execute(sql.ACCESS_ENTRY_INSERT_IN_TRANSACTION, params)


def access_record_for_request(request, *, institution: Institution, action: AccessAction | str, **details) -> None:
    access_record(institution=institution, accessor=accessor_from_request(request), action=action, **details)


def redact_student(institution: Institution, student_id: int, *, erased_by=None, erased_by_name: str = "") -> int:
    """Unlink an erased student from the access log; returns how many entries were unlinked.

    For the student erasure feature: call it inside the erasure's transaction. Every entry of
    ``student_id`` in ``institution`` keeps who read what and when, but no longer names the student
    (``student_id`` becomes NULL; entries hold nothing else personal about a student). One new
    entry records the erasure itself, with who erased (``erased_by``, a user, or
    ``erased_by_name`` such as "retention job") and how many entries were unlinked, and no student.
    Nothing else can change an entry: the database refuses it (see migrations/0001_initial.py).
    """
    number = _possible_id(student_id)
    if number is None:
        raise ValueError(f"{student_id!r} is not a student id")
    if erased_by is not None:
        accessor = Accessor(name=erased_by.get_username(), user_id=erased_by.pk)
    else:
        accessor = Accessor(name=erased_by_name or "system")
    batching.flush()  # reads still waiting in this process's batch are written, then unlinked too
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql.ACCESS_ENTRIES_UNLINK_STUDENT, {"institution_id": institution.pk, "student_id": number})
        unlinked = cursor.fetchone()[0]
        access_record(institution=institution, accessor=accessor, action=AccessAction.STUDENT_ERASED,
                      result_count=unlinked)
    return unlinked


def access_retention_cutoff(now: datetime.datetime | None = None) -> datetime.datetime:
    """Entries created before this are past ``AUDIT_RETENTION_DAYS``."""
    return (now or timezone.now()) - datetime.timedelta(days=settings.AUDIT_RETENTION_DAYS)


def access_entries_expire(*, institution: Institution, before: datetime.datetime) -> int:
    """Delete the institution's entries created before ``before``; the database refuses a
    ``before`` less than 30 days ago. The retention job (audit.tasks) is the caller."""
    with connection.cursor() as cursor:
        cursor.execute(sql.ACCESS_ENTRIES_EXPIRE, {"institution_id": institution.pk, "before": before})
        return cursor.fetchone()[0]


def access_entries_remove_for_removed_institution(*, institution_id: int) -> int:
    """After an institution's row is deleted: its entries go too (the database checks it is gone)."""
    with connection.cursor() as cursor:
        cursor.execute(sql.ACCESS_ENTRIES_REMOVE_INSTITUTION, {"institution_id": institution_id})
        return cursor.fetchone()[0]


def access_log_retention_due(*, institution: Institution, before: datetime.datetime) -> bool:
    return AccessEntry.objects.for_institution(institution).filter(created_at__lt=before).exists()


def access_log_retention_start(*, institution: Institution, before: datetime.datetime) -> Job | None:
    """Queue the institution's retention job when it has entries past the period (None: nothing to
    remove, no job). The job's record says when it ran, up to which time, and how many went."""
    if not access_log_retention_due(institution=institution, before=before):
        return None
    job, created = job_create(institution=institution, kind=JobKind.AUDIT_RETENTION, triggered_by="schedule",
                              params={"before": before.isoformat(),
                                      "retention_days": settings.AUDIT_RETENTION_DAYS}, join_active=True)
    if created:
        job_dispatch(job)
    return job


def access_log_retention_run(*, institution: Institution, job: Job) -> None:
    """The retention job's body: remove the entries created before the job's ``before``."""
    before = datetime.datetime.fromisoformat(job.params["before"])
    job_mark_running(job, total=1, stage="Removing access log entries past the retention period")
    removed = access_entries_expire(institution=institution, before=before)
    job_succeed(job, counts={"removed": removed},
                result={"before": job.params["before"], "retention_days": job.params.get("retention_days")})
