"""The access log page and "who saw this record": administrators search by who, student and date,
export CSV; nobody else reaches them; institution B's admin never sees A's entries, and B's
entries never appear on A's student."""

from __future__ import annotations

import csv
import datetime
import io

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit import services
from audit.models import AccessAction, AccessEntry

pytestmark = pytest.mark.django_db


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def read(tenant, user, student, *, action=AccessAction.PROFILE_VIEW, days_ago=0):
    if days_ago:  # an older read, inserted with its time (entries are never updated)
        AccessEntry.objects.for_institution(tenant.institution).create(
            action=action, actor_user_id=user.pk, actor_name=user.username, student_id=student.pk,
            created_at=timezone.now() - datetime.timedelta(days=days_ago))
        return
    services.access_record(institution=tenant.institution,
                           accessor=services.Accessor(name=user.username, user_id=user.pk, ip_address="192.0.2.9"),
                           action=action, student_id=student.pk)


def shown(response) -> list[tuple]:
    return [(entry.actor_name, entry.action, entry.student_id) for entry, _student, _filters in
            response.context["entries"]]


def test_admin_searches_by_user_student_and_date(tenant_a):
    a = tenant_a
    read(a, a.advisor, a.students[0])
    read(a, a.advisor, a.students[1], days_ago=10)
    read(a, a.admin, a.students[0])
    url = reverse("access-log", args=["alpha"])
    client = login(a.admin)

    by_user = client.get(url, {"who": f"user:{a.advisor.pk}"})
    assert by_user.status_code == 200
    assert {row[2] for row in shown(by_user)} == {a.students[0].pk, a.students[1].pk}
    assert {row[0] for row in shown(by_user)} == {a.advisor.username}

    by_student = client.get(url, {"student": a.students[0].external_id})
    assert sorted(row[0] for row in shown(by_student)) == sorted([a.admin.username, a.advisor.username])

    today = timezone.localdate()
    recent = client.get(url, {"date_from": (today - datetime.timedelta(days=2)).isoformat(),
                              "date_to": today.isoformat(), "who": f"user:{a.advisor.pk}"})
    assert [row[2] for row in shown(recent)] == [a.students[0].pk]
    older = client.get(url, {"date_to": (today - datetime.timedelta(days=5)).isoformat()})
    assert [row[2] for row in shown(older)] == [a.students[1].pk]


def test_bad_search_input_gets_a_specific_message_and_lists_nothing(tenant_a):
    client = login(tenant_a.admin)
    url = reverse("access-log", args=["alpha"])
    unknown = client.get(url, {"student": "NOPE-1"})
    assert unknown.status_code == 400 and b"No student with external id" in unknown.content
    backwards = client.get(url, {"date_from": "2026-05-02", "date_to": "2026-05-01"})
    assert backwards.status_code == 400 and b"end date is before the start date" in backwards.content
    assert client.get(url, {"student": "#abc"}).status_code == 400
    assert client.get(url, {"date_from": "yesterday"}).status_code == 400
    assert client.get(url, {"page": "999999", "who": "user:x"}).status_code == 400


def test_csv_export_holds_the_matching_entries_and_is_itself_recorded(tenant_a):
    a = tenant_a
    read(a, a.advisor, a.students[0])
    read(a, a.advisor, a.students[1])
    read(a, a.admin, a.students[2])
    response = login(a.admin).get(reverse("access-log", args=["alpha"]),
                                  {"who": f"user:{a.advisor.pk}", "export": "csv"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert {row["student_external_id"] for row in rows} == {a.students[0].external_id, a.students[1].external_id}
    assert {row["who"] for row in rows} == {a.advisor.username}
    assert {row["address"] for row in rows} == {"192.0.2.9"}
    export = AccessEntry.objects.for_institution(a.institution).get(action=AccessAction.ACCESS_LOG_EXPORT)
    assert (export.actor_user_id, export.result_count, export.filters) == (a.admin.pk, 2,
                                                                           {"who": f"user:{a.advisor.pk}"})


@pytest.mark.parametrize("role", ["advisor", "viewer"])
def test_only_administrators_reach_the_access_log_and_who_saw_this_record(tenant_a, role):
    a = tenant_a
    read(a, a.admin, a.students[0])
    client = login(getattr(a, role))
    assert client.get(reverse("access-log", args=["alpha"])).status_code == 403
    assert client.get(reverse("access-log", args=["alpha"]), {"export": "csv"}).status_code == 403
    if role == "advisor":
        profile = client.get(reverse("student-detail", args=["alpha", a.students[0].pk]))
        assert profile.status_code == 200
        assert profile.context["access_history"] is None and b"Who saw this record" not in profile.content


def test_profile_shows_who_saw_this_record_to_administrators(tenant_a):
    a = tenant_a
    read(a, a.advisor, a.students[0], action=AccessAction.WHAT_IF)
    read(a, a.viewer, a.students[1])
    profile = login(a.admin).get(reverse("student-detail", args=["alpha", a.students[0].pk]))
    assert profile.status_code == 200
    assert [(e.actor_name, e.action) for e in profile.context["access_history"]] == [
        (a.advisor.username, AccessAction.WHAT_IF)]
    assert b"Who saw this record" in profile.content and a.advisor.username.encode() in profile.content


def test_another_institutions_admin_never_sees_its_entries(tenants):
    a, b = tenants
    read(a, a.advisor, a.students[0])
    read(b, b.advisor, b.students[0])
    # The same external id exists in both institutions (the fixtures share them on purpose).
    client = login(b.admin)
    assert client.get(reverse("access-log", args=["alpha"])).status_code == 404
    assert client.get(reverse("access-log", args=["alpha"]), {"export": "csv"}).status_code == 404
    own = client.get(reverse("access-log", args=["beta"]), {"student": b.students[0].external_id})
    assert shown(own) == [(b.advisor.username, AccessAction.PROFILE_VIEW, b.students[0].pk)]
    everything = client.get(reverse("access-log", args=["beta"]), {"export": "csv"})
    text = b"".join(everything.streaming_content).decode()
    assert a.advisor.username not in text
    # An id of A's student typed into B's search finds nothing of A's.
    by_id = client.get(reverse("access-log", args=["beta"]), {"student": f"#{a.students[0].pk}"})
    assert shown(by_id) == []
    # A member's id from A is not one of B's choices.
    assert client.get(reverse("access-log", args=["beta"]), {"who": f"user:{a.advisor.pk}"}).status_code == 400


def test_another_institutions_entries_never_appear_on_a_student(tenants):
    a, b = tenants
    # B's entry carries A's student's id (ids are unique, but an entry holds a plain number).
    services.access_record(institution=b.institution, accessor=services.Accessor(name=b.advisor.username),
                           action=AccessAction.PROFILE_VIEW, student_id=a.students[0].pk)
    profile = login(a.admin).get(reverse("student-detail", args=["alpha", a.students[0].pk]))
    assert profile.context["access_history"] == []
    assert b.advisor.username.encode() not in profile.content
