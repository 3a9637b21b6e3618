"""Digests delivered: through the configured email backend (queued for the worker) to a real SMTP
server the test starts (aiosmtpd); the beat entry queues a run for each institution in its own
morning only; two runs the same day send one digest; the settings page chooses daily, weekly or
off per institution."""

from __future__ import annotations

import datetime
import re

import pytest
from django.conf import settings
from django.urls import reverse

from dropout_platform.celery import app
from institutions.models import Role
from tests.accounts.test_email_flows import smtp_server  # noqa: F401 - fixture
from tests.factories import MembershipFactory
from workspace import digests
from workspace.models import DigestFrequency, NotificationPreference

from .notification_world import digest_world

pytestmark = pytest.mark.django_db
LISBON_MORNING = datetime.datetime(2026, 12, 2, 8, 0, tzinfo=datetime.UTC)  # 21:00 in Auckland
AUCKLAND_MORNING = datetime.datetime(2026, 12, 2, 19, 0, tzinfo=datetime.UTC)  # 08:00 on the 3rd there


def body_of(message) -> str:
    return message.get_payload(decode=True).decode()


def test_the_beat_entry_runs_a_registered_task():
    entry = settings.CELERY_BEAT_SCHEDULE["dispatch-digests"]
    app.autodiscover_tasks(force=True)  # as a worker and beat do at start-up
    assert entry["task"] in app.tasks and entry["schedule"] <= 60 * 60


def test_each_institution_gets_its_digests_in_its_own_morning_once_over_real_smtp(
        tenants, smtp_server, django_capture_on_commit_callbacks):  # noqa: F811 - the fixture imported above
    a, b = tenants
    b.institution.timezone = "Pacific/Auckland"
    b.institution.save()
    a_advisors, a_students = digest_world(a, users=2, students=4, now=LISBON_MORNING)
    b_advisors, b_students = digest_world(b, users=2, students=4, now=AUCKLAND_MORNING)

    with django_capture_on_commit_callbacks(execute=True):
        assert digests.digest_dispatch(now=LISBON_MORNING) == 1  # Lisbon's morning, Auckland's evening
    delivered = {rcpt for _sender, rcpts, _m in smtp_server.messages for rcpt in rcpts}
    assert delivered == {u.email for u in a_advisors}  # empty digests (admin, the fixture's advisor) not sent
    for _sender, [rcpt], message in smtp_server.messages:
        body = body_of(message)
        assert message["Subject"].startswith("ALPHA University: your daily digest (")
        links = re.findall(r"https?://\S+", body)
        assert links and all("/i/alpha/" in link for link in links)
        user = next(u for u in a_advisors if u.email == rcpt)
        for student in a_students[user.pk][:1]:
            assert f"/i/alpha/students/{student.pk}/" in body
        assert not any(f"/students/{s.pk}/" in body for ss in b_students.values() for s in ss)
        assert "worried about the rent" not in body
        assert message["List-Unsubscribe"] == f"<{settings.SITE_URL}/i/alpha/notifications/preferences/>"

    # A second run the same morning (the next half hour's beat, or a duplicate) sends nothing again.
    with django_capture_on_commit_callbacks(execute=True):
        digests.digest_dispatch(now=LISBON_MORNING + datetime.timedelta(minutes=30))
    assert len(smtp_server.messages) == 2

    # Auckland's morning: B's advisors, and only B's links.
    with django_capture_on_commit_callbacks(execute=True):
        assert digests.digest_dispatch(now=AUCKLAND_MORNING) == 1
    later = smtp_server.messages[2:]
    assert {r for _s, rcpts, _m in later for r in rcpts} == {u.email for u in b_advisors}
    for _s, _r, message in later:
        assert all("/i/beta/" in link for link in re.findall(r"https?://\S+", body_of(message)))
    with digests_scope(b):
        assert all(p.last_digest_at == AUCKLAND_MORNING for p in NotificationPreference.objects.filter(
            user__in=b_advisors))


def digests_scope(tenant):
    from institutions.scoping import institution_scope

    return institution_scope(tenant.institution)


def test_a_member_of_two_institutions_gets_one_digest_each_with_that_institutions_links_only(
        tenants, smtp_server, django_capture_on_commit_callbacks):  # noqa: F811
    a, b = tenants
    a_advisors, _ = digest_world(a, users=1, students=3, now=LISBON_MORNING)
    shared = a_advisors[0]
    MembershipFactory(institution=b.institution, user=shared, role=Role.ADVISOR)
    # In B the shared advisor has a caseload of their own, with a follow-up overdue.
    from tests.factories import InterventionFactory, StudentFactory
    with digests_scope(b):
        student = StudentFactory(institution=b.institution, external_id="B-ONLY", advisor=shared)
        InterventionFactory(institution=b.institution, student=student, author=shared,
                            follow_up_date=LISBON_MORNING.date() - datetime.timedelta(days=3))
    with django_capture_on_commit_callbacks(execute=True):
        digests.digest_dispatch(now=LISBON_MORNING)
    theirs = [m for _s, rcpts, m in smtp_server.messages if rcpts == [shared.email]]
    assert sorted(m["Subject"].split(":")[0] for m in theirs) == ["ALPHA University", "BETA University"]
    for message in theirs:
        slug = "alpha" if message["Subject"].startswith("ALPHA") else "beta"
        body = body_of(message)
        assert all(f"/i/{slug}/" in link for link in re.findall(r"https?://\S+", body))
        assert ("B-ONLY" in body) == (slug == "beta")


