"""The alerts, offices and alert-rules API resources: tenancy, filters, roles, keys and the actions."""

import pytest
from django.core import mail
from django.urls import reverse
from rest_framework.test import APIClient

from institutions.api_keys import api_key_create
from institutions.services import institution_set_need_to_know
from interventions import alerts
from interventions.models import Alert, AlertEvent, AlertStatus, RouteTarget

from .alerts_fixtures import save_marks

pytestmark = pytest.mark.django_db


def url(name, slug, *args):
    return reverse(name, args=[slug, *args])


@pytest.fixture
def raised(alert_world):
    for t in alert_world:
        t.rule = alerts.alert_rule_save(institution=t.institution, rule=None, data={
            "concern_type": t.grades.pk, "target": RouteTarget.OFFICE, "office": t.office.pk})
        save_marks(t, create=[(t.students[0], t.attendance, f"{t.institution.slug} absent"),
                              (t.students[3], t.grades, f"{t.institution.slug} failing")])
        found = Alert.objects.for_institution(t.institution)
        t.mine, t.office_alert = found.get(student=t.students[0]), found.get(student=t.students[3])
    return alert_world


def key(t, scopes):
    _key, raw = api_key_create(institution=t.institution, name="SIS", scopes=scopes, created_by=t.admin)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_lists_only_own_institutions_alerts_and_filters_them(api_client, raised):
    a, b = raised
    api_client.force_authenticate(a.advisor)
    response = api_client.get(url("api-alert-list", "alpha"))
    assert response.status_code == 200
    rows = response.json()["results"]
    assert {row["id"] for row in rows} == {a.mine.pk, a.office_alert.pk}
    assert all("beta" not in row["comment"] for row in rows)
    by_assignee = api_client.get(url("api-alert-list", "alpha"), {"assigned_user": a.advisor.pk}).json()["results"]
    assert [row["id"] for row in by_assignee] == [a.mine.pk]
    by_office = api_client.get(url("api-alert-list", "alpha"), {"assigned_office": a.office.pk}).json()["results"]
    assert [row["id"] for row in by_office] == [a.office_alert.pk]
    by_student = api_client.get(url("api-alert-list", "alpha"), {"student": a.students[3].pk}).json()["results"]
    assert [row["id"] for row in by_student] == [a.office_alert.pk]
    assert api_client.get(url("api-alert-list", "alpha"), {"status": "closed"}).json()["results"] == []
    assert api_client.get(url("api-alert-list", "alpha"), {"status": "nonsense"}).status_code == 400
    # B's ids as filters find nothing.
    assert api_client.get(url("api-alert-list", "alpha"), {"student": b.students[0].pk}).json()["results"] == []


def test_other_institution_reads_and_actions_are_404(api_client, raised):
    a, b = raised
    api_client.force_authenticate(a.admin)
    assert api_client.get(url("api-alert-list", "beta")).status_code == 404
    assert api_client.get(url("api-alert-detail", "alpha", b.mine.pk)).status_code == 404
    assert api_client.get(url("api-office-detail", "alpha", b.office.pk)).status_code == 404
    assert api_client.get(url("api-alert-rule-detail", "alpha", b.rule.pk)).status_code == 404
    for action in ("acknowledge", "contact", "refer", "note", "close"):
        response = api_client.post(url(f"api-alert-{action}", "alpha", b.mine.pk),
                                   {"note": "x", "outcome": "resolved", "to_office": a.office.pk}, format="json")
        assert response.status_code == 404, action
        assert api_client.post(url(f"api-alert-{action}", "beta", b.mine.pk), {}, format="json").status_code == 404
    b.mine.refresh_from_db()
    assert b.mine.status == AlertStatus.OPEN
    assert AlertEvent.objects.for_institution(b.institution).filter(alert=b.mine).count() == 2


