"""The whole loop through the alerts code itself (interventions.alerts): a member raises an alert,
it is routed to the student's advisor (notified), referred to an office (each member notified),
closed (the raiser notified), each notification leading to the alert's page in its institution."""

from __future__ import annotations

import pytest
from django.urls import reverse

from institutions.models import Membership
from institutions.scoping import institution_scope
from interventions import alerts
from workspace.models import Notification, NotificationKind

from .notification_world import concern, member, office_with

pytestmark = pytest.mark.django_db


def kinds(institution, user):
    return [n.kind for n in Notification.objects.for_institution(institution).filter(user=user).order_by("id")]


def test_raise_route_refer_and_close_notify_the_right_people_in_one_institution(
        client, tenants, django_capture_on_commit_callbacks):
    a, b = tenants
    tutor = member(a.institution, "alpha-tutor")
    office = office_with(a.institution, "Tutoring", [tutor])
    student = a.students[0]
    with institution_scope(a.institution):
        admin_membership = Membership.objects.get(user=a.admin)
        with django_capture_on_commit_callbacks(execute=True):
            alert = alerts.alert_raise_by_staff(institution=a.institution, student=student,
                                                concern_type_id=concern(a.institution).pk,
                                                comment="Missed the last three labs.", user=a.admin)
        assert alert.assigned_user_id == a.advisor.pk  # no rule: the student's advisor
        assert kinds(a.institution, a.advisor) == [NotificationKind.ALERT_ROUTED]
        advisor_membership = Membership.objects.get(user=a.advisor)
        with django_capture_on_commit_callbacks(execute=True):
            alerts.alert_refer(institution=a.institution, alert=alert, user=a.advisor,
                               membership=advisor_membership, to_office_id=office.pk, note="Tutoring can help.")
        assert kinds(a.institution, tutor) == [NotificationKind.ALERT_REFERRED]
        alert.refresh_from_db()
        with django_capture_on_commit_callbacks(execute=True):
            alerts.alert_close(institution=a.institution, alert=alert, user=a.admin, membership=admin_membership,
                               outcome="support_arranged", notes="Booked weekly tutoring.")
    assert kinds(a.institution, a.admin) == []  # the raiser closed it themselves: nothing to tell
    assert Notification.objects.for_institution(b.institution).count() == 0
    for note in Notification.objects.for_institution(a.institution):
        assert note.url == reverse("alert-detail", args=["alpha", alert.pk])
        assert student.name not in note.title and "Booked weekly tutoring" not in note.title
    client.force_login(tutor)
    opened = client.get(reverse("notification-open", args=["alpha", Notification.objects.for_institution(
        a.institution).get(user=tutor).pk]), follow=True)
    assert opened.status_code == 200 and opened.redirect_chain[-1][0] == reverse("alert-detail",
                                                                                 args=["alpha", alert.pk])


def test_closing_tells_the_raiser_when_someone_else_closes_it(tenants, django_capture_on_commit_callbacks):
    a, _b = tenants
    with institution_scope(a.institution):
        with django_capture_on_commit_callbacks(execute=True):
            alert = alerts.alert_raise_by_staff(institution=a.institution, student=a.students[1],
                                                concern_type_id=concern(a.institution).pk,
                                                comment="Has not logged in for two weeks.", user=a.admin)
        with django_capture_on_commit_callbacks(execute=True):
            alerts.alert_close(institution=a.institution, alert=alert, user=a.advisor,
                               membership=Membership.objects.get(user=a.advisor), outcome="resolved")
    [note] = Notification.objects.for_institution(a.institution).filter(user=a.admin)
    assert note.kind == NotificationKind.ALERT_CLOSED and "Resolved" in note.title
