import datetime

import pytest
from django.urls import reverse

from interventions.models import Flag, Intervention, InterventionStatus
from interventions.services import intervention_type_create_defaults
from students.models import Student, StudentChange
from tests.factories import (
    FlagFactory,
    InterventionFactory,
    InterventionTypeFactory,
    MembershipFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

TODAY = datetime.date.today()


def url(name, slug, *args):
    return reverse(name, args=[slug, *args])


@pytest.fixture
def world(tenants):
    a, b = tenants
    a.meeting = InterventionTypeFactory(institution=a.institution, key="meeting", label="Meeting")
    b.meeting = InterventionTypeFactory(institution=b.institution, key="meeting", label="Meeting")
    a.intervention = InterventionFactory(institution=a.institution, student=a.students[0],
                                         intervention_type=a.meeting, author=a.advisor)
    b.intervention = InterventionFactory(institution=b.institution, student=b.students[0],
                                         intervention_type=b.meeting, author=b.advisor, notes="B secret")
    a.flag = FlagFactory(institution=a.institution, student=a.students[1], raised_by=a.advisor)
    b.flag = FlagFactory(institution=b.institution, student=b.students[1], raised_by=b.advisor)
    return a, b


def test_advisor_logs_an_intervention_and_it_is_stored_with_them_as_author(api_client, world):
    a, _ = world
    api_client.force_authenticate(a.advisor)
    response = api_client.post(url("api-intervention-list", "alpha"), {
        "student": a.students[2].pk, "intervention_type": a.meeting.pk, "date": str(TODAY),
        "notes": "Agreed a study plan", "follow_up_date": str(TODAY + datetime.timedelta(days=7)),
    })
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "open" and body["author"] == a.advisor.pk and body["notes"] == "Agreed a study plan"
    stored = Intervention.objects.for_institution(a.institution).get(pk=body["id"])
    assert stored.student_id == a.students[2].pk and stored.author_id == a.advisor.pk


def test_list_returns_only_own_institutions_interventions(api_client, world):
    a, b = world
    api_client.force_authenticate(a.admin)
    response = api_client.get(url("api-intervention-list", "alpha"))
    assert response.status_code == 200
    ids = {row["id"] for row in response.json()["results"]}
    assert ids == {a.intervention.pk}
    assert b.intervention.pk not in ids


def test_cannot_list_another_institutions_interventions(api_client, world):
    a, _ = world
    api_client.force_authenticate(a.admin)
    response = api_client.get(url("api-intervention-list", "beta"))
    missing = api_client.get(url("api-intervention-list", "no-such-place"))
    assert response.status_code == missing.status_code == 404
    assert response.json() == missing.json()


@pytest.mark.parametrize("method", ["get", "patch", "put"])
def test_cannot_access_another_institutions_intervention_through_own_url(api_client, world, method):
    a, b = world
    api_client.force_authenticate(a.admin)
    target = url("api-intervention-detail", "alpha", b.intervention.pk)
    response = getattr(api_client, method)(target, {"notes": "overwritten"})
    assert response.status_code == 404
    assert response.json() == api_client.get(url("api-intervention-detail", "alpha", 999999)).json()
    b.intervention.refresh_from_db()
    assert b.intervention.notes == "B secret"


def test_cannot_close_another_institutions_intervention(api_client, world):
    a, b = world
    api_client.force_authenticate(a.admin)
    response = api_client.post(url("api-intervention-close", "alpha", b.intervention.pk), {"outcome": "resolved"})
    assert response.status_code == 404
    b.intervention.refresh_from_db()
    assert b.intervention.status == InterventionStatus.OPEN


def test_intervention_for_another_institutions_student_or_type_is_rejected(api_client, world):
    a, b = world
    api_client.force_authenticate(a.advisor)
    response = api_client.post(url("api-intervention-list", "alpha"), {
        "student": b.students[2].pk, "intervention_type": a.meeting.pk, "date": str(TODAY)})
    assert response.status_code == 400 and "student" in response.json()["errors"]
    response = api_client.post(url("api-intervention-list", "alpha"), {
        "student": a.students[2].pk, "intervention_type": b.meeting.pk, "date": str(TODAY)})
    assert response.status_code == 400 and "intervention_type" in response.json()["errors"]
    assert Intervention.objects.for_institution(a.institution).count() == 1


def test_follow_up_before_the_intervention_is_rejected_with_a_reason(api_client, world):
    a, _ = world
    api_client.force_authenticate(a.advisor)
    response = api_client.post(url("api-intervention-list", "alpha"), {
        "student": a.students[2].pk, "intervention_type": a.meeting.pk, "date": str(TODAY),
        "follow_up_date": str(TODAY - datetime.timedelta(days=1))})
    assert response.status_code == 400
    assert response.json()["errors"]["follow_up_date"] == ["must not be before the intervention's date"]


def test_viewer_cannot_read_or_write_interventions(api_client, world):
    a, _ = world
    api_client.force_authenticate(a.viewer)
    assert api_client.get(url("api-intervention-list", "alpha")).status_code == 403
    response = api_client.post(url("api-intervention-list", "alpha"), {
        "student": a.students[2].pk, "intervention_type": a.meeting.pk, "date": str(TODAY)})
    assert response.status_code == 403
    assert api_client.get(url("api-flag-list", "alpha")).status_code == 403


def test_confidential_notes_reach_only_author_and_admins(api_client, world):
    a, _ = world
    colleague = UserFactory(username="alpha-advisor-2")
    MembershipFactory(institution=a.institution, user=colleague, role="advisor")
    secret = InterventionFactory(institution=a.institution, student=a.students[3], intervention_type=a.meeting,
                                 author=a.advisor, notes="Family bereavement", confidential=True)
    for user, visible in ((a.advisor, True), (a.admin, True), (colleague, False)):
        api_client.force_authenticate(user)
        detail = api_client.get(url("api-intervention-detail", "alpha", secret.pk)).json()
        listed = {row["id"]: row for row in api_client.get(url("api-intervention-list", "alpha")).json()["results"]}
        assert ("Family bereavement" in detail["notes"]) is visible
        assert ("Family bereavement" in listed[secret.pk]["notes"]) is visible
        assert detail["notes_visible"] is visible


def test_only_author_or_admin_can_edit_or_close(api_client, world):
    a, _ = world
    colleague = UserFactory(username="alpha-advisor-2")
    MembershipFactory(institution=a.institution, user=colleague, role="advisor")
    api_client.force_authenticate(colleague)
    target = url("api-intervention-detail", "alpha", a.intervention.pk)
    assert api_client.patch(target, {"notes": "mine now"}).status_code == 400
    api_client.force_authenticate(a.admin)
    assert api_client.patch(target, {"notes": "corrected by admin"}).status_code == 200
    a.intervention.refresh_from_db()
    assert a.intervention.notes == "corrected by admin"


def test_closing_records_the_outcome_and_a_second_close_is_refused(api_client, world):
    a, _ = world
    api_client.force_authenticate(a.advisor)
    close = url("api-intervention-close", "alpha", a.intervention.pk)
    response = api_client.post(close, {"outcome": "improved", "outcome_notes": "Passed the resit"})
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "closed" and response.json()["outcome"] == "improved"
    assert response.json()["closed_at"]
    again = api_client.post(close, {"outcome": "resolved"})
    assert again.status_code == 400 and "status" in again.json()["errors"]
    assert api_client.post(url("api-intervention-close", "alpha", a.intervention.pk), {"outcome": "bogus"}) \
        .status_code == 400


def test_interventions_filter_by_status_student_and_overdue(api_client, world):
    a, _ = world
    late = InterventionFactory(institution=a.institution, student=a.students[4], intervention_type=a.meeting,
                               author=a.advisor, date=TODAY - datetime.timedelta(days=20),
                               follow_up_date=TODAY - datetime.timedelta(days=3))
    api_client.force_authenticate(a.advisor)
    rows = api_client.get(url("api-intervention-list", "alpha"), {"overdue": "true"}).json()["results"]
    assert [row["id"] for row in rows] == [late.pk] and rows[0]["overdue"] is True
    rows = api_client.get(url("api-intervention-list", "alpha"), {"student": a.students[0].pk}).json()["results"]
    assert [row["id"] for row in rows] == [a.intervention.pk]
    rows = api_client.get(url("api-intervention-list", "alpha"), {"status": "closed"}).json()["results"]
    assert rows == []


def test_intervention_types_list_the_institution_defaults_and_only_admins_configure_them(api_client, tenants):
    a, b = tenants
    for tenant in tenants:  # what institution_create gives a new institution
        intervention_type_create_defaults(institution=tenant.institution)
    api_client.force_authenticate(a.advisor)
    rows = api_client.get(url("api-intervention-type-list", "alpha")).json()
    keys = [row["key"] for row in rows]
    assert keys[:3] == ["meeting", "call", "email"] and "referral_financial_aid" in keys and "other" in keys
    assert api_client.post(url("api-intervention-type-list", "alpha"), {"key": "x", "label": "X"}).status_code == 403
    api_client.force_authenticate(a.admin)
    response = api_client.post(url("api-intervention-type-list", "alpha"), {"key": "home_visit", "label": "Home visit"})
    assert response.status_code == 201
    duplicate = api_client.post(url("api-intervention-type-list", "alpha"), {"key": "home_visit", "label": "Again"})
    assert duplicate.status_code == 400
    api_client.force_authenticate(b.admin)
    keys_b = [row["key"] for row in api_client.get(url("api-intervention-type-list", "beta")).json()]
    assert "home_visit" not in keys_b


def test_inactive_type_cannot_be_logged(api_client, world):
    a, _ = world
    a.meeting.is_active = False
    a.meeting.save()
    api_client.force_authenticate(a.advisor)
    response = api_client.post(url("api-intervention-list", "alpha"), {
        "student": a.students[2].pk, "intervention_type": a.meeting.pk, "date": str(TODAY)})
    assert response.status_code == 400 and "intervention_type" in response.json()["errors"]


def test_staff_raise_a_flag_with_a_reason_and_resolve_it(api_client, world):
    a, _ = world
    api_client.force_authenticate(a.advisor)
    response = api_client.post(url("api-flag-list", "alpha"), {"student": a.students[5].pk, "reason": "  "})
    assert response.status_code == 400 and "reason" in response.json()["errors"]
    response = api_client.post(url("api-flag-list", "alpha"),
                               {"student": a.students[5].pk, "reason": "Stopped attending"})
    assert response.status_code == 201
    flag_id = response.json()["id"]
    assert response.json()["source"] == "manual" and response.json()["raised_by"] == a.advisor.pk
    api_client.force_authenticate(a.admin)
    assert api_client.post(url("api-flag-resolve", "alpha", flag_id), {"resolution": ""}).status_code == 400
    response = api_client.post(url("api-flag-resolve", "alpha", flag_id), {"resolution": "Back in class"})
    assert response.status_code == 200
    assert response.json()["is_open"] is False and response.json()["resolved_by"] == a.admin.pk
    api_client.force_authenticate(a.advisor)
    mine = api_client.get(url("api-flag-list", "alpha"), {"raised_by": a.advisor.pk, "is_open": "false"}).json()
    assert [row["resolution"] for row in mine["results"]] == ["Back in class"]


def test_flags_are_isolated_between_institutions(api_client, world):
    a, b = world
    api_client.force_authenticate(a.admin)
    ids = {row["id"] for row in api_client.get(url("api-flag-list", "alpha")).json()["results"]}
    assert ids == {a.flag.pk}
    assert api_client.get(url("api-flag-detail", "alpha", b.flag.pk)).status_code == 404
    assert api_client.post(url("api-flag-resolve", "alpha", b.flag.pk), {"resolution": "x"}).status_code == 404
    response = api_client.post(url("api-flag-list", "alpha"), {"student": b.students[0].pk, "reason": "x"})
    assert response.status_code == 400
    assert Flag.objects.for_institution(b.institution).get(pk=b.flag.pk).resolved_at is None


def test_admin_assigns_students_to_an_advisor_in_bulk(api_client, world):
    a, _ = world
    other = UserFactory(username="alpha-advisor-2")
    MembershipFactory(institution=a.institution, user=other, role="advisor")
    api_client.force_authenticate(a.admin)
    ids = [s.pk for s in a.students[:4]]
    response = api_client.post(url("api-caseload-assignment", "alpha"), {"advisor": other.pk, "students": ids})
    assert response.status_code == 200, response.json()
    assert response.json() == {"advisor": other.pk, "assigned": 4, "unchanged": 0}
    assert set(Student.objects.for_institution(a.institution).filter(advisor=other).values_list("pk", flat=True)) \
        == set(ids)
    assert StudentChange.objects.for_institution(a.institution).filter(changes__advisor=[a.advisor.pk, other.pk]) \
        .count() == 4
    again = api_client.post(url("api-caseload-assignment", "alpha"), {"advisor": other.pk, "students": ids})
    assert again.json() == {"advisor": other.pk, "assigned": 0, "unchanged": 4}


def test_caseload_assignment_rejects_other_institutions_students_and_advisors_writing_nothing(api_client, world):
    a, b = world
    api_client.force_authenticate(a.admin)
    response = api_client.post(url("api-caseload-assignment", "alpha"),
                               {"advisor": a.admin.pk, "students": [a.students[0].pk, b.students[0].pk]})
    assert response.status_code == 400 and "students" in response.json()["errors"]
    assert Student.objects.for_institution(a.institution).get(pk=a.students[0].pk).advisor_id == a.advisor.pk
    response = api_client.post(url("api-caseload-assignment", "alpha"),
                               {"advisor": b.advisor.pk, "students": [a.students[0].pk]})
    assert response.status_code == 400 and "advisor" in response.json()["errors"]
    response = api_client.post(url("api-caseload-assignment", "alpha"),
                               {"advisor": a.viewer.pk, "students": [a.students[0].pk]})
    assert response.status_code == 400 and "advisor" in response.json()["errors"]
    assert Student.objects.for_institution(b.institution).get(pk=b.students[0].pk).advisor_id == b.advisor.pk


def test_only_admins_assign_caseloads(api_client, world):
    a, _ = world
    for user in (a.advisor, a.viewer):
        api_client.force_authenticate(user)
        response = api_client.post(url("api-caseload-assignment", "alpha"),
                                   {"advisor": a.advisor.pk, "students": [a.students[0].pk]})
        assert response.status_code == 403
    api_client.force_authenticate(a.admin)
    response = api_client.post(url("api-caseload-assignment", "beta"),
                               {"advisor": a.advisor.pk, "students": [a.students[0].pk]})
    assert response.status_code == 404


def test_api_key_reads_interventions_without_confidential_notes_and_writes_as_its_service_user(world):
    from rest_framework.test import APIClient

    from institutions.api_keys import api_key_create

    a, _b = world
    InterventionFactory(institution=a.institution, student=a.students[3], intervention_type=a.meeting,
                        author=a.advisor, notes="Family bereavement", confidential=True)
    api_key, raw = api_key_create(institution=a.institution, name="CRM", created_by=a.admin,
                                  scopes=["interventions:write", "students:read"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    rows = client.get(url("api-intervention-list", "alpha")).json()["results"]
    assert len(rows) == 2 and not any("Family bereavement" in row["notes"] for row in rows)
    assert client.get(url("api-intervention-list", "beta")).status_code == 404
    response = client.post(url("api-intervention-list", "alpha"), {
        "student": a.students[2].pk, "intervention_type": a.meeting.pk, "date": str(TODAY), "notes": "From the CRM"})
    assert response.status_code == 201, response.json()
    assert response.json()["author"] == api_key.service_user_id
    _read_only, raw_read = api_key_create(institution=a.institution, name="BI", created_by=a.admin,
                                         scopes=["interventions:read"])
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_read}")
    assert client.post(url("api-intervention-list", "alpha"), {
        "student": a.students[2].pk, "intervention_type": a.meeting.pk, "date": str(TODAY)}).status_code == 403
    assert client.post(url("api-caseload-assignment", "alpha"),
                       {"advisor": a.advisor.pk, "students": [a.students[0].pk]}).status_code == 403


def test_caseload_summary_counts_each_advisors_students_flags_and_overdue_follow_ups(api_client, world):
    a, b = world
    InterventionFactory(institution=a.institution, student=a.students[1], intervention_type=a.meeting,
                        author=a.advisor, date=TODAY - datetime.timedelta(days=9),
                        follow_up_date=TODAY - datetime.timedelta(days=2))
    Student.objects.for_institution(a.institution).filter(pk=a.students[4].pk).update(advisor=None)
    api_client.force_authenticate(a.advisor)
    rows = api_client.get(url("api-caseload-assignment", "alpha")).json()
    # Current students are 0, 1, 3, 4 (2 and 5 dropped out); students[1] has a staff flag.
    assert rows == [{"advisor": a.advisor.pk, "students": 3, "flagged": 1, "overdue_follow_ups": 1},
                    {"advisor": None, "students": 1, "flagged": 0, "overdue_follow_ups": 0}]
    api_client.force_authenticate(a.viewer)
    assert api_client.get(url("api-caseload-assignment", "alpha")).status_code == 403
    api_client.force_authenticate(b.admin)
    assert api_client.get(url("api-caseload-assignment", "alpha")).status_code == 404


@pytest.mark.parametrize("huge", [2**63, -(2**63) - 1, 10**30])
def test_ids_beyond_the_64_bit_range_are_a_clear_400_writing_nothing(api_client, world, huge):
    a, _ = world
    api_client.force_authenticate(a.admin)
    response = api_client.post(url("api-caseload-assignment", "alpha"),
                               {"advisor": a.admin.pk, "students": [a.students[0].pk, huge]})
    assert response.status_code == 400 and "students" in response.json()["errors"]
    assert Student.objects.for_institution(a.institution).get(pk=a.students[0].pk).advisor_id == a.advisor.pk
    response = api_client.post(url("api-caseload-assignment", "alpha"),
                               {"advisor": huge, "students": [a.students[0].pk]})
    assert response.status_code == 400 and "advisor" in response.json()["errors"]
    response = api_client.post(url("api-intervention-list", "alpha"),
                               {"student": huge, "intervention_type": a.meeting.pk, "date": TODAY.isoformat()})
    assert response.status_code == 400 and "student" in response.json()["errors"]
    response = api_client.post(url("api-flag-list", "alpha"), {"student": huge, "reason": "worried"})
    assert response.status_code == 400 and "student" in response.json()["errors"]
