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


def digest_world(tenant, *, users: int, students: int, now, prefix: str = "adv"):
    """``users`` advisors of ``tenant``, each with ``students`` students of their own: some flagged by
    the model since their last digest (a day ago), a staff flag raised since and one before, an
    alert to them and one to their shared office, follow-ups overdue, due today and not yet due."""
    import datetime

    from interventions.models import Flag, FlagSource, Intervention, InterventionStatus, RiskSnapshot
    from students.models import Student
    from tests.factories import InterventionTypeFactory, StudentFactory
    from workspace.models import NotificationPreference

    institution = tenant.institution
    day = datetime.timedelta(days=1)
    advisors = [member(institution, f"{institution.slug}-{prefix}{i}") for i in range(users)]
    with institution_scope(institution):
        rows = [StudentFactory.build(institution=institution, external_id=f"{prefix.upper()}{i:02d}-{j:03d}",
                                     advisor=advisor)
                for i, advisor in enumerate(advisors) for j in range(students)]
        created = Student.objects.bulk_create(rows)
        by_advisor = {a.pk: [s for s in created if s.advisor_id == a.pk] for a in advisors}
        half = {a.pk: by_advisor[a.pk][: max(1, students // 2)] for a in advisors}
        before = [s.pk for a in advisors for s in by_advisor[a.pk][: max(1, students // 5)]]
        RiskSnapshot.objects.create(institution=institution, taken_at=now - 2 * day, flagged_student_ids=before)
        RiskSnapshot.objects.create(institution=institution, taken_at=now - datetime.timedelta(hours=1),
                                    flagged_student_ids=[s.pk for a in advisors for s in half[a.pk]])
        office = office_with(institution, f"Office of {prefix}", advisors)
        kind = InterventionTypeFactory(institution=institution, key=f"call-{prefix}", label="Phone call")
        for advisor in advisors:
            mine = by_advisor[advisor.pk]
            NotificationPreference.objects.create(institution=institution, user=advisor, last_digest_at=now - day)
            new_flag = Flag.objects.create(institution=institution, student=mine[-1], source=FlagSource.MANUAL,
                                           reason="Missed three labs", raised_by=tenant.admin)
            old_flag = Flag.objects.create(institution=institution, student=mine[-2 % len(mine)],
                                           source=FlagSource.MANUAL, reason="Old", raised_by=tenant.admin)
            Flag.objects.filter(pk=new_flag.pk).update(raised_at=now - datetime.timedelta(hours=2))
            Flag.objects.filter(pk=old_flag.pk).update(raised_at=now - 3 * day)
            route_alert(institution, mine[0], to_user=advisor)
            route_alert(institution, mine[-1], to_office=office)
            closed = route_alert(institution, mine[0], to_user=advisor)
            Alert.objects.filter(pk=closed.pk).update(status="closed")
            for due, status in ((now.date() - day, InterventionStatus.OPEN), (now.date(), InterventionStatus.OPEN),
                                (now.date() + day, InterventionStatus.OPEN),
                                (now.date() - day, InterventionStatus.CLOSED)):
                Intervention.objects.create(institution=institution, student=mine[0], intervention_type=kind,
                                            date=now.date() - 3 * day, follow_up_date=due, status=status,
                                            author=advisor, notes="Private: worried about the rent.")
    return advisors, by_advisor
