"""Need-to-know access: with the institution's option on, an advisor sees only the students in
their caseload, granted to them, or with an open flag routed to them, on every path (lists,
search, dashboard counts, CSV exports, profile, what-if, the API, the API's ORM bypass); any
other student answers 404. Administrators, API keys and institutions with the option off see all."""

from __future__ import annotations

import csv
import datetime
import io
import json

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from institutions.api_keys import ALL_SCOPES, api_key_create
from institutions.models import Role
from institutions.scoping import ViewerRestriction, institution_scope, viewer_restriction
from institutions.services import institution_set_need_to_know
from interventions import services as intervention_services
from interventions.models import Flag, Intervention, StudentAccessGrant
from students import orm_bypass
from students.models import Student
from tests.factories import InterventionTypeFactory, MembershipFactory, StudentFactory, UserFactory
from tests.interventions.conftest import record_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(tenants):
    """A (need-to-know on): the advisor's caseload is students[0..5]; ``other`` students belong to a
    second advisor and ``loose`` to nobody. Everyone current is scored; B stays as the fixture made it."""
    a, b = tenants
    colleague = UserFactory(username="alpha-advisor-2")
    MembershipFactory(institution=a.institution, user=colleague, role=Role.ADVISOR)
    a.colleague = colleague
    a.other = [StudentFactory(institution=a.institution, external_id=f"O{i}", name=f"Other Person {i}",
                              advisor=colleague) for i in range(3)]
    a.loose = [StudentFactory(institution=a.institution, external_id=f"L{i}", name=f"Loose Person {i}")
               for i in range(2)]
    risks = {s: 0.9 for s in (*a.students, *a.other, *a.loose) if s.outcome == "enrolled"}
    record_run(a.institution, risks)
    record_run(b.institution, {s: 0.9 for s in b.students if s.outcome == "enrolled"})
    kind = InterventionTypeFactory(institution=a.institution, key="call", label="Call")
    for student in (a.students[0], a.other[0]):
        Intervention.objects.for_institution(a.institution).create(
            student=student, intervention_type=kind, date=datetime.date.today(), author=a.admin,
            notes=f"note about {student.external_id}")
    institution_set_need_to_know(institution=a.institution, enabled=True, actor=a.admin)
    return a, b


def page(client, name, *args, **query):
    url = reverse(name, args=["alpha", *args])
    return client.get(url, query)


def csv_ids(response) -> set[str]:
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    return {row[0] for row in rows[1:]}


def caseload_ids(a) -> set[str]:
    return {s.external_id for s in a.students}


def test_advisor_lists_search_and_exports_hold_only_their_relationship(client, world):
    a, _ = world
    client.force_login(a.advisor)
    listed = page(client, "student-list")
    assert {s.external_id for s in listed.context["students"]} == caseload_ids(a)
    # Searching for a hidden student's name finds nothing; a visible one's still found.
    assert list(page(client, "student-list", q="Other Person").context["students"]) == []
    assert [s.external_id for s in page(client, "student-list", q="S001").context["students"]] == ["S001"]
    flagged = page(client, "flagged-list")
    assert {s.external_id for s in flagged.context["students"]} <= caseload_ids(a)
    assert csv_ids(page(client, "flagged-list", export="csv")) == {
        s.external_id for s in a.students if s.outcome == "enrolled"}
    assert csv_ids(page(client, "caseload", export="csv")) == {
        s.external_id for s in a.students if s.outcome == "enrolled"}
    interventions = page(client, "intervention-list")
    assert {i.student.external_id for i in interventions.context["interventions"]} == {"S001"}
    assert "O0" not in interventions.content.decode()

    client.force_login(a.admin)  # administrators see every student
    assert {s.external_id for s in page(client, "student-list").context["students"]} == {
        *caseload_ids(a), "O0", "O1", "O2", "L0", "L1"}


def test_dashboard_counts_only_the_advisors_students(client, world):
    a, _ = world
    client.force_login(a.advisor)
    mine = page(client, "dashboard").context
    current_mine = sum(1 for s in a.students if s.outcome == "enrolled")
    assert mine["counts"]["total"] == len(a.students)
    assert mine["summary"]["enrolled"] == mine["summary"]["scored"] == current_mine
    assert mine["summary"]["open_interventions"] == 1
    assert mine["summary"]["flagged_over_time"] == []
    client.force_login(a.admin)
    everyone = page(client, "dashboard").context
    assert everyone["counts"]["total"] == len(a.students) + 5
    assert everyone["summary"]["scored"] == current_mine + 5
    assert everyone["summary"]["flagged_over_time"]


