"""How long an institution's prediction history is kept, and the daily clean-up that applies it.

Every scoring run stores one history row per student it scored. An institution keeps every run
for ``history_keep_all_days`` days, then the last run of each calendar month (in its time zone)
for ``history_keep_monthly_months`` months, or forever. "The last run" is taken per student: a
student keeps their last row of each month, so an incremental rescore at the end of a month (which
scores only the students whose data changed) does not cost everyone else that month's history.
Whatever the setting, the clean-up never removes a row something still reads: a student's
latest prediction (the dashboards, the API, the ranking) and a prediction an advisor gave
feedback on (counted on the model page). The history a student's risk chart, the sharp rises
and the effectiveness report read is what the setting
keeps (docs/operations.md, "Prediction history: growth and retention").

The clean-up is a job per institution (kind ``history_cleanup``, on the jobs pages). Its start
fixes the time it works from, so its plan equals the preview made at that time; it works one
local month at a time (which reads one or two partitions) and removes rows in batches of
``HISTORY_BATCH_SIZE``, each its own short transaction, and stops after
``HISTORY_MAX_SECONDS``, leaving the rest to the next day's run (removing is idempotent).
"""

from __future__ import annotations

import datetime
import time
import zoneinfo
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext

from institutions.jobs import job_create, job_dispatch, job_mark_running, job_progress, job_succeed
from institutions.models import Institution, Job, JobKind

from .. import sql
from ..models import PredictionSettings
from ..selectors import prediction_settings_get

HISTORY_BATCH_SIZE = 5_000
HISTORY_MAX_SECONDS = 10 * 60


@dataclass(frozen=True)
class HistoryRetention:
    """Every run for ``keep_all_days``, then monthly for ``keep_monthly_months`` (None: forever)."""

    keep_all_days: int
    keep_monthly_months: int | None

    @classmethod
    def of(cls, settings: PredictionSettings) -> HistoryRetention:
        return cls(settings.history_keep_all_days, settings.history_keep_monthly_months)

    def describe(self) -> str:
        if self.keep_monthly_months is None:
            return gettext("every run for %(days)s days, one run per month forever") % {"days": self.keep_all_days}
        return gettext("every run for %(days)s days, then the last run of each month for %(months)s months") % {
            "days": self.keep_all_days, "months": self.keep_monthly_months}


@dataclass(frozen=True)
class HistoryRemoval:
    """What the clean-up removes at ``at``: history rows and runs that lose at least one row."""

    rows: int
    runs: int
    at: datetime.datetime


class HistoryRetentionInvalid(ValueError):
    """A setting outside its bounds; the message says which (nothing was saved)."""


def _month_index(day: datetime.date, months_back: int = 0) -> int:
    """Months counted as ``year * 12 + month - 1`` (as predictions.sql's statements do)."""
    return day.year * 12 + (day.month - 1) - months_back


