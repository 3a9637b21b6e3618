"""What a digest holds, for whom, built in one query per kind for every recipient of a run (the
same count for 3 advisors x 5 students as for 12 x 40), in one institution only."""

from __future__ import annotations

import datetime

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from institutions.scoping import institution_scope
from institutions.services import institution_set_need_to_know
from interventions.models import Intervention
from workspace import digests
from workspace.models import DigestFrequency, NotificationPreference

from .notification_world import digest_world

pytestmark = pytest.mark.django_db
WEDNESDAY = datetime.datetime(2026, 12, 2, 8, 0, tzinfo=datetime.UTC)  # 08:00 in Lisbon (the fixtures' zone)
MONDAY = datetime.datetime(2026, 12, 7, 8, 0, tzinfo=datetime.UTC)
# Per run: the scoring runs (ids, then the two needed), staff flags, caseload students, office
# memberships, alerts, follow-ups.
QUERIES_PER_BUILD = 7


def claim_and_build(institution, now):
    with institution_scope(institution), transaction.atomic():
        recipients = digests.digest_recipients_claim(institution=institution, now=now)
        return {d.recipient.user_id: d for d in digests.digests_build(institution=institution,
                                                                       recipients=recipients, now=now)}


def test_digest_lists_newly_flagged_open_alerts_and_due_follow_ups_of_the_member_only(tenants):
    a, b = tenants
    advisors, by_advisor = digest_world(a, users=2, students=5, now=WEDNESDAY)
    digest_world(b, users=2, students=5, now=WEDNESDAY)  # same usernames' pattern and external ids in B
    built = claim_and_build(a.institution, WEDNESDAY)
    first = built[advisors[0].pk]
    mine = by_advisor[advisors[0].pk]
    # Model: flagged now (first half) but not at the last digest's run (first fifth) -> students 1..1;
    # staff: the flag raised two hours ago on the last student (not the one raised three days ago).
    assert [(s.external_id, s.detail) for s in first.newly_flagged] == [
        (mine[1].external_id, "flagged by the risk model"), (mine[-1].external_id, "flagged by staff")]
    # The open alert routed to them and the open one of their office; not the closed one.
    assert sorted((line.student_id, line.office) for line in first.alerts) == sorted(
        [(mine[0].pk, ""), (mine[-1].pk, "Office of adv"), (by_advisor[advisors[1].pk][-1].pk, "Office of adv")])
    # Overdue and due today; not tomorrow's, not the closed intervention's.
    assert [f.due for f in first.follow_ups] == [WEDNESDAY.date() - datetime.timedelta(days=1), WEDNESDAY.date()]
    # Nothing of B: every student id is one of A's.
    a_ids = {s.pk for students in by_advisor.values() for s in students}
    lines = first.newly_flagged + first.alerts + first.follow_ups
    assert {line.student_id for line in lines} <= a_ids
    # The admin and the fixture's advisor have nothing: empty digests.
    assert built[a.admin.pk].is_empty and built[a.advisor.pk].is_empty
    assert a.viewer.pk not in built  # viewers see no students: no digest


@pytest.mark.parametrize(("users", "students"), [(3, 5), (12, 40)])
def test_digests_are_built_in_one_query_per_kind_whatever_the_number_of_members_and_students(
        tenants, django_assert_num_queries, users, students):
    a, b = tenants
    digest_world(a, users=users, students=students, now=WEDNESDAY)
    digest_world(b, users=2, students=3, now=WEDNESDAY)
    with institution_scope(a.institution), transaction.atomic():
        recipients = digests.digest_recipients_claim(institution=a.institution, now=WEDNESDAY)
        assert len(recipients) == users + 2  # the advisors, the fixture's advisor and admin
        with django_assert_num_queries(QUERIES_PER_BUILD):
            built = digests.digests_build(institution=a.institution, recipients=recipients, now=WEDNESDAY)
    assert sum(1 for d in built if not d.is_empty) == users
    assert all(len(d.follow_ups) == 2 for d in built if not d.is_empty)


