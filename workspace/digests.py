"""The email digest: per member, per institution, each morning (daily) or Monday morning (weekly).

What one digest holds, for one member of one institution:

- **newly flagged** students of their caseload since their last digest: flagged by the model in the
  latest scoring run but not in the run that was the latest when their last digest went out (the
  dashboard's "newly flagged", measured from the member's own last digest), and staff flags
  raised since then and still open;
- **open alerts** routed to them or to an office they belong to;
- **follow-ups** due today or overdue on open interventions they logged or of students in their
  caseload.

Only counts, external ids, names and links into the institution: never notes, feature values or
risk explanations. An empty digest is not sent. A run builds every recipient's digest with one
query per kind (not per member, not per student): :func:`digests_build`.

Idempotent: a member's preference row keeps ``last_digest_at``; a run takes (``FOR UPDATE SKIP
LOCKED``) only the rows whose last digest is older than today's local midnight, sets it, and sends
after its transaction commits, so two runs on the same day (or at the same time) send one digest.
The beat entry (``dispatch-digests``, every half hour) queues one run per institution whose local
time is in the morning window.
"""

from __future__ import annotations

import datetime
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import timezone, translation
from django.utils.translation import gettext, gettext_noop, ngettext

from accounts.language import recipient_languages
from institutions.models import Institution, Membership
from interventions.models import (
    Alert,
    AlertStatus,
    Flag,
    FlagSource,
    Intervention,
    InterventionStatus,
    OfficeMember,
    RiskSnapshot,
    StudentAccessGrant,
)
from students.models import EnrolmentStatus, Outcome, Student

from .models import DigestFrequency, NotificationPreference

logger = logging.getLogger(__name__)

# Digests go out in the institution's morning: from this local hour until the window's end. A
# worker that is down the whole morning skips that day; the next digest covers the gap (what is
# "new" is measured from the last digest sent, not from yesterday).
DIGEST_LOCAL_HOUR = 7
DIGEST_WINDOW_HOURS = 5
# Lines shown per section; the counts are always whole.
SECTION_LINES = 25
# In English here; the email translates them into its recipient's language.
FLAGGED_BY_MODEL = gettext_noop("flagged by the risk model")
FLAGGED_BY_STAFF = gettext_noop("flagged by staff")


@dataclass(frozen=True)
class StudentLine:
    student_id: int
    external_id: str
    name: str
    detail: str = ""


@dataclass(frozen=True)
class AlertLine:
    alert_id: int
    student_id: int
    external_id: str
    name: str
    concern: str
    status: str
    office: str = ""


@dataclass(frozen=True)
class FollowUpLine:
    intervention_id: int
    student_id: int
    external_id: str
    name: str
    kind: str
    due: datetime.date


@dataclass
class Recipient:
    user_id: int
    email: str
    name: str
    since: datetime.datetime | None
    frequency: str
    # Need-to-know applies to them: follow-ups of students they no longer see are left out.
    restricted: bool = False
    # Their email's language (accounts.language.recipient_language).
    language: str = settings.LANGUAGE_CODE


@dataclass
class Digest:
    recipient: Recipient
    newly_flagged: list[StudentLine] = field(default_factory=list)
    alerts: list[AlertLine] = field(default_factory=list)
    follow_ups: list[FollowUpLine] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not (self.newly_flagged or self.alerts or self.follow_ups)


def local_now(institution: Institution, now: datetime.datetime | None = None) -> datetime.datetime:
    return (now or timezone.now()).astimezone(ZoneInfo(institution.timezone))


def in_morning_window(institution: Institution, now: datetime.datetime | None = None) -> bool:
    hour = local_now(institution, now).hour
    return DIGEST_LOCAL_HOUR <= hour < DIGEST_LOCAL_HOUR + DIGEST_WINDOW_HOURS


def _local_midnight(institution: Institution, now: datetime.datetime) -> datetime.datetime:
    local = local_now(institution, now)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def _frequencies_due(institution: Institution, now: datetime.datetime) -> list[str]:
    """Daily every day; weekly on the institution's Mondays."""
    if local_now(institution, now).weekday() == 0:
        return [DigestFrequency.DAILY, DigestFrequency.WEEKLY]
    return [DigestFrequency.DAILY]


def _default_since(frequency: str, now: datetime.datetime) -> datetime.datetime:
    """A first digest looks back one period."""
    return now - datetime.timedelta(days=7 if frequency == DigestFrequency.WEEKLY else 1)


# --- who gets one ------------------------------------------------------------------------------