def test_off_sends_nothing_and_weekly_waits_for_monday(tenants, smtp_server,  # noqa: F811
                                                       django_capture_on_commit_callbacks):
    a, _b = tenants
    advisors, _ = digest_world(a, users=2, students=3, now=LISBON_MORNING)
    with digests_scope(a):
        NotificationPreference.objects.filter(user=advisors[0]).update(digest=DigestFrequency.OFF)
        NotificationPreference.objects.filter(user=advisors[1]).update(digest=DigestFrequency.WEEKLY)
    with django_capture_on_commit_callbacks(execute=True):
        digests.digest_dispatch(now=LISBON_MORNING)  # a Wednesday
    assert smtp_server.messages == []
    monday = LISBON_MORNING + datetime.timedelta(days=5)
    with django_capture_on_commit_callbacks(execute=True):
        digests.digest_dispatch(now=monday)
    assert [rcpts for _s, rcpts, _m in smtp_server.messages] == [[advisors[1].email]]
    assert "weekly digest" in smtp_server.messages[0][2]["Subject"]


def test_settings_page_chooses_the_digest_per_institution(client, tenants):
    a, b = tenants
    MembershipFactory(institution=b.institution, user=a.advisor, role=Role.ADVISOR)
    client.force_login(a.advisor)
    page = client.get(reverse("notification-preferences", args=["alpha"]))
    assert page.status_code == 200 and page.context["form"].initial == {"digest": "daily"}
    response = client.post(reverse("notification-preferences", args=["alpha"]), {"digest": "weekly"}, follow=True)
    assert "Email digest: Weekly (Mondays)." in response.content.decode()
    from institutions.scoping import institution_scope
    with institution_scope(a.institution):
        assert NotificationPreference.objects.get(user=a.advisor).digest == "weekly"
    with institution_scope(b.institution):
        assert not NotificationPreference.objects.filter(user=a.advisor).exists()  # B keeps the default
    assert client.get(reverse("notification-preferences", args=["beta"])).context["form"].initial == {
        "digest": "daily"}
    refused = client.post(reverse("notification-preferences", args=["alpha"]), {"digest": "hourly"})
    assert refused.status_code == 200 and "Select a valid choice" in refused.content.decode()
    with institution_scope(a.institution):
        assert NotificationPreference.objects.get(user=a.advisor).digest == "weekly"
    client.force_login(b.advisor)  # B's own advisor: A's settings page is a 404
    assert client.get(reverse("notification-preferences", args=["alpha"])).status_code == 404
    assert client.post(reverse("notification-preferences", args=["alpha"]), {"digest": "off"}).status_code == 404


def test_an_alert_raised_through_the_alerts_code_is_in_the_routed_advisors_next_digest(
        tenants, smtp_server, django_capture_on_commit_callbacks):  # noqa: F811
    from institutions.scoping import institution_scope
    from interventions import alerts

    from .notification_world import concern

    a, b = tenants
    with institution_scope(a.institution), django_capture_on_commit_callbacks(execute=True):
        alert = alerts.alert_raise_by_staff(institution=a.institution, student=a.students[0],
                                            concern_type_id=concern(a.institution).pk,
                                            comment="Missed the last three labs.", user=a.admin)
    with institution_scope(b.institution), django_capture_on_commit_callbacks(execute=True):
        alerts.alert_raise_by_staff(institution=b.institution, student=b.students[0],
                                    concern_type_id=concern(b.institution).pk, comment="B's own.", user=b.admin)
    now = datetime.datetime.now(datetime.UTC).replace(hour=8, minute=0)  # Lisbon's morning, today
    with django_capture_on_commit_callbacks(execute=True):
        digests.digest_dispatch(now=now)
    [(_s, _r, message)] = [m for m in smtp_server.messages if m[1] == [a.advisor.email]]
    body = body_of(message)
    assert "OPEN ALERTS ROUTED TO YOU OR YOUR OFFICES (1)" in body
    assert f"{settings.SITE_URL}{reverse('alert-detail', args=['alpha', alert.pk])}" in body
    assert "Missed the last three labs" not in body  # the comment stays on the alert's page
    assert all("/i/alpha/" in link for link in re.findall(r"https?://\S+", body))
