"""LMS activity events: all-or-nothing bulk ingestion, scoping, and derived features via a job."""

from __future__ import annotations

import pytest
from django.urls import reverse

from institutions.models import Job, JobStatus
from students.models import ActivityEvent, FeatureDefinition, Student

pytestmark = pytest.mark.django_db

URL = "/api/v1/institutions/{}/activity-events/"


def _events(n=3, student="S001", **extra):
    return [{"student": student, "timestamp": f"2026-02-{10 + i:02d}T09:00:00Z", "type": "view", "course": "MATH1",
             "count": i + 1, **extra} for i in range(n)]


def test_bulk_events_are_stored_for_the_right_student(tenants, client_a):
    a, b = tenants
    response = client_a.post(URL.format("alpha"), {"events": _events()}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json() == {"received": 3, "created": 3, "duplicates": 0}
    stored = ActivityEvent.objects.for_institution(a.institution)
    assert stored.count() == 3
    # Both institutions have a student S001: the event must attach to A's.
    assert set(stored.values_list("student_id", flat=True)) == {a.students[0].pk}
    assert not ActivityEvent.objects.for_institution(b.institution).exists()


def test_resending_events_with_ids_is_a_no_op(tenant_a, client_a):
    batch = [dict(event, id=f"lms-{i}") for i, event in enumerate(_events())]
    client_a.post(URL.format("alpha"), {"events": batch}, format="json")
    again = client_a.post(URL.format("alpha"), {"events": batch + batch}, format="json")
    assert again.json() == {"received": 6, "created": 0, "duplicates": 6}
    assert ActivityEvent.objects.for_institution(tenant_a.institution).count() == 3


def test_a_bad_event_refuses_the_whole_batch_with_reasons_per_item(tenant_a, client_a):
    batch = [
        *_events(2),
        {"student": "NOPE", "timestamp": "2026-02-01T00:00:00Z", "type": "view"},
        {"student": "S002", "timestamp": "yesterday", "type": "Bad Type", "count": 0},
        {"student": "S002", "timestamp": "2026-02-01T00:00:00", "type": "login", "colour": "red"},
    ]
    response = client_a.post(URL.format("alpha"), {"events": batch}, format="json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"2", "3", "4"}
    assert "no student with external id 'NOPE'" in errors["2"]["student"][0]
    assert set(errors["3"]) == {"timestamp", "type", "count"}
    assert "time zone" in errors["4"]["timestamp"][0] and "colour" in errors["4"]["non_field_errors"][0]
    assert not ActivityEvent.objects.for_institution(tenant_a.institution).exists()


def test_nul_characters_are_refused_not_a_server_error(tenant_a, client_a):
    # Found by fuzzing on PostgreSQL, which cannot store or compare strings containing NUL.
    batch = [{"student": "S0\x0001", "timestamp": "2026-02-01T00:00:00Z", "type": "view", "course": "A\x00",
              "id": "x\x00"}]
    response = client_a.post(URL.format("alpha"), {"events": batch}, format="json")
    assert response.status_code == 400
    assert set(response.json()["errors"]["0"]) == {"student", "course", "id"}


def test_unusual_offsets_are_stored_in_utc_and_impossible_dates_refused(tenant_a, client_a):
    batch = [{"student": "S001", "timestamp": "2026-02-01T00:00:00+23:30", "type": "view"},
             {"student": "S001", "timestamp": "0001-01-01T00:00:00+01:00", "type": "view"}]
    response = client_a.post(URL.format("alpha"), {"events": batch}, format="json")
    assert response.status_code == 400 and set(response.json()["errors"]) == {"1"}
    response = client_a.post(URL.format("alpha"), {"events": batch[:1]}, format="json")
    assert response.status_code == 201
    stored = ActivityEvent.objects.for_institution(tenant_a.institution).get()
    assert stored.occurred_at.isoformat() == "2026-01-31T00:30:00+00:00"


@pytest.mark.parametrize("body", [{}, {"events": "many"}, {"events": []}, [1, 2]])
def test_malformed_batches_are_400(tenant_a, client_a, body):
    response = client_a.post(URL.format("alpha"), body, format="json")
    assert response.status_code == 400 and response.json()["code"] == "invalid"


def test_another_institutions_student_ids_cannot_be_targeted(tenants, client_a):
    _a, b = tenants
    b_only = Student.objects.for_institution(b.institution).create(external_id="ONLY-B")
    response = client_a.post(URL.format("alpha"), {"events": _events(1, student=b_only.external_id)},
                             format="json")
    assert response.status_code == 400
    assert client_a.post(URL.format("beta"), {"events": _events(1)}, format="json").status_code == 404
    assert not ActivityEvent.objects.for_institution(b.institution).exists()


def test_activity_needs_the_activity_scope(tenant_a, make_key, key_client):
    client = key_client(make_key(tenant_a, scopes=["students:write"])[1])
    assert client.post(URL.format("alpha"), {"events": _events(1)}, format="json").status_code == 403
    reader = key_client(make_key(tenant_a, scopes=["activity:read"])[1])
    assert reader.get(URL.format("alpha")).status_code == 200
    assert reader.post(URL.format("alpha"), {"events": _events(1)}, format="json").status_code == 403


def test_events_are_listed_and_filtered_by_student_only_within_the_institution(tenants, client_a, make_key,
                                                                             key_client):
    _a, b = tenants
    client_a.post(URL.format("alpha"), {"events": _events(2) + _events(1, student="S002")}, format="json")
    key_client(make_key(b)[1]).post(URL.format("beta"), {"events": _events(4)}, format="json")
    rows = client_a.get(URL.format("alpha"), {"student": "S001"}).json()["results"]
    assert [(row["student"], row["count"]) for row in rows] == [("S001", 1), ("S001", 2)]
    assert client_a.get(URL.format("alpha")).json()["count"] == 3


def test_recompute_job_writes_derived_features_into_the_schema_and_students(tenant_a, client_a,
                                                                            django_capture_on_commit_callbacks):
    events = [
        {"student": "S001", "timestamp": "2026-01-05T10:00:00Z", "type": "login", "count": 2},
        {"student": "S001", "timestamp": "2026-01-05T18:00:00Z", "type": "view", "count": 3},
        {"student": "S001", "timestamp": "2026-02-20T10:00:00Z", "type": "forum", "count": 1},
        {"student": "S001", "timestamp": "2026-03-25T10:00:00Z", "type": "submit", "count": 4},
        {"student": "S001", "timestamp": "2025-12-01T10:00:00Z", "type": "view", "count": 50},  # before the term
    ]
    assert client_a.post(URL.format("alpha"), {"events": events}, format="json").status_code == 201
    with django_capture_on_commit_callbacks(execute=True):
        response = client_a.post(URL.format("alpha") + "recompute-features/", {
            "term_start": "2026-01-01", "term_end": "2026-03-31", "as_of": "2026-04-04T12:00:00Z"}, format="json")
    assert response.status_code == 202, response.json()
    job = Job.objects.for_institution(tenant_a.institution).get(pk=response.json()["id"])
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert response["Location"].endswith(f"/jobs/{job.pk}/")
    active = Student.objects.for_institution(tenant_a.institution).get(external_id="S001").features
    # Term of 90 days: thirds end on Jan 31 and Mar 2; as_of after the term counts from its end (Apr 1).
    assert {key: active[key] for key in active if key.startswith("activity_")} == {
        "activity_total": 10.0, "activity_active_days": 3.0, "activity_early": 5.0, "activity_middle": 1.0,
        "activity_late": 4.0, "activity_days_since_last": 7.0, "activity_duration_days": 79.0,
    }
    idle = Student.objects.for_institution(tenant_a.institution).get(external_id="S002").features
    assert idle["activity_total"] == 0.0 and idle["activity_days_since_last"] == 90.0
    assert idle["units_approved"] == 2.0  # other features untouched
    keys = {row["key"] for row in client_a.get(reverse("api-feature-list", args=["alpha"])).json()}
    assert {"activity_total", "activity_early", "activity_late", "activity_days_since_last"} <= keys
    assert FeatureDefinition.objects.for_institution(tenant_a.institution).get(key="activity_total").actionable


def test_recompute_rejects_a_reversed_term(tenant_a, client_a):
    response = client_a.post(URL.format("alpha") + "recompute-features/",
                             {"term_start": "2026-03-01", "term_end": "2026-01-01"}, format="json")
    assert response.status_code == 400 and "term_end" in response.json()["errors"]