def digest_recipients_claim(*, institution: Institution, now: datetime.datetime) -> list[Recipient]:
    """The members due a digest now, their preference rows locked (call inside a transaction).

    Members who see students (administrators, advisors) with an email address; a member who never
    chose gets the default (daily), recorded as a row so that ``last_digest_at`` can be kept."""
    members = [
        m for m in Membership.objects.for_institution(institution).select_related("user").filter(
            user__is_active=True).exclude(user__email="")
        if m.can("view_students")
    ]
    if not members:
        return []
    NotificationPreference.objects.for_institution(institution).bulk_create(
        [NotificationPreference(institution=institution, user_id=m.user_id) for m in members],
        ignore_conflicts=True,
    )
    by_user = {m.user_id: m for m in members}
    due = (
        NotificationPreference.objects.for_institution(institution)
        .filter(user_id__in=list(by_user), digest__in=_frequencies_due(institution, now))
        .filter(Q(last_digest_at__isnull=True) | Q(last_digest_at__lt=_local_midnight(institution, now)))
        .select_for_update(skip_locked=True).order_by("user_id")
    )
    restricted_roles = institution.need_to_know_access
    due = list(due)
    languages = recipient_languages(institution=institution, user_ids=[p.user_id for p in due])
    recipients = []
    for preference in due:
        membership = by_user[preference.user_id]
        user = membership.user
        recipients.append(Recipient(
            user_id=user.pk, email=user.email, name=user.get_full_name() or user.username,
            since=preference.last_digest_at, frequency=preference.digest,
            restricted=restricted_roles and not membership.can("view_all_students"),
            language=languages[user.pk],
        ))
    return recipients


# --- what is in them: one query per kind for every recipient of the run ------------------------

def _since(recipient: Recipient, now: datetime.datetime) -> datetime.datetime:
    return recipient.since or _default_since(recipient.frequency, now)


def _newly_flagged(institution: Institution, recipients: list[Recipient], now: datetime.datetime
                   ) -> dict[int, list[StudentLine]]:
    """Model flags new since each recipient's last digest (run snapshots) and open staff flags raised
    since then, on students of their caseload: three queries, whatever the number of recipients."""
    ids = [r.user_id for r in recipients]
    runs = list(RiskSnapshot.objects.for_institution(institution).filter(taken_at__lte=now)
                .order_by("-taken_at", "-id").values_list("id", "taken_at"))
    new_by_user: dict[int, set[int]] = {}
    if runs:
        latest_id, latest_at = runs[0]
        baseline_of: dict[int, int | None] = {}
        for r in recipients:
            since = _since(r, now)
            if latest_at <= since:
                continue  # no run since their last digest: nothing newly flagged by the model
            # The run that was the latest when their last digest went out (none: all are new).
            baseline_of[r.user_id] = next((sid for sid, at in runs[1:] if at <= since), None)
        wanted = {latest_id} | {sid for sid in baseline_of.values() if sid is not None}
        flagged = dict(RiskSnapshot.objects.for_institution(institution).filter(pk__in=wanted)
                       .values_list("id", "flagged_student_ids")) if baseline_of else {}
        latest = set(flagged.get(latest_id, []))
        for uid, baseline in baseline_of.items():
            new_by_user[uid] = latest - set(flagged.get(baseline, []) if baseline is not None else [])
    union = set().union(*new_by_user.values()) if new_by_user else set()
    earliest = min(_since(r, now) for r in recipients)
    current = Q(student__outcome=Outcome.ENROLLED) & ~Q(student__status=EnrolmentStatus.INACTIVE)
    rows = (
        Flag.objects.for_institution(institution)
        .filter(current, student__advisor_id__in=ids, resolved_at__isnull=True, source=FlagSource.MANUAL,
                raised_at__gt=earliest)
        .values_list("student_id", "student__external_id", "student__name", "student__advisor_id", "raised_at")
    )
    staff: dict[int, dict[int, tuple]] = defaultdict(dict)
    since_of = {r.user_id: _since(r, now) for r in recipients}
    for student_id, external_id, name, advisor_id, raised_at in rows:
        if raised_at > since_of[advisor_id]:
            staff[advisor_id].setdefault(student_id, (external_id, name))
    out: dict[int, list[StudentLine]] = defaultdict(list)
    if union:
        model_rows = (
            Student.objects.for_institution(institution)
            .filter(outcome=Outcome.ENROLLED, advisor_id__in=ids, pk__in=union)
            .exclude(status=EnrolmentStatus.INACTIVE).order_by("external_id")
            .values_list("pk", "external_id", "name", "advisor_id")
        )
        for pk, external_id, name, advisor_id in model_rows:
            if pk in new_by_user.get(advisor_id, ()):
                out[advisor_id].append(StudentLine(pk, external_id, name, FLAGGED_BY_MODEL))
                staff[advisor_id].pop(pk, None)
    for advisor_id, students in staff.items():
        for pk, (external_id, name) in sorted(students.items(), key=lambda item: item[1][0]):
            out[advisor_id].append(StudentLine(pk, external_id, name, FLAGGED_BY_STAFF))
    return out