def test_a_whole_run_costs_the_same_queries_at_two_sizes(tenants, django_capture_on_commit_callbacks):
    a, b = tenants
    digest_world(a, users=3, students=5, now=WEDNESDAY)
    digest_world(b, users=12, students=40, now=WEDNESDAY)
    counts = {}
    for tenant in (a, b):
        with (CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=False),
              institution_scope(tenant.institution)):
            result = digests.digests_send(institution=tenant.institution, now=WEDNESDAY)
        counts[tenant.institution.slug] = len(queries)
        assert result["sent"] == (3 if tenant is a else 12)
    assert counts["alpha"] == counts["beta"]


def test_weekly_digests_come_on_monday_only_and_off_means_none(tenants):
    a, _b = tenants
    advisors, _ = digest_world(a, users=3, students=3, now=WEDNESDAY)
    with institution_scope(a.institution):
        NotificationPreference.objects.filter(user=advisors[1]).update(digest=DigestFrequency.WEEKLY)
        NotificationPreference.objects.filter(user=advisors[2]).update(digest=DigestFrequency.OFF)
    assert set(claim_and_build(a.institution, WEDNESDAY)) >= {advisors[0].pk}
    assert not {advisors[1].pk, advisors[2].pk} & set(claim_and_build(a.institution, WEDNESDAY))
    monday = claim_and_build(a.institution, MONDAY)
    assert advisors[1].pk in monday and advisors[2].pk not in monday


def test_under_need_to_know_an_author_is_not_told_of_a_follow_up_of_a_student_they_no_longer_see(tenants):
    a, _b = tenants
    advisors, by_advisor = digest_world(a, users=2, students=3, now=WEDNESDAY)
    student = by_advisor[advisors[0].pk][0]
    with institution_scope(a.institution):
        # Advisor 0's student moves to advisor 1's caseload: advisor 0 authored its follow-ups.
        type(student).objects.filter(pk=student.pk).update(advisor=advisors[1])
        institution_set_need_to_know(institution=a.institution, enabled=True, actor=a.admin)
    a.institution.refresh_from_db()
    built = claim_and_build(a.institution, WEDNESDAY)
    assert built[advisors[0].pk].follow_ups == []
    assert {f.student_id for f in built[advisors[1].pk].follow_ups} == {student.pk, by_advisor[advisors[1].pk][0].pk}
    # Without need-to-know the author is told again.
    with institution_scope(a.institution):
        institution_set_need_to_know(institution=a.institution, enabled=False, actor=a.admin)
        NotificationPreference.objects.update(last_digest_at=WEDNESDAY - datetime.timedelta(days=1))
    a.institution.refresh_from_db()
    assert len(claim_and_build(a.institution, WEDNESDAY)[advisors[0].pk].follow_ups) == 2


def test_the_email_holds_counts_ids_names_and_links_but_never_notes(tenants):
    a, _b = tenants
    advisors, by_advisor = digest_world(a, users=1, students=5, now=WEDNESDAY)
    digest = claim_and_build(a.institution, WEDNESDAY)[advisors[0].pk]
    message = digests.digest_email(institution=a.institution, digest=digest, today=WEDNESDAY.date())
    body = message.body
    assert message.subject == "ALPHA University: your daily digest (2 newly flagged, 2 open alerts, 2 follow-ups due)"
    mine = by_advisor[advisors[0].pk]
    assert f"{mine[1].external_id} {mine[1].name}" in body
    assert f"{settings.SITE_URL}/i/alpha/students/{mine[1].pk}/" in body
    assert "worried about the rent" not in body and "Missed three labs" not in body
    assert "overdue since Dec. 1, 2026" in body and "due today" in body
    assert "/i/alpha/notifications/preferences/" in body
    assert message.extra_headers["List-Unsubscribe"].endswith("/i/alpha/notifications/preferences/>")
    for url in [word for word in body.split() if "://" in word]:
        assert "/i/alpha/" in url, url
    assert Intervention.objects.for_institution(a.institution).count() == 4
