"""The read-only survey API: surveys, their participation and the concern types, for one
institution's key with the courses scope only; other institutions' keys get 404."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from institutions.api_keys import api_key_create

from .survey_helpers import links_by_recipient, open_survey

pytestmark = pytest.mark.django_db


def _client(tenant, scopes=("courses:read",)):
    _key, raw = api_key_create(institution=tenant.institution, name="BI", scopes=list(scopes),
                               created_by=tenant.admin)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return api


def test_a_key_reads_its_surveys_and_their_participation(client, worlds):
    a, b = worlds
    survey = open_survey(a)
    open_survey(b, title="Beta survey")
    link = links_by_recipient()["teacher0@alpha.example.edu"]
    client.get(link, follow=True)
    api = _client(a.tenant)
    listing = api.get("/api/v1/institutions/alpha/surveys/")
    assert listing.status_code == 200
    rows = listing.json()["results"] if isinstance(listing.json(), dict) else listing.json()
    assert [row["title"] for row in rows] == ["Mid-term check"]
    row = rows[0]
    assert row["term"] == a.term.pk and row["status"] == "open" and row["invited_count"] == 2
    assert row["concern_types"] == [t.pk for t in a.types] and row["opened_by"] == "alpha-admin"
    participation = api.get(f"/api/v1/institutions/alpha/surveys/{survey.pk}/participation/").json()
    assert participation["totals"] == {"invited": 2, "opened": 1, "answered": 0, "concerns": 0, "kudos": 0}
    assert {i["name"] for i in participation["instructors"]} == {"Teacher0 Alpha", "Teacher1 Alpha"}
    assert {c["course_code"] for c in participation["courses"]} == {"C0", "C1", "C2"}
    assert participation["not_invited"] == ["Teacher2 Alpha"]
    types = api.get("/api/v1/institutions/alpha/concern-types/").json()
    types = types["results"] if isinstance(types, dict) else types
    assert [t["key"] for t in types] == ["attendance", "low_grades", "missing_work", "participation", "kudos"]


def test_another_institutions_key_gets_404_on_every_survey_resource(worlds):
    a, b = worlds
    survey = open_survey(a)
    beta = _client(b.tenant)
    for path in ("surveys/", f"surveys/{survey.pk}/", f"surveys/{survey.pk}/participation/", "concern-types/",
                 f"concern-types/{a.types[0].pk}/"):
        assert beta.get(f"/api/v1/institutions/alpha/{path}").status_code == 404, path
    for path in (f"surveys/{survey.pk}/", f"surveys/{survey.pk}/participation/", f"concern-types/{a.types[0].pk}/"):
        assert beta.get(f"/api/v1/institutions/beta/{path}").status_code == 404, path
    listing = beta.get("/api/v1/institutions/beta/surveys/").json()
    assert (listing["results"] if isinstance(listing, dict) else listing) == []


def test_a_key_without_the_courses_scope_and_writes_are_refused(worlds):
    a, _b = worlds
    survey = open_survey(a)
    students_only = _client(a.tenant, scopes=("students:read",))
    assert students_only.get("/api/v1/institutions/alpha/surveys/").status_code == 403
    assert students_only.get(f"/api/v1/institutions/alpha/surveys/{survey.pk}/participation/").status_code == 403
    full = _client(a.tenant, scopes=("courses:write",))
    assert full.post("/api/v1/institutions/alpha/surveys/", {"title": "x"}).status_code == 405
    assert full.delete(f"/api/v1/institutions/alpha/surveys/{survey.pk}/").status_code == 405


def test_an_advisor_session_cannot_read_surveys(worlds):
    a, _b = worlds
    open_survey(a)
    api = APIClient()
    api.force_authenticate(a.tenant.advisor)
    assert api.get("/api/v1/institutions/alpha/surveys/").status_code == 403
    api.force_authenticate(a.tenant.admin)
    assert api.get("/api/v1/institutions/alpha/surveys/").status_code == 200
