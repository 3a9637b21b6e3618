"""The notifications API: the signed-in member's own, in the institution of the URL only; list with
the unread filter, mark one or all read; an API key (institution-level, no person) is a 403 that
says why; another institution's or another member's notification is a 404."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from institutions.api_keys import ALL_SCOPES, api_key_create
from institutions.models import Role
from tests.factories import MembershipFactory
from workspace.api import API_KEY_REFUSED
from workspace.models import Notification

from .notification_world import route_alert

pytestmark = pytest.mark.django_db


def url(slug, rest=""):
    return f"/api/v1/institutions/{slug}/notifications/{rest}"


def signed_in(user) -> APIClient:
    api = APIClient()
    api.force_login(user)
    return api


def test_member_lists_own_notifications_with_the_unread_filter(tenants):
    a, _b = tenants
    first = route_alert(a.institution, a.students[0], to_user=a.advisor)
    route_alert(a.institution, a.students[1], to_user=a.advisor)
    route_alert(a.institution, a.students[2], to_user=a.admin)  # someone else's
    api = signed_in(a.advisor)
    listed = api.get(url("alpha")).json()
    rows = listed["results"]
    assert len(rows) == 2
    assert {r["alert"] for r in rows} >= {first.pk} and all(r["is_read"] is False for r in rows)
    assert all(r["url"].startswith("/i/alpha/") for r in rows)
    assert a.students[0].name not in str(rows)
    read = api.post(url("alpha", f"{rows[0]['id']}/read/"))
    assert read.status_code == 200 and read.json()["is_read"] is True
    unread = api.get(url("alpha"), {"unread": "true"}).json()["results"]
    assert [r["id"] for r in unread] == [rows[1]["id"]]
    assert api.get(url("alpha"), {"unread": "maybe"}).status_code == 400
    marked = api.post(url("alpha", "read-all/"))
    assert marked.status_code == 200 and marked.json() == {"marked": 1}
    assert api.get(url("alpha"), {"unread": "true"}).json()["results"] == []


def test_an_api_key_is_refused_with_a_message_saying_why(tenants):
    a, _b = tenants
    route_alert(a.institution, a.students[0], to_user=a.advisor)
    _key, raw = api_key_create(institution=a.institution, name="SIS", scopes=list(ALL_SCOPES), created_by=a.admin)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    note = Notification.objects.for_institution(a.institution).get()
    for response in (api.get(url("alpha")), api.get(url("alpha", f"{note.pk}/")),
                     api.post(url("alpha", f"{note.pk}/read/")), api.post(url("alpha", "read-all/"))):
        assert response.status_code == 403
        assert API_KEY_REFUSED in str(response.json())
    note.refresh_from_db()
    assert note.read_at is None
    assert api.get(url("beta")).status_code == 404  # another institution's address: as missing


def test_another_institutions_or_members_notification_is_a_404_and_stays_unread(tenants):
    a, b = tenants
    route_alert(a.institution, a.students[0], to_user=a.admin)
    route_alert(b.institution, b.students[0], to_user=b.advisor)
    MembershipFactory(institution=b.institution, user=a.advisor, role=Role.ADVISOR)
    route_alert(b.institution, b.students[1], to_user=a.advisor)
    admins = Notification.objects.for_institution(a.institution).get(user=a.admin)
    bs = Notification.objects.for_institution(b.institution).get(user=b.advisor)
    own_in_b = Notification.objects.for_institution(b.institution).get(user=a.advisor)
    api = signed_in(a.advisor)
    assert api.get(url("alpha")).json()["results"] == []  # nothing of theirs in A
    assert [r["id"] for r in api.get(url("beta")).json()["results"]] == [own_in_b.pk]
    for slug, note in (("alpha", admins), ("alpha", bs), ("beta", bs), ("alpha", own_in_b)):
        assert api.get(url(slug, f"{note.pk}/")).status_code == 404
        assert api.post(url(slug, f"{note.pk}/read/")).status_code == 404
    assert api.post(url("alpha", "read-all/")).json() == {"marked": 0}
    for note in (admins, bs, own_in_b):
        note.refresh_from_db()
        assert note.read_at is None
    outsider = signed_in(b.viewer)
    assert outsider.get(url("alpha")).status_code == 404


def test_signed_out_is_401_or_403(tenants):
    assert APIClient().get(url("alpha")).status_code in (401, 403)