def test_student_outside_the_relationship_is_404_on_profile_what_if_and_forms(client, world):
    a, _ = world
    hidden = a.other[0]
    client.force_login(a.advisor)
    assert page(client, "student-detail", hidden.pk).status_code == 404
    what_if = reverse("student-what-if", args=["alpha", hidden.pk])
    assert client.post(what_if, json.dumps({"changes": {"units_approved": 3}}),
                       content_type="application/json").status_code == 404
    assert client.post(reverse("flag-create", args=["alpha", hidden.pk]), {"reason": "x"}).status_code == 404
    assert not Flag.objects.for_institution(a.institution).filter(student=hidden).exists()
    assert page(client, "student-detail", a.students[0].pk).status_code == 200
    # The what-if of a visible student is answered (here: nothing to change), not hidden.
    own = reverse("student-what-if", args=["alpha", a.students[0].pk])
    assert client.post(own, json.dumps({"changes": {}}), content_type="application/json").status_code == 400


def test_a_grant_shows_the_student_until_it_expires_or_is_revoked(client, world):
    a, _ = world
    hidden = a.other[1]
    client.force_login(a.advisor)
    assert page(client, "student-detail", hidden.pk).status_code == 404
    grant = intervention_services.access_grant_create(
        institution=a.institution, student=hidden, user_id=a.advisor.pk, reason="covering for a colleague",
        expires_at=timezone.now() + datetime.timedelta(days=7), granted_by=a.admin)
    assert page(client, "student-detail", hidden.pk).status_code == 200
    assert "O1" in {s.external_id for s in page(client, "student-list").context["students"]}
    StudentAccessGrant.objects.for_institution(a.institution).filter(pk=grant.pk).update(
        expires_at=timezone.now() - datetime.timedelta(seconds=1))
    assert page(client, "student-detail", hidden.pk).status_code == 404
    StudentAccessGrant.objects.for_institution(a.institution).filter(pk=grant.pk).update(expires_at=None)
    assert page(client, "student-detail", hidden.pk).status_code == 200
    grant.refresh_from_db()
    intervention_services.access_grant_revoke(institution=a.institution, grant=grant, revoked_by=a.admin)
    assert page(client, "student-detail", hidden.pk).status_code == 404
    # A grant to the colleague shows nothing to this advisor.
    intervention_services.access_grant_create(institution=a.institution, student=a.loose[0],
                                              user_id=a.colleague.pk, granted_by=a.admin)
    assert page(client, "student-detail", a.loose[0].pk).status_code == 404


def test_an_open_flag_routed_to_the_advisor_shows_the_student(client, world):
    a, _ = world
    hidden = a.loose[1]
    client.force_login(a.advisor)
    assert page(client, "student-detail", hidden.pk).status_code == 404
    flag = intervention_services.flag_raise(institution=a.institution, student=hidden, reason="missed exams",
                                            raised_by=a.admin, assigned_to=a.advisor.pk)
    assert page(client, "student-detail", hidden.pk).status_code == 200
    assert "L1" in csv_ids(page(client, "flagged-list", export="csv"))
    intervention_services.flag_resolve(institution=a.institution, flag=flag, resolution="talked",
                                       resolved_by=a.admin)
    assert page(client, "student-detail", hidden.pk).status_code == 404


def test_routing_a_flag_or_granting_to_a_viewer_or_another_institutions_user_is_refused(world):
    a, b = world
    for user in (a.viewer, b.advisor):
        with pytest.raises(intervention_services.InterventionRuleError):
            intervention_services.flag_raise(institution=a.institution, student=a.loose[0], reason="x",
                                             raised_by=a.admin, assigned_to=user.pk)
        with pytest.raises(intervention_services.InterventionRuleError):
            intervention_services.access_grant_create(institution=a.institution, student=a.loose[0],
                                                      user_id=user.pk, granted_by=a.admin)
    assert not StudentAccessGrant.objects.for_institution(a.institution).exists()


