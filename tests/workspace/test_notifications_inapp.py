"""In-app notifications: an alert routed or referred to someone (each member of an office) and an
alert someone raised being closed reach exactly those people, in that institution only; the bell,
the notifications page, opening one and marking all read; a member of two institutions sees each
institution's notifications only under it; erasing a student removes theirs."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from institutions.models import Role
from institutions.scoping import institution_scope
from interventions.models import AlertEventKind
from privacy.erasure import student_erase
from tests.factories import MembershipFactory
from workspace.models import Notification, NotificationKind

from .notification_world import close_alert, member, office_with, route_alert

pytestmark = pytest.mark.django_db


def notes_of(institution, user):
    return list(Notification.objects.for_institution(institution).filter(user=user).order_by("id"))


def test_alert_routed_to_an_advisor_notifies_them_without_the_students_name(tenants):
    a, b = tenants
    student = a.students[0]
    alert = route_alert(a.institution, student, to_user=a.advisor, raised_by=a.admin)
    [note] = notes_of(a.institution, a.advisor)
    assert note.kind == NotificationKind.ALERT_ROUTED and note.alert_id == alert.pk
    assert student.external_id in note.title and student.name not in note.title
    assert note.url.startswith("/i/alpha/") and note.read_at is None
    # Nobody else, and nothing in B (whose advisor has the same username pattern and external ids).
    assert Notification.objects.for_institution(a.institution).count() == 1
    assert Notification.objects.for_institution(b.institution).count() == 0


def test_alert_routed_to_an_office_notifies_each_member_but_not_whoever_routed_it(tenants):
    a, _b = tenants
    tutor = member(a.institution, "alpha-tutor")
    office = office_with(a.institution, "Tutoring", [a.advisor, tutor, a.admin])
    route_alert(a.institution, a.students[1], to_office=office, actor=a.admin)
    assert [n.kind for n in notes_of(a.institution, a.advisor)] == [NotificationKind.ALERT_ROUTED]
    assert len(notes_of(a.institution, tutor)) == 1
    assert notes_of(a.institution, a.admin) == []  # the admin routed it themselves
    assert "Tutoring" in notes_of(a.institution, tutor)[0].title


def test_referral_is_its_own_kind(tenants):
    a, _b = tenants
    route_alert(a.institution, a.students[0], to_user=a.advisor, actor=a.admin, kind=AlertEventKind.REFERRED)
    [note] = notes_of(a.institution, a.advisor)
    assert note.kind == NotificationKind.ALERT_REFERRED and note.title.startswith("Alert referred to you")


def test_a_user_not_a_member_of_the_alerts_institution_is_never_notified(tenants):
    a, b = tenants
    # B's advisor handed over as an assignee of A's alert (a bug elsewhere): no notification in A for them.
    route_alert(a.institution, a.students[0], to_user=b.advisor)
    assert Notification.objects.for_institution(a.institution).count() == 0
    assert Notification.objects.for_institution(b.institution).count() == 0


def test_closing_an_alert_tells_the_member_who_raised_it_unless_they_closed_it_themselves(tenants):
    a, _b = tenants
    alert = route_alert(a.institution, a.students[0], to_user=a.advisor, raised_by=a.admin)
    close_alert(a.institution, alert, by=a.advisor, outcome="support_arranged")
    [note] = notes_of(a.institution, a.admin)
    assert note.kind == NotificationKind.ALERT_CLOSED and "Support arranged" in note.title
    assert a.students[0].name not in note.title
    own = route_alert(a.institution, a.students[1], to_user=a.advisor, raised_by=a.advisor, actor=a.advisor)
    close_alert(a.institution, own, by=a.advisor)
    assert [n.kind for n in notes_of(a.institution, a.advisor)] == [NotificationKind.ALERT_ROUTED]


def test_an_alert_raised_by_an_instructor_tells_no_member_when_closed(tenants):
    a, _b = tenants
    alert = route_alert(a.institution, a.students[0], to_user=a.advisor)  # no raised_by_user
    close_alert(a.institution, alert, by=a.advisor)
    assert [n.kind for n in notes_of(a.institution, a.advisor)] == [NotificationKind.ALERT_ROUTED]


def _bell(response) -> str:
    return response.content.decode().split('id="notification-bell"', 1)[1].split("</a>", 1)[0]


def test_bell_shows_the_unread_count_of_this_member_in_this_institution_in_one_query(client, tenants):
    a, _b = tenants
    route_alert(a.institution, a.students[0], to_user=a.advisor)
    route_alert(a.institution, a.students[1], to_user=a.advisor)
    route_alert(a.institution, a.students[2], to_user=a.admin)
    client.force_login(a.advisor)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("caseload", args=["alpha"]))
    assert '<span class="badge text-bg-danger">2<span class="visually-hidden"> unread</span>' in _bell(response)
    assert len([q for q in queries if "workspace_notification" in q["sql"]]) == 1
    client.force_login(a.viewer)  # the viewer has none: no count shown
    assert "badge" not in _bell(client.get(reverse("dashboard", args=["alpha"])))


def test_member_of_two_institutions_sees_each_institutions_notifications_only_under_it(client, tenants):
    a, b = tenants
    MembershipFactory(institution=b.institution, user=a.advisor, role=Role.ADVISOR)
    in_a = route_alert(a.institution, a.students[0], to_user=a.advisor)
    route_alert(b.institution, b.students[0], to_user=a.advisor)
    route_alert(b.institution, b.students[1], to_user=a.advisor)
    client.force_login(a.advisor)
    page_a = client.get(reverse("notification-list", args=["alpha"]))
    page_b = client.get(reverse("notification-list", args=["beta"]))
    assert ">1<span" in _bell(page_a) and ">2<span" in _bell(page_b)
    assert page_a.context["notifications"][0].alert_id == in_a.pk and len(page_a.context["notifications"]) == 1
    assert {n.institution_id for n in page_b.context["notifications"]} == {b.institution.pk}
    # A's notification opened under B's address is a 404, and marks nothing read.
    a_note = notes_of(a.institution, a.advisor)[0]
    assert client.get(reverse("notification-open", args=["beta", a_note.pk])).status_code == 404
    a_note.refresh_from_db()
    assert a_note.read_at is None
    # Every link on each page stays inside its institution.
    body_b = page_b.content.decode()
    for note in notes_of(b.institution, a.advisor):
        assert reverse("notification-open", args=["beta", note.pk]) in body_b
        assert note.url.startswith("/i/beta/")
    # Marking all read under B leaves A's unread.
    client.post(reverse("notification-read-all", args=["beta"]))
    assert all(n.read_at for n in notes_of(b.institution, a.advisor))
    assert all(n.read_at is None for n in notes_of(a.institution, a.advisor))


def test_opening_a_notification_marks_it_read_and_leads_inside_the_institution(client, tenants):
    a, _b = tenants
    route_alert(a.institution, a.students[0], to_user=a.advisor)
    [note] = notes_of(a.institution, a.advisor)
    client.force_login(a.advisor)
    response = client.get(reverse("notification-open", args=["alpha", note.pk]))
    assert response.status_code == 302 and response["Location"] == note.url
    note.refresh_from_db()
    assert note.read_at is not None
    unread = client.get(reverse("notification-list", args=["alpha"]) + "?unread=1")
    assert list(unread.context["notifications"]) == [] and "Nothing unread" in unread.content.decode()


def test_another_members_notification_is_a_404_and_stays_unread(client, tenants):
    a, b = tenants
    route_alert(a.institution, a.students[0], to_user=a.admin)
    route_alert(b.institution, b.students[0], to_user=b.advisor)
    theirs = notes_of(a.institution, a.admin)[0]
    b_note = notes_of(b.institution, b.advisor)[0]
    client.force_login(a.advisor)
    for slug, note in (("alpha", theirs), ("alpha", b_note), ("beta", b_note)):
        assert client.get(reverse("notification-open", args=[slug, note.pk])).status_code == 404
    for pk in ("0", "99999999999999999999"):
        assert client.get(f"/i/alpha/notifications/{pk}/").status_code == 404
    theirs.refresh_from_db()
    b_note.refresh_from_db()
    assert theirs.read_at is None and b_note.read_at is None
    # B's pages are a 404 for A's advisor, whatever the page.
    for name in ("notification-list", "notification-preferences"):
        assert client.get(reverse(name, args=["beta"])).status_code == 404
    assert client.post(reverse("notification-read-all", args=["beta"])).status_code == 404


def test_mark_all_read_marks_only_the_members_own_and_says_how_many(client, tenants):
    a, _b = tenants
    route_alert(a.institution, a.students[0], to_user=a.advisor)
    route_alert(a.institution, a.students[1], to_user=a.advisor)
    route_alert(a.institution, a.students[2], to_user=a.admin)
    client.force_login(a.advisor)
    response = client.post(reverse("notification-read-all", args=["alpha"]), follow=True)
    assert "2 notifications marked read." in response.content.decode()
    assert all(n.read_at for n in notes_of(a.institution, a.advisor))
    assert all(n.read_at is None for n in notes_of(a.institution, a.admin))
    assert client.get(reverse("notification-read-all", args=["alpha"])).status_code == 405


def test_signed_out_visitor_is_sent_to_log_in(client, tenants):
    response = client.get(reverse("notification-list", args=["alpha"]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_erasing_a_student_removes_their_notifications(tenants):
    a, b = tenants
    route_alert(a.institution, a.students[0], to_user=a.advisor)
    route_alert(a.institution, a.students[1], to_user=a.advisor)
    route_alert(b.institution, b.students[0], to_user=b.advisor)  # same external id in B: untouched
    with institution_scope(a.institution):
        student_erase(institution=a.institution, student=a.students[0],
                      confirm_external_id=a.students[0].external_id, erased_by=a.admin)
    assert [n.student_id for n in notes_of(a.institution, a.advisor)] == [a.students[1].pk]
    assert len(notes_of(b.institution, b.advisor)) == 1