def _open_alerts(institution: Institution, recipients: list[Recipient]) -> dict[int, list[AlertLine]]:
    """Open alerts routed to each recipient or to one of their offices: two queries."""
    ids = [r.user_id for r in recipients]
    offices: dict[int, list[int]] = defaultdict(list)
    for office_id, user_id in OfficeMember.objects.for_institution(institution).filter(
            user_id__in=ids, office__is_active=True).values_list("office_id", "user_id"):
        offices[office_id].append(user_id)
    rows = (
        Alert.objects.for_institution(institution).exclude(status=AlertStatus.CLOSED)
        .filter(Q(assigned_user_id__in=ids) | Q(assigned_office_id__in=list(offices)))
        .order_by("created_at", "id")
        .values_list("id", "student_id", "student__external_id", "student__name", "concern_type__label", "status",
                     "assigned_user_id", "assigned_office_id", "assigned_office__name")
    )
    labels = dict(AlertStatus.choices)
    out: dict[int, list[AlertLine]] = defaultdict(list)
    for pk, student_id, external_id, name, concern, status, user_id, office_id, office_name in rows:
        to = set(offices.get(office_id, ())) if office_id else set()
        if user_id in ids:
            to.add(user_id)
        for uid in to:
            out[uid].append(AlertLine(pk, student_id, external_id, name, concern, labels.get(status, status),
                                      (office_name or "") if uid != user_id else ""))
    return out


def _follow_ups(institution: Institution, recipients: list[Recipient], today: datetime.date,
                now: datetime.datetime) -> dict[int, list[FollowUpLine]]:
    """Follow-ups due today or overdue on open interventions each recipient logged or of students in
    their caseload: one query. Under need-to-know, an author who no longer sees the student (not in
    their caseload, no grant, no flag routed to them) is not told about it."""
    ids = [r.user_id for r in recipients]
    grant = StudentAccessGrant.objects.for_institution(institution).filter(
        user_id=OuterRef("author_id"), student_id=OuterRef("student_id"), revoked_at__isnull=True,
    ).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
    routed = Flag.objects.for_institution(institution).filter(
        assigned_to_id=OuterRef("author_id"), student_id=OuterRef("student_id"), resolved_at__isnull=True)
    rows = (
        Intervention.objects.for_institution(institution)
        .filter(status=InterventionStatus.OPEN, follow_up_date__lte=today)
        .filter(Q(author_id__in=ids) | Q(student__advisor_id__in=ids))
        .annotate(author_granted=Exists(grant) | Exists(routed))
        .order_by("follow_up_date", "id")
        .values_list("id", "student_id", "student__external_id", "student__name", "intervention_type__label",
                     "follow_up_date", "author_id", "student__advisor_id", "author_granted")
    )
    restricted = {r.user_id for r in recipients if r.restricted}
    out: dict[int, list[FollowUpLine]] = defaultdict(list)
    for pk, student_id, external_id, name, kind, due, author_id, advisor_id, author_granted in rows:
        line = FollowUpLine(pk, student_id, external_id, name, kind, due)
        to = {advisor_id} & set(ids)
        if author_id in ids and (author_id not in restricted or author_granted or author_id == advisor_id):
            to.add(author_id)
        for uid in to:
            out[uid].append(line)
    return out


def digests_build(*, institution: Institution, recipients: list[Recipient], now: datetime.datetime | None = None
                  ) -> list[Digest]:
    """Every recipient's digest, in a fixed number of queries (one per kind, whatever their number)."""
    if not recipients:
        return []
    now = now or timezone.now()
    today = local_now(institution, now).date()
    flagged = _newly_flagged(institution, recipients, now)
    alerts = _open_alerts(institution, recipients)
    follow_ups = _follow_ups(institution, recipients, today, now)
    return [Digest(r, flagged.get(r.user_id, []), alerts.get(r.user_id, []), follow_ups.get(r.user_id, []))
            for r in recipients]


# --- the email ----------------------------------------------------------------------------------

