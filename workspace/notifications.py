"""In-app notifications: written when an alert reaches someone or an alert someone raised is closed,
read in the bell menu and on the notifications page, marked read by their owner only.

The receivers react to ``interventions.signals`` (connected in :mod:`workspace.apps`), which the
alerts code sends after its transaction commits, inside the institution's scope. A notification's
title never carries a student's name (it may be read over a shoulder and outlives the page that
caused it): it names the kind, the concern and the student's external id. Its link always stays
inside the institution that wrote it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from institutions.access import id_from_input
from institutions.models import Institution, Membership, Role
from interventions.models import Alert, AlertEventKind

from .models import DigestFrequency, Notification, NotificationKind, NotificationPreference

logger = logging.getLogger(__name__)

TITLE_LENGTH = Notification._meta.get_field("title").max_length


class NotificationNotFound(Exception):
    """The id names no notification of this member in this institution (another's looks the same)."""


def alert_url(*, institution: Institution, alert: Alert) -> str:
    """The alert's page in its institution; the student's profile where the alert pages are not installed."""
    try:
        return reverse("alert-detail", args=[institution.slug, alert.pk])
    except NoReverseMatch:
        return reverse("student-detail", args=[institution.slug, alert.student_id])


def _alert_subject(alert: Alert) -> str:
    # The concern and the student's external id: never the name.
    return f"{alert.concern_type.label} for student {alert.student.external_id}"


def _member_ids(*, institution: Institution, user_ids: Iterable[int]) -> list[int]:
    """The ids among ``user_ids`` of active members of ``institution``, in the given order, once each."""
    wanted = list(dict.fromkeys(uid for uid in user_ids if uid is not None))
    if not wanted:
        return []
    members = set(Membership.objects.for_institution(institution).filter(
        user_id__in=wanted, user__is_active=True).values_list("user_id", flat=True))
    return [uid for uid in wanted if uid in members]


def notifications_create(*, institution: Institution, user_ids: Iterable[int], kind: str, title: str, url: str,
                         student_id: int | None = None, alert_id: int | None = None) -> list[Notification]:
    """One notification per member among ``user_ids`` (others are skipped: a notification lives
    in the institution it names, for its members only)."""
    if not url.startswith(f"/i/{institution.slug}/"):
        raise ValueError("a notification leads only to a page of its own institution")
    rows = [
        Notification(institution=institution, user_id=uid, kind=kind, title=title[:TITLE_LENGTH], url=url,
                     student_id=student_id, alert_id=alert_id)
        for uid in _member_ids(institution=institution, user_ids=user_ids)
    ]
    return Notification.objects.for_institution(institution).bulk_create(rows)


def _user_id(user) -> int | None:
    return getattr(user, "pk", user)


def notify_alert_assigned(sender=None, *, institution: Institution, alert: Alert, users, event, **kwargs) -> None:
    """``interventions.signals.alert_assigned`` receiver: tell each new assignee (every member of an
    office) that the alert is theirs now; whoever routed or referred it does not notify themselves."""
    referred = getattr(event, "kind", "") == AlertEventKind.REFERRED
    kind = NotificationKind.ALERT_REFERRED if referred else NotificationKind.ALERT_ROUTED
    actor_id = getattr(event, "actor_id", None)
    user_ids = [uid for uid in (_user_id(user) for user in users) if uid != actor_id]
    verb = "referred" if referred else "routed"
    office = alert.assigned_office.name if alert.assigned_office_id else ""
    title = f"Alert {verb} to {'your office ' + office if office else 'you'}: {_alert_subject(alert)}"
    notifications_create(institution=institution, user_ids=user_ids, kind=kind, title=title,
                         url=alert_url(institution=institution, alert=alert), student_id=alert.student_id,
                         alert_id=alert.pk)


def notify_alert_closed(sender=None, *, institution: Institution, alert: Alert, event=None, **kwargs) -> None:
    """``interventions.signals.alert_closed`` receiver: close the loop for the member who raised it
    (unless they closed it themselves). An instructor who raised it is emailed by interventions."""
    raiser_id = alert.raised_by_user_id
    if raiser_id is None or raiser_id == getattr(event, "actor_id", None):
        return
    outcome = alert.get_outcome_display() if alert.outcome else "closed"
    title = f"Alert you raised was closed ({outcome}): {_alert_subject(alert)}"
    notifications_create(institution=institution, user_ids=[raiser_id], kind=NotificationKind.ALERT_CLOSED,
                         title=title, url=alert_url(institution=institution, alert=alert),
                         student_id=alert.student_id, alert_id=alert.pk)


def _own(institution: Institution, user: AbstractBaseUser) -> QuerySet[Notification]:
    return Notification.objects.for_institution(institution).filter(user_id=user.pk)


def notification_open(*, institution: Institution, user: AbstractBaseUser, notification_id) -> Notification:
    """The member's notification ``notification_id``, marked read (opening it is reading it)."""
    pk = id_from_input(notification_id)
    notification = _own(institution, user).filter(pk=pk).first() if pk is not None else None
    if notification is None:
        raise NotificationNotFound("No such notification.")
    if notification.read_at is None:
        notification.read_at = timezone.now()
        _own(institution, user).filter(pk=notification.pk, read_at__isnull=True).update(read_at=notification.read_at)
    return notification


def notifications_mark_all_read(*, institution: Institution, user: AbstractBaseUser) -> int:
    """Mark every unread notification of the member in this institution read; how many were."""
    return _own(institution, user).filter(read_at__isnull=True).update(read_at=timezone.now())


class PreferenceRefused(Exception):
    """A digest choice that is not one of the offered ones."""


def notification_preference_set(*, institution: Institution, user: AbstractBaseUser, digest: str
                                ) -> NotificationPreference:
    """Store the member's digest choice in this institution (daily, weekly on Mondays, or off)."""
    if digest not in DigestFrequency.values:
        raise PreferenceRefused(f"Choose one of: {', '.join(DigestFrequency.labels)}.")
    preference, _created = NotificationPreference.objects.for_institution(institution).update_or_create(
        institution=institution, user_id=user.pk, defaults={"digest": digest})
    return preference


def notify_model_degraded(sender=None, *, institution: Institution, version, summary: dict, **kwargs) -> None:
    """``predictions.signals.model_degraded`` receiver: every administrator of the institution is
    told, with a link to the model's page (where the realised figures are)."""
    admins = Membership.objects.for_institution(institution).filter(role=Role.ADMIN).values_list("user_id", flat=True)
    auc = (summary.get("roc_auc") or {}).get("value")
    title = (f"Model v{version.number}: realised ROC-AUC {auc:.2f} in {summary.get('period')}, below the floor "
             f"{summary.get('floor'):.2f}")
    notifications_create(institution=institution, user_ids=list(admins), kind=NotificationKind.MODEL_DEGRADED,
                         title=title, url=reverse("model-detail", args=[institution.slug, version.number]))
