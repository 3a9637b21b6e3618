"""LMS activity events: validated bulk ingestion, and the per-student features derived from them.

Derived features (numeric FeatureDefinitions like any other, created on first use):

- ``activity_total``: interactions in the term window (sum of ``count``)
- ``activity_active_days``: distinct days with any activity (in the institution's time zone)
- ``activity_early`` / ``activity_middle`` / ``activity_late``: interactions in the first,
  second and last third of the term
- ``activity_days_since_last``: days from the last activity to ``as_of`` (from the term start
  when the student has no activity at all)
- ``activity_duration_days``: days between the first and the last activity
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db import transaction
from django.db.models import Count, Max, Min, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from institutions.jobs import job_fail, job_mark_running, job_succeed
from institutions.models import Institution, Job

from .models import ActivityEvent, ChangeSource, FeatureDefinition, FeatureKind, Student, StudentChange

MAX_EVENTS_PER_REQUEST = 10_000
KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_.-]{0,31}$")

ACTIVITY_FEATURES: dict[str, tuple[str, str, str]] = {
    # key: (label, unit, description)
    "activity_total": ("Learning-platform activity", "interactions", "Interactions in the term (LMS events)."),
    "activity_active_days": ("Active days", "days", "Distinct days with any learning-platform activity."),
    "activity_early": ("Activity, first third of term", "interactions", "Interactions in the first third."),
    "activity_middle": ("Activity, middle third of term", "interactions", "Interactions in the middle third."),
    "activity_late": ("Activity, last third of term", "interactions", "Interactions in the last third."),
    "activity_days_since_last": ("Days since last activity", "days",
                                 "Days since the last learning-platform activity (since term start if none)."),
    "activity_duration_days": ("Duration of activity", "days", "Days between the first and the last activity."),
}
# Advisors can influence engagement, not the calendar: these are the actionable ones.
ACTIONABLE_ACTIVITY_FEATURES = {"activity_total", "activity_active_days", "activity_late", "activity_days_since_last"}


class ActivityEventsInvalid(Exception):
    """The whole batch is refused; ``errors`` maps item index -> field -> messages."""

    def __init__(self, errors: dict[str, dict[str, list[str]]]):
        super().__init__(f"{len(errors)} invalid events")
        self.errors = errors


@dataclass(frozen=True)
class IngestResult:
    received: int
    created: int
    duplicates: int


def _optional_text(raw: Mapping, field: str, errors: dict[str, list[str]]) -> str:
    value = raw.get(field)
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > 100 or "\x00" in value:
        errors[field] = ["must be text of at most 100 characters"]
        return ""
    return value


def _clean_event(raw: object, *, students: Mapping[str, int]) -> tuple[dict, dict[str, list[str]]]:
    errors: dict[str, list[str]] = {}
    if not isinstance(raw, Mapping):
        return {}, {"non_field_errors": ["each event must be an object"]}
    external_id = raw.get("student")
    if not isinstance(external_id, str) or not external_id.strip():
        errors["student"] = ["required: the student's external id"]
    elif external_id.strip() not in students:
        errors["student"] = [f"no student with external id {external_id.strip()!r} in this institution"]
    try:
        occurred_at = parse_datetime(raw.get("timestamp")) if isinstance(raw.get("timestamp"), str) else None
    except ValueError:  # well-formed but impossible, e.g. month 13
        occurred_at = None
    if occurred_at is None:
        errors["timestamp"] = ["required: an ISO 8601 date-time, e.g. 2026-03-02T14:05:00Z"]
    elif timezone.is_naive(occurred_at):
        errors["timestamp"] = ["give a time zone offset (Z or +01:00)"]
    else:
        # Stored in UTC: PostgreSQL refuses offsets beyond ±15:59 that Python accepts.
        try:
            occurred_at = occurred_at.astimezone(UTC)
        except OverflowError:
            errors["timestamp"] = ["out of the supported range"]
    kind = raw.get("type")
    if not isinstance(kind, str) or not KIND_PATTERN.match(kind):
        errors["type"] = ["required: a lower-case word such as view, submit, forum or login (max 32 chars)"]
    course = _optional_text(raw, "course", errors)
    count = raw.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 1_000_000:
        errors["count"] = ["must be a whole number from 1 to 1000000"]
    event_id = _optional_text(raw, "id", errors)
    unknown = sorted(set(raw) - {"student", "timestamp", "type", "course", "count", "id"})
    if unknown:
        errors["non_field_errors"] = [f"unknown fields: {', '.join(map(str, unknown))}"]
    if errors:
        return {}, errors
    return {"student_id": students[external_id.strip()], "occurred_at": occurred_at, "kind": kind,
            "course": course.strip(), "count": count, "event_id": event_id.strip()}, {}


def activity_events_ingest(*, institution: Institution, events: Iterable[object]) -> IngestResult:
    """Validate every event, then store all of them or none. Events with a known ``id`` are skipped."""
    events = list(events)
    if not events:
        raise ActivityEventsInvalid({"events": {"non_field_errors": ["send at least one event"]}})
    if len(events) > MAX_EVENTS_PER_REQUEST:
        raise ActivityEventsInvalid({"events": {"non_field_errors": [
            f"at most {MAX_EVENTS_PER_REQUEST} events per request; got {len(events)}"]}})
    wanted = {str(e.get("student")).strip() for e in events if isinstance(e, Mapping) and e.get("student")}
    wanted = {external_id for external_id in wanted if "\x00" not in external_id}  # PostgreSQL rejects NUL
    students = dict(
        Student.objects.for_institution(institution).filter(external_id__in=wanted).values_list("external_id", "pk")
    )
    cleaned, errors = [], {}
    for index, raw in enumerate(events):
        row, row_errors = _clean_event(raw, students=students)
        if row_errors:
            errors[str(index)] = row_errors
        else:
            cleaned.append(row)
    if errors:
        raise ActivityEventsInvalid(errors)
    ids = [row["event_id"] for row in cleaned if row["event_id"]]
    known = set(
        ActivityEvent.objects.for_institution(institution).filter(event_id__in=ids).values_list("event_id", flat=True)
    ) if ids else set()
    fresh, seen = [], set()
    for row in cleaned:
        if row["event_id"]:
            if row["event_id"] in known or row["event_id"] in seen:
                continue
            seen.add(row["event_id"])
        fresh.append(ActivityEvent(institution=institution, **row))
    with transaction.atomic():
        # ignore_conflicts: a concurrent request with the same ids must not fail the batch.
        ActivityEvent.objects.for_institution(institution).bulk_create(fresh, batch_size=2000, ignore_conflicts=True)
    return IngestResult(received=len(events), created=len(fresh), duplicates=len(events) - len(fresh))


def activity_feature_definitions_ensure(*, institution: Institution) -> list[FeatureDefinition]:
    existing = {d.key: d for d in FeatureDefinition.objects.for_institution(institution).filter(
        key__in=list(ACTIVITY_FEATURES))}
    position = (FeatureDefinition.objects.for_institution(institution).aggregate(top=Max("position"))["top"] or 0) + 1
    created = []
    for offset, (key, (label, unit, description)) in enumerate(ACTIVITY_FEATURES.items()):
        if key not in existing:
            created.append(FeatureDefinition(
                institution=institution, key=key, label=label, kind=FeatureKind.NUMERIC, min_value=0, max_value=None,
                unit=unit, description=description, actionable=key in ACTIONABLE_ACTIVITY_FEATURES,
                position=position + offset,
            ))
    FeatureDefinition.objects.for_institution(institution).bulk_create(created)
    return [*existing.values(), *created]


def _window(institution: Institution, term_start: date, term_end: date) -> tuple[datetime, datetime]:
    tz = zoneinfo.ZoneInfo(institution.timezone)
    return (datetime.combine(term_start, time.min, tzinfo=tz),
            datetime.combine(term_end + timedelta(days=1), time.min, tzinfo=tz))


def activity_features_compute(
    *, institution: Institution, term_start: date, term_end: date, as_of: datetime | None = None
) -> dict[int, dict[str, float]]:
    """Feature values per student id, for every student of the institution (zeros when inactive)."""
    if term_end < term_start:
        raise ValueError("term_end must not be before term_start")
    start, end = _window(institution, term_start, term_end)
    as_of = min(as_of or timezone.now(), end)
    third = (end - start) / 3
    first_cut, second_cut = start + third, start + 2 * third
    tz = zoneinfo.ZoneInfo(institution.timezone)
    rows = (
        ActivityEvent.objects.for_institution(institution)
        .filter(occurred_at__gte=start, occurred_at__lt=end)
        .values("student_id")
        .annotate(
            total=Sum("count"),
            active_days=Count(TruncDate("occurred_at", tzinfo=tz), distinct=True),
            first=Min("occurred_at"), last=Max("occurred_at"),
            early=Sum("count", filter=Q(occurred_at__lt=first_cut)),
            middle=Sum("count", filter=Q(occurred_at__gte=first_cut, occurred_at__lt=second_cut)),
            late=Sum("count", filter=Q(occurred_at__gte=second_cut)),
        )
    )
    by_student = {row["student_id"]: row for row in rows}
    idle_days = float(max(0, (as_of.astimezone(tz).date() - term_start).days))
    values = {}
    for student_id in Student.objects.for_institution(institution).values_list("pk", flat=True):
        row = by_student.get(student_id)
        if row is None:
            values[student_id] = {"activity_total": 0.0, "activity_active_days": 0.0, "activity_early": 0.0,
                                  "activity_middle": 0.0, "activity_late": 0.0,
                                  "activity_days_since_last": idle_days, "activity_duration_days": 0.0}
            continue
        last_day, first_day = row["last"].astimezone(tz).date(), row["first"].astimezone(tz).date()
        values[student_id] = {
            "activity_total": float(row["total"] or 0),
            "activity_active_days": float(row["active_days"]),
            "activity_early": float(row["early"] or 0),
            "activity_middle": float(row["middle"] or 0),
            "activity_late": float(row["late"] or 0),
            "activity_days_since_last": float(max(0, (as_of.astimezone(tz).date() - last_day).days)),
            "activity_duration_days": float((last_day - first_day).days),
        }
    return values


@transaction.atomic
def activity_features_recompute(
    *, institution: Institution, term_start: date, term_end: date, as_of: datetime | None = None,
    job: Job | None = None,
) -> dict[str, int]:
    """Write the derived features into every student's feature values, with change history."""
    activity_feature_definitions_ensure(institution=institution)
    values = activity_features_compute(institution=institution, term_start=term_start, term_end=term_end,
                                       as_of=as_of)
    changed_students, changes = [], []
    for student in Student.objects.for_institution(institution).filter(pk__in=list(values)).only("pk", "features"):
        new = values[student.pk]
        diff = {f"features.{key}": [student.features.get(key), value] for key, value in new.items()
                if student.features.get(key) != value}
        if not diff:
            continue
        student.features = {**student.features, **new}
        student.updated_at = timezone.now()
        changed_students.append(student)
        changes.append(StudentChange(institution=institution, student=student, source=ChangeSource.SYSTEM, job=job,
                                     changes=diff))
    Student.objects.for_institution(institution).bulk_update(changed_students, ["features", "updated_at"],
                                                              batch_size=1000)
    StudentChange.objects.for_institution(institution).bulk_create(changes, batch_size=1000)
    return {"students": len(values), "changed": len(changed_students)}


def activity_job_run(*, institution: Institution, job: Job) -> None:
    """The ``activity`` job: recompute the derived features with the term in ``job.params``."""
    job_mark_running(job, total=1, stage="computing activity features")
    params = job.params
    try:
        counts = activity_features_recompute(
            institution=institution, term_start=date.fromisoformat(params["term_start"]),
            term_end=date.fromisoformat(params["term_end"]),
            as_of=datetime.fromisoformat(params["as_of"]) if params.get("as_of") else None, job=job,
        )
    except (KeyError, ValueError) as exc:
        job_fail(job, error=f"Could not compute activity features: {exc}")
        return
    job_succeed(job, counts=counts)
