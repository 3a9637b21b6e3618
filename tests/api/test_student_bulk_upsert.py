"""Bulk upsert of students by external id: all or nothing, idempotent, inside one institution."""

from __future__ import annotations

import pytest

from students.models import Student, StudentChange

pytestmark = pytest.mark.django_db

URL = "/api/v1/institutions/{}/students/bulk-upsert/"


def test_bulk_upsert_creates_updates_and_is_idempotent(tenant_a, client_a):
    batch = [
        {"external_id": "S001", "program": "Law", "features": {"units_approved": 12}},
        {"external_id": "N100", "name": "New Student", "cohort": "2026", "features": {"gender": "m"}},
    ]
    response = client_a.post(URL.format("alpha"), {"students": batch}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["created"], body["updated"], body["unchanged"]) == (1, 1, 0)
    s001 = Student.objects.for_institution(tenant_a.institution).get(external_id="S001")
    assert s001.program == "Law" and s001.features["units_approved"] == 12.0
    assert s001.features["gender"] == "f"  # untouched values are kept
    again = client_a.post(URL.format("alpha"), {"students": batch}, format="json").json()
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 2)
    assert StudentChange.objects.for_institution(tenant_a.institution).filter(student=s001).count() == 1


def test_one_bad_row_refuses_the_batch(tenant_a, client_a):
    batch = [
        {"external_id": "N200"},
        {"external_id": "N201", "features": {"units_approved": 99}},
        {"program": "no id"},
        {"external_id": "N200"},
    ]
    response = client_a.post(URL.format("alpha"), {"students": batch}, format="json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"1", "2", "3"}
    assert "outside the valid range" in str(errors["1"]) and "twice" in str(errors["3"])
    assert not Student.objects.for_institution(tenant_a.institution).filter(external_id__startswith="N2").exists()


def test_bulk_upsert_never_touches_another_institution(tenants, client_a):
    _a, b = tenants
    response = client_a.post(URL.format("alpha"), {"students": [{"external_id": "S002", "name": "Only A"}]},
                             format="json")
    assert response.json()["updated"] == 1
    assert Student.objects.for_institution(b.institution).get(external_id="S002").name != "Only A"
    assert client_a.post(URL.format("beta"), {"students": [{"external_id": "X"}]}, format="json").status_code == 404
    advisor_b = client_a.post(URL.format("alpha"), {"students": [{"external_id": "S003", "advisor": b.advisor.pk}]},
                              format="json")
    assert advisor_b.status_code == 400 and "advisor" in advisor_b.json()["errors"]["0"]


def test_bulk_upsert_needs_students_write(tenant_a, make_key, key_client):
    client = key_client(make_key(tenant_a, scopes=["students:read"])[1])
    response = client.post(URL.format("alpha"), {"students": [{"external_id": "S001"}]}, format="json")
    assert response.status_code == 403


@pytest.mark.parametrize("body", [{}, {"students": []}, {"students": "all"}])
def test_malformed_bulk_bodies_are_400(tenant_a, client_a, body):
    assert client_a.post(URL.format("alpha"), body, format="json").status_code == 400


@pytest.mark.parametrize("number", [b"1" + b"0" * 400, b"-" + b"9" * 1000])
def test_a_number_too_large_for_any_float_is_a_400_naming_the_feature(tenants, client_a, number):
    before = [Student.objects.for_institution(t.institution).count() for t in tenants]
    body = b'{"students": [{"external_id": "Q1", "features": {"units_approved": ' + number + b"}}]}"
    response = client_a.post(URL.format("alpha"), body, content_type="application/json")
    assert response.status_code == 400
    assert "too large" in str(response.json()["errors"]["0"]["features"]["units_approved"])
    assert [Student.objects.for_institution(t.institution).count() for t in tenants] == before