def test_with_the_option_off_advisors_see_every_student(client, world):
    a, _ = world
    institution_set_need_to_know(institution=a.institution, enabled=False, actor=a.admin)
    client.force_login(a.advisor)
    assert page(client, "student-detail", a.other[0].pk).status_code == 200
    assert len(page(client, "student-list").context["students"]) == len(a.students) + 5


API = "/api/v1/institutions/alpha"


def test_api_for_an_advisor_serves_only_their_students_and_404_for_others(api_client, world):
    a, _ = world
    api_client.force_login(a.advisor)
    listed = api_client.get(f"{API}/students/")
    assert listed.status_code == 200
    assert {row["external_id"] for row in listed.json()["results"]} == caseload_ids(a)
    assert listed.json()["count"] == len(a.students)
    assert api_client.get(f"{API}/students/{a.other[0].pk}/").status_code == 404
    assert api_client.get(f"{API}/students/{a.students[0].pk}/").status_code == 200
    filtered = api_client.get(f"{API}/students/", {"advisor": a.colleague.pk})  # the ORM path, filtered
    assert filtered.status_code == 200 and filtered.json()["results"] == []
    hidden_ids = {s.pk for s in (*a.other, *a.loose)}
    for resource in ("predictions", "interventions", "flags", "activity-events"):
        response = api_client.get(f"{API}/{resource}/")
        assert response.status_code == 200, (resource, response.content)
        assert not {row.get("student") for row in response.json()["results"]} & hidden_ids, resource
    assert api_client.get(f"{API}/predictions/{a.other[0].pk}/").status_code == 404
    intervention = Intervention.objects.for_institution(a.institution).get(student=a.other[0])
    assert api_client.get(f"{API}/interventions/{intervention.pk}/").status_code == 404
    refused = api_client.post(f"{API}/flags/", {"student": a.other[0].pk, "reason": "x"}, format="json")
    assert refused.status_code == 400
    assert "Cache-Control" in listed and "no-store" in listed["Cache-Control"]


def test_api_keys_and_administrators_read_every_student(api_client, world):
    a, _ = world
    everyone = len(a.students) + 5
    _, raw = api_key_create(institution=a.institution, name="SIS", scopes=list(ALL_SCOPES), created_by=a.admin)
    key_client = APIClient()
    key_client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert key_client.get(f"{API}/students/").json()["count"] == everyone
    assert key_client.get(f"{API}/students/{a.other[0].pk}/").status_code == 200
    api_client.force_login(a.admin)
    assert api_client.get(f"{API}/students/").json()["count"] == everyone
    assert api_client.get(f"{API}/students/{a.other[0].pk}/").status_code == 200


def test_the_orm_bypass_steps_aside_and_refuses_to_read_under_need_to_know(world):
    a, _ = world
    assert orm_bypass.may_bypass()
    with institution_scope(a.institution), viewer_restriction(
            ViewerRestriction(institution_id=a.institution.pk, user_id=a.advisor.pk)):
        assert not orm_bypass.may_bypass()
        with pytest.raises(RuntimeError):
            orm_bypass.student_read(institution=a.institution, student_id=a.other[0].pk)
        with pytest.raises(RuntimeError):
            orm_bypass.StudentPages(a.institution)
        # The ORM path applies the rule to every student-linked model.
        assert set(Student.objects.values_list("external_id", flat=True)) == caseload_ids(a)


def test_need_to_know_never_reaches_across_institutions(client, api_client, world):
    a, b = world
    # B's option is off and A's advisor with need-to-know still gets 404 on B, pages and API.
    client.force_login(a.advisor)
    assert client.get(reverse("student-detail", args=["beta", b.students[0].pk])).status_code == 404
    assert client.get(reverse("student-detail", args=["alpha", b.students[0].pk])).status_code == 404
    api_client.force_login(a.advisor)
    assert api_client.get(f"/api/v1/institutions/beta/students/{b.students[0].pk}/").status_code == 404
    assert api_client.get(f"{API}/students/{b.students[0].pk}/").status_code == 404
    # A grant of B's student by A's admin is refused: the student is not found in A.
    with pytest.raises(Exception) as refused:
        intervention_services.access_grant_create(institution=a.institution, student=b.students[0].pk,
                                                  user_id=a.advisor.pk, granted_by=a.admin)
    assert refused.type.__name__ == "Http404"
    # B's advisor, with B's option off, sees all of B and nothing of A.
    client.force_login(b.advisor)
    assert len(client.get(reverse("student-list", args=["beta"])).context["students"]) == len(b.students)
    assert client.get(reverse("student-detail", args=["beta", a.other[0].pk])).status_code == 404