def _month_start(index: int, zone: zoneinfo.ZoneInfo) -> datetime.datetime:
    """The instant a local month (by index) begins."""
    return datetime.datetime(index // 12, index % 12 + 1, 1, tzinfo=zone)


EARLIEST = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def _plan_params(*, institution: Institution, retention: HistoryRetention, at: datetime.datetime) -> dict:
    zone = zoneinfo.ZoneInfo(institution.timezone)
    keep_all_since = at - datetime.timedelta(days=retention.keep_all_days)
    forever = retention.keep_monthly_months is None
    return {
        "institution_id": institution.pk,
        "timezone": institution.timezone,
        "keep_all_since": keep_all_since,
        "monthly_forever": forever,
        # The earliest local month whose last rows are kept.
        "monthly_since": None if forever else _month_index(at.astimezone(zone).date(),
                                                           retention.keep_monthly_months),
        # Every whole local month up to the one the cut-off falls in.
        "from": EARLIEST,
        "until": _month_start(_month_index(keep_all_since.astimezone(zone).date()) + 1, zone),
    }


def history_removal_preview(
    *, institution: Institution, retention: HistoryRetention | None = None, at: datetime.datetime | None = None,
) -> HistoryRemoval:
    """What the next clean-up would remove at ``at`` (now) under ``retention`` (the saved setting)."""
    at = at or timezone.now()
    retention = retention or HistoryRetention.of(prediction_settings_get(institution=institution))
    with connection.cursor() as cursor:
        cursor.execute(sql.HISTORY_REMOVABLE_COUNT, _plan_params(institution=institution, retention=retention, at=at))
        rows, runs = cursor.fetchone()
    return HistoryRemoval(rows=rows, runs=runs, at=at)


def _months_to_clean(params: dict, zone: zoneinfo.ZoneInfo) -> list[tuple[datetime.datetime, datetime.datetime]]:
    """The local months from the oldest expirable row to the cut-off's, as [from, until) instants."""
    with connection.cursor() as cursor:
        cursor.execute(sql.HISTORY_OLDEST_BEFORE, params)
        oldest = cursor.fetchone()[0]
    if oldest is None:
        return []
    first = _month_index(oldest.astimezone(zone).date())
    last = _month_index(params["keep_all_since"].astimezone(zone).date())
    return [(_month_start(index, zone), _month_start(index + 1, zone)) for index in range(first, last + 1)]


def _validated(keep_all_days, keep_monthly_months) -> HistoryRetention:
    if not isinstance(keep_all_days, int) or isinstance(keep_all_days, bool) or not 1 <= keep_all_days <= 3650:
        raise HistoryRetentionInvalid(gettext("Keep every run for between 1 and 3650 days."))
    if keep_monthly_months is not None and (
            not isinstance(keep_monthly_months, int) or isinstance(keep_monthly_months, bool)
            or not 0 <= keep_monthly_months <= 1200):
        raise HistoryRetentionInvalid(gettext("Keep monthly runs for between 0 and 1200 months, or leave it empty "
                                              "(forever)."))
    return HistoryRetention(keep_all_days, keep_monthly_months)


@dataclass(frozen=True)
class HistoryRetentionChange:
    """The outcome of asking for a setting: saved, or waiting for a confirmation of ``removal``."""

    saved: bool
    retention: HistoryRetention
    removal: HistoryRemoval
    current_removal: HistoryRemoval

    @property
    def removes_more(self) -> bool:
        return self.removal.rows > self.current_removal.rows


def history_retention_set(
    *, institution: Institution, keep_all_days: int, keep_monthly_months: int | None, actor: AbstractBaseUser | None,
    confirmed: bool = False, at: datetime.datetime | None = None,
) -> HistoryRetentionChange:
    """Save the institution's retention setting, recording who and when.

    A setting under which the next clean-up would remove more than under the saved one is saved
    only when ``confirmed`` (the page showed ``removal`` first); otherwise nothing is saved and
    the outcome carries the preview. Raises :class:`HistoryRetentionInvalid` for a bad value.
    """
    retention = _validated(keep_all_days, keep_monthly_months)
    at = at or timezone.now()
    settings = prediction_settings_get(institution=institution)
    current = HistoryRetention.of(settings)
    removal = history_removal_preview(institution=institution, retention=retention, at=at)
    current_removal = history_removal_preview(institution=institution, retention=current, at=at)
    change = HistoryRetentionChange(saved=False, retention=retention, removal=removal,
                                    current_removal=current_removal)
    if retention == current:
        return change
    if change.removes_more and not confirmed:
        return change
    with transaction.atomic():
        settings.history_keep_all_days = retention.keep_all_days
        settings.history_keep_monthly_months = retention.keep_monthly_months
        settings.history_retention_changed_at = at
        settings.history_retention_changed_by = actor
        settings.full_clean(exclude=["institution"])
        settings.save()
    return HistoryRetentionChange(saved=True, retention=retention, removal=removal, current_removal=current_removal)


def history_cleanup_start(*, institution: Institution, at: datetime.datetime | None = None) -> Job | None:
    """Queue the institution's clean-up when its setting expires some rows now (None: nothing to do)."""
    at = at or timezone.now()
    retention = HistoryRetention.of(prediction_settings_get(institution=institution))
    if not history_removal_preview(institution=institution, retention=retention, at=at).rows:
        return None
    job, created = job_create(
        institution=institution, kind=JobKind.HISTORY_RETENTION, triggered_by="schedule", join_active=True,
        params={"at": at.isoformat(), "keep_all_days": retention.keep_all_days,
                "keep_monthly_months": retention.keep_monthly_months})
    if created:
        job_dispatch(job)
    return job


def history_cleanup_run(*, institution: Institution, job: Job, max_seconds: float | None = None) -> dict:
    """The clean-up job's body: remove the rows expired at the job's time, a month at a time, in batches.

    The setting is the one the job was started with (its params), so what it removes is what the
    preview at that time showed. Stops after ``max_seconds`` with what remains for the next run.
    """
    at = datetime.datetime.fromisoformat(job.params["at"])
    retention = HistoryRetention(int(job.params["keep_all_days"]), job.params.get("keep_monthly_months"))
    deadline = time.monotonic() + (HISTORY_MAX_SECONDS if max_seconds is None else max_seconds)
    params = _plan_params(institution=institution, retention=retention, at=at)
    expected = history_removal_preview(institution=institution, retention=retention, at=at).rows
    job_mark_running(job, total=expected, stage="Removing prediction history past the retention setting")
    months = _months_to_clean(params, zoneinfo.ZoneInfo(institution.timezone)) if expected else []
    removed, runs, complete = 0, set(), True
    for month_from, month_until in months:
        while complete:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql.HISTORY_REMOVE_BATCH, {**params, "from": month_from, "until": month_until,
                                                          "batch_size": HISTORY_BATCH_SIZE})
                batch = [row[0] for row in cursor.fetchall()]
            removed += len(batch)
            runs.update(batch)
            job_progress(job, done=min(removed, expected))
            if time.monotonic() > deadline:
                complete = False
            if len(batch) < HISTORY_BATCH_SIZE:
                break
        if not complete:
            break
    complete = complete or removed >= expected
    counts = {"removed_rows": removed, "runs": len(runs)}
    job_succeed(job, counts=counts, result={"at": job.params["at"], "retention": retention.describe(),
                                            "complete": complete})
    return {**counts, "complete": complete}
