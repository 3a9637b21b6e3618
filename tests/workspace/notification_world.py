"""What the notification and digest tests build: alerts made as the alerts code makes them (rows
plus the signals it sends after commit), in two institutions with the same external ids."""

from __future__ import annotations

from courses.models import ConcernType
from institutions.models import Membership, Role
from institutions.scoping import institution_scope
from interventions.models import Alert, AlertEvent, AlertEventKind, AlertSource, Office, OfficeMember
from interventions.signals import alert_assigned, alert_closed
from tests.factories import MembershipFactory, UserFactory


def concern(institution, key="attendance", label="Attendance"):
    found = ConcernType.objects.for_institution(institution).filter(key=key).first()
    return found or ConcernType.objects.for_institution(institution).create(institution=institution, key=key,
                                                                            label=label)


def office_with(institution, name, users):
    office = Office.objects.for_institution(institution).create(institution=institution, name=name)
    for user in users:
        OfficeMember.objects.for_institution(institution).create(institution=institution, office=office, user=user)
    return office


def member(institution, username, role=Role.ADVISOR):
    user = UserFactory(username=username)
    if not Membership.objects.for_institution(institution).filter(user=user).exists():
        MembershipFactory(institution=institution, user=user, role=role)
    return user


def route_alert(institution, student, *, to_user=None, to_office=None, raised_by=None, actor=None,
                kind=AlertEventKind.ROUTED):
    """An alert raised by staff and routed (or referred) as interventions does, then its signal."""
    with institution_scope(institution):
        alert = Alert.objects.create(
            institution=institution, student=student, concern_type=concern(institution), source=AlertSource.STAFF,
            raised_by_user=raised_by, assigned_user=to_user, assigned_office=to_office,
        )
        event = AlertEvent.objects.create(institution=institution, alert=alert, kind=kind, actor=actor,
                                          to_user=to_user, to_office=to_office)
        users = [to_user] if to_user else [m.user for m in OfficeMember.objects.filter(office=to_office)]
        alert_assigned.send(sender=Alert, institution=institution, alert=alert, users=users, event=event)
    return alert


def close_alert(institution, alert, *, by, outcome="resolved"):
    from django.utils import timezone

    with institution_scope(institution):
        alert.status, alert.outcome, alert.closed_at, alert.closed_by = "closed", outcome, timezone.now(), by
        alert.save()
        event = AlertEvent.objects.create(institution=institution, alert=alert, kind=AlertEventKind.CLOSED, actor=by)
        alert_closed.send(sender=Alert, institution=institution, alert=alert, event=event)
    return alert