def test_retrieve_has_the_history_and_offices_and_rules_read_only(api_client, raised):
    a, _b = raised
    api_client.force_authenticate(a.advisor)
    body = api_client.get(url("api-alert-detail", "alpha", a.mine.pk)).json()
    assert [e["kind"] for e in body["events"]] == ["raised", "routed"]
    assert body["assigned_user"] == a.advisor.pk and body["raised_by_instructor"] == a.instructor.pk
    offices = api_client.get(url("api-office-list", "alpha")).json()
    assert offices == [{**offices[0], "id": a.office.pk, "name": "Tutoring centre", "members": [a.tutor.pk]}]
    rules = api_client.get(url("api-alert-rule-list", "alpha")).json()
    assert [(r["id"], r["target"], r["office"]) for r in rules] == [(a.rule.pk, "office", a.office.pk)]
    api_client.force_authenticate(a.admin)
    assert api_client.post(url("api-office-list", "alpha"), {"name": "x"}).status_code == 405
    assert api_client.delete(url("api-alert-rule-detail", "alpha", a.rule.pk)).status_code == 405


def test_the_assignee_works_an_alert_through_the_api(api_client, raised, django_capture_on_commit_callbacks):
    a, b = raised
    api_client.force_authenticate(a.advisor)
    detail = url("api-alert-detail", "alpha", a.mine.pk)
    assert api_client.post(detail + "acknowledge/", {}, format="json").json()["status"] == "acknowledged"
    refused = api_client.post(detail + "contact/", {}, format="json")
    assert refused.status_code == 400 and "note" in refused.json()["errors"]
    assert api_client.post(detail + "contact/", {"note": "Phoned"}, format="json").json()["status"] == "contacted"
    refused = api_client.post(detail + "refer/", {"to_office": b.office.pk}, format="json")
    assert refused.status_code == 400 and "to_office" in refused.json()["errors"]
    with django_capture_on_commit_callbacks(execute=True):
        closed = api_client.post(detail + "close/", {"outcome": "resolved", "notes": "All good"}, format="json")
    assert closed.status_code == 200
    body = closed.json()
    assert body["status"] == "closed" and body["raiser_told_at"] is not None
    assert [e["kind"] for e in body["events"]][-2:] == ["closed", "raiser_told"]
    assert mail.outbox[0].to == ["ines@alpha.example.edu"] and "All good" not in mail.outbox[0].body


def test_others_are_refused_by_role_and_need_to_know(api_client, raised):
    a, _b = raised
    api_client.force_authenticate(a.other_advisor)
    refused = api_client.post(url("api-alert-acknowledge", "alpha", a.mine.pk), {}, format="json")
    assert refused.status_code == 400 and "only whoever" in str(refused.json())
    api_client.force_authenticate(a.viewer)
    assert api_client.get(url("api-alert-list", "alpha")).status_code == 403
    institution_set_need_to_know(institution=a.institution, enabled=True, actor=a.admin)
    api_client.force_authenticate(a.other_advisor)
    assert api_client.get(url("api-alert-list", "alpha")).json()["results"] == []
    assert api_client.get(url("api-alert-detail", "alpha", a.mine.pk)).status_code == 404
    api_client.force_authenticate(a.tutor)
    assert [r["id"] for r in api_client.get(url("api-alert-list", "alpha")).json()["results"]] == [
        a.office_alert.pk]


def test_keys_need_the_interventions_scopes_and_read_only_their_institution(raised):
    a, b = raised
    reader = key(a, ["interventions:read"])
    assert {r["id"] for r in reader.get(url("api-alert-list", "alpha")).json()["results"]} == {
        a.mine.pk, a.office_alert.pk}
    assert reader.get(url("api-alert-list", "beta")).status_code in (401, 403, 404)
    assert reader.get(url("api-alert-detail", "alpha", b.mine.pk)).status_code == 404
    assert reader.post(url("api-alert-note", "alpha", a.mine.pk), {"note": "x"}, format="json").status_code == 403
    assert key(a, ["students:read"]).get(url("api-alert-list", "alpha")).status_code == 403
    writer = key(a, ["interventions:write"])
    assert writer.post(url("api-alert-note", "alpha", a.mine.pk), {"note": "From the SIS"},
                       format="json").status_code == 200