def test_admin_turns_the_option_on_and_grants_from_the_access_page(client, world):
    a, b = world
    url = reverse("access-settings", args=["alpha"])
    client.force_login(a.advisor)
    assert client.get(url).status_code == 403
    client.force_login(a.admin)
    assert client.post(url, {"setting": "need_to_know"}).status_code == 302  # unticked: off
    a.institution.refresh_from_db()
    assert not a.institution.need_to_know_access and a.institution.need_to_know_changed_by == a.admin
    client.post(url, {"setting": "need_to_know", "need_to_know": "on"})
    a.institution.refresh_from_db()
    assert a.institution.need_to_know_access
    bad = client.post(url, {"student": "NOPE", "user": a.advisor.pk, "reason": ""})
    assert bad.status_code == 400 and "No student with this id" in bad.content.decode()
    past = client.post(url, {"student": "O2", "user": a.advisor.pk, "expires_on": "2000-01-01"})
    assert past.status_code == 400 and not StudentAccessGrant.objects.for_institution(a.institution).exists()
    ok = client.post(url, {"student": "O2", "user": a.advisor.pk, "reason": "exam board"})
    assert ok.status_code == 302
    grant = StudentAccessGrant.objects.for_institution(a.institution).get()
    assert (grant.student, grant.user, grant.reason, grant.granted_by) == (a.other[2], a.advisor, "exam board",
                                                                        a.admin)
    shown = client.get(url)
    assert "exam board" in shown.content.decode() and "no-store" in shown["Cache-Control"]
    # B's administrator cannot revoke A's grant (404), A's can.
    client.force_login(b.admin)
    assert client.post(reverse("access-grant-revoke", args=["beta", grant.pk])).status_code == 404
    assert client.post(reverse("access-grant-revoke", args=["alpha", grant.pk])).status_code == 404
    client.force_login(a.admin)
    client.post(reverse("access-grant-revoke", args=["alpha", grant.pk]))
    grant.refresh_from_db()
    assert grant.revoked_by == a.admin and not grant.is_active


def test_api_routes_a_flag_to_an_advisor(api_client, world):
    a, _ = world
    api_client.force_login(a.admin)
    made = api_client.post(f"{API}/flags/", {"student": a.loose[0].pk, "reason": "x", "assigned_to": a.advisor.pk},
                           format="json")
    assert made.status_code == 201 and made.json()["assigned_to"] == a.advisor.pk
    refused = api_client.post(f"{API}/flags/", {"student": a.loose[0].pk, "reason": "x",
                                                "assigned_to": a.viewer.pk}, format="json")
    assert refused.status_code == 400 and "assigned_to" in refused.json().get("errors", refused.json())
    api_client.force_login(a.advisor)
    assert api_client.get(f"{API}/students/{a.loose[0].pk}/").status_code == 200


def test_a_flag_raised_on_the_profile_and_routed_to_a_colleague_shows_them_the_student(client, world):
    a, _ = world
    student = a.students[1]
    client.force_login(a.colleague)
    assert page(client, "student-detail", student.pk).status_code == 404
    client.force_login(a.advisor)
    profile = page(client, "student-detail", student.pk)
    assert f'value="{a.colleague.pk}"' in profile.content.decode()  # the "Route to" choice
    url = reverse("flag-create", args=["alpha", student.pk])
    client.post(url, {"reason": "needs a tutor", "assigned_to": a.viewer.pk})  # not a choice: refused
    assert not Flag.objects.for_institution(a.institution).filter(student=student, reason="needs a tutor").exists()
    client.post(url, {"reason": "needs a tutor", "assigned_to": a.colleague.pk})
    flag = Flag.objects.for_institution(a.institution).get(student=student, reason="needs a tutor")
    assert flag.assigned_to == a.colleague
    client.force_login(a.colleague)
    assert page(client, "student-detail", student.pk).status_code == 200