def _absolute(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path


def digest_email(*, institution: Institution, digest: Digest, today: datetime.date) -> EmailMessage:
    """The digest in its recipient's language, with links into ``institution`` only."""
    with translation.override(digest.recipient.language):
        return _digest_email(institution, digest, today)


def _digest_counts(digest: Digest) -> str:
    counts = []
    if digest.newly_flagged:
        n = len(digest.newly_flagged)
        counts.append(ngettext("%(count)s newly flagged", "%(count)s newly flagged", n) % {"count": n})
    if digest.alerts:
        n = len(digest.alerts)
        counts.append(ngettext("%(count)s open alert", "%(count)s open alerts", n) % {"count": n})
    if digest.follow_ups:
        n = len(digest.follow_ups)
        counts.append(ngettext("%(count)s follow-up due", "%(count)s follow-ups due", n) % {"count": n})
    return ", ".join(counts)


def _digest_email(institution: Institution, digest: Digest, today: datetime.date) -> EmailMessage:
    slug = institution.slug

    def student(pk: int) -> str:
        return _absolute(reverse("student-detail", args=[slug, pk]))

    def alert_link(line: AlertLine) -> str:
        return _absolute(_alert_path(slug, line))

    preferences = _absolute(reverse("notification-preferences", args=[slug]))
    weekly = digest.recipient.frequency == DigestFrequency.WEEKLY
    context = {
        "institution": institution, "recipient": digest.recipient, "today": today,
        "newly_flagged": [(line, student(line.student_id)) for line in digest.newly_flagged[:SECTION_LINES]],
        "newly_flagged_more": max(0, len(digest.newly_flagged) - SECTION_LINES),
        "newly_flagged_count": len(digest.newly_flagged),
        "alerts": [(line, alert_link(line)) for line in digest.alerts[:SECTION_LINES]],
        "alerts_more": max(0, len(digest.alerts) - SECTION_LINES), "alerts_count": len(digest.alerts),
        "follow_ups": [(line, student(line.student_id), line.due < today)
                       for line in digest.follow_ups[:SECTION_LINES]],
        "follow_ups_more": max(0, len(digest.follow_ups) - SECTION_LINES), "follow_ups_count": len(digest.follow_ups),
        "caseload_url": _absolute(reverse("caseload", args=[slug])),
        "notifications_url": _absolute(reverse("notification-list", args=[slug])),
        "preferences_url": preferences,
        "weekly": weekly,
    }
    body = render_to_string("workspace/digest_email.txt", context)
    values = {"institution": institution.name, "counts": _digest_counts(digest)}
    if weekly:
        subject = gettext("%(institution)s: your weekly digest (%(counts)s)") % values
    else:
        subject = gettext("%(institution)s: your daily digest (%(counts)s)") % values
    return EmailMessage(subject=subject, body=body, to=[digest.recipient.email],
                        headers={"List-Unsubscribe": f"<{preferences}>"})


def _alert_path(slug: str, line: AlertLine) -> str:
    try:
        return reverse("alert-detail", args=[slug, line.alert_id])
    except NoReverseMatch:  # the alert pages are not installed: the student's profile shows the alerts
        return reverse("student-detail", args=[slug, line.student_id])


# --- a run ----------------------------------------------------------------------------------------

def digests_send(*, institution: Institution, now: datetime.datetime | None = None) -> dict[str, int]:
    """Send the digests due now in ``institution`` (call in its scope); how many were sent and skipped.

    Claims the due members' rows, builds every digest, records ``last_digest_at`` and, once that is
    committed, hands the non-empty ones to the email backend (queued for the worker)."""
    now = now or timezone.now()
    today = local_now(institution, now).date()
    with transaction.atomic():
        recipients = digest_recipients_claim(institution=institution, now=now)
        digests = digests_build(institution=institution, recipients=recipients, now=now)
        if recipients:
            NotificationPreference.objects.for_institution(institution).filter(
                user_id__in=[r.user_id for r in recipients]).update(last_digest_at=now)
        messages = [digest_email(institution=institution, digest=d, today=today) for d in digests if not d.is_empty]
        if messages:
            transaction.on_commit(lambda: get_connection().send_messages(messages))
    return {"sent": len(messages), "empty": len(digests) - len(messages)}


def digest_dispatch(*, now: datetime.datetime | None = None) -> int:
    """Beat (every half hour): queue a digest run for each institution in its morning window."""
    from .tasks import send_digests

    queued = 0
    for institution in Institution.objects.order_by("pk"):
        if in_morning_window(institution, now):
            # The run is for this moment's morning, however long it waits in the queue.
            send_digests.delay(institution_id=institution.pk, scheduled_for=(now or timezone.now()).isoformat())
            queued += 1
    return queued
