import pytest
from django.urls import reverse

from students.models import Student, StudentChange
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def list_url(slug):
    return reverse("api-student-list", args=[slug])


def detail_url(slug, pk):
    return reverse("api-student-detail", args=[slug, pk])


def test_list_returns_only_own_institutions_students(api_client, tenants):
    a, _b = tenants
    api_client.force_authenticate(a.advisor)
    response = api_client.get(list_url("alpha"))
    assert response.status_code == 200
    assert response.data["count"] == len(a.students)
    assert {row["id"] for row in response.data["results"]} == {s.id for s in a.students}


def test_cannot_list_another_institutions_students(api_client, tenants):
    a, _ = tenants
    api_client.force_authenticate(a.admin)
    response = api_client.get(list_url("beta"))
    missing = api_client.get(list_url("no-such-place"))
    assert response.status_code == missing.status_code == 404
    assert response.json() == missing.json() == {"code": "not_found", "message": "Not found.", "errors": {}}


@pytest.mark.parametrize("method", ["get", "patch", "put", "delete"])
def test_cannot_access_another_institutions_student_through_own_url(api_client, tenants, method):
    a, b = tenants
    api_client.force_authenticate(a.admin)
    target = b.students[0]
    response = getattr(api_client, method)(detail_url("alpha", target.pk), {"name": "hijacked"}, format="json")
    missing = api_client.get(detail_url("alpha", 999999))
    assert response.status_code == 404
    assert response.json() == missing.json()
    target.refresh_from_db()
    assert target.name != "hijacked"
    assert Student.objects.for_institution(b.institution).filter(pk=target.pk).exists()


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_cannot_access_another_institutions_student_through_its_url(api_client, tenants, method):
    a, b = tenants
    api_client.force_authenticate(a.admin)
    response = getattr(api_client, method)(detail_url("beta", b.students[0].pk), {"name": "x"}, format="json")
    assert response.status_code == 404


def test_cannot_create_a_student_in_another_institution(api_client, tenants):
    a, _b = tenants
    api_client.force_authenticate(a.admin)
    response = api_client.post(list_url("beta"), {"external_id": "EVIL"}, format="json")
    assert response.status_code == 404
    assert not Student.objects.unscoped().filter(external_id="EVIL").exists()


def test_advisor_from_another_institution_is_rejected(api_client, tenants):
    a, b = tenants
    api_client.force_authenticate(a.admin)
    response = api_client.post(list_url("alpha"), {"external_id": "N1", "advisor": b.advisor.pk}, format="json")
    assert response.status_code == 400
    assert "advisor" in response.json()["errors"]
    response = api_client.patch(detail_url("alpha", a.students[0].pk), {"advisor": b.advisor.pk}, format="json")
    assert response.status_code == 400
    a.students[0].refresh_from_db()
    assert a.students[0].advisor_id == a.advisor.pk


def test_admin_creates_student_with_validated_features_and_history(api_client, tenant_a):
    api_client.force_authenticate(tenant_a.admin)
    response = api_client.post(
        list_url("alpha"),
        {"external_id": "N2", "program": "Law", "advisor": tenant_a.advisor.pk,
         "features": {"units_approved": "4", "tuition_up_to_date": "yes", "gender": "m"}},
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.data["features"] == {"units_approved": 4.0, "tuition_up_to_date": True, "gender": "m"}
    student = Student.objects.for_institution(tenant_a.institution).get(external_id="N2")
    change = StudentChange.objects.for_institution(tenant_a.institution).get(student=student)
    assert change.created and change.source == "api" and change.actor == tenant_a.admin


def test_feature_values_outside_the_schema_are_rejected_with_reasons(api_client, tenant_a):
    api_client.force_authenticate(tenant_a.admin)
    response = api_client.post(
        list_url("alpha"),
        {"external_id": "N3", "features": {"units_approved": 31, "gender": "x", "shoe_size": 9}},
        format="json",
    )
    assert response.status_code == 400
    errors = response.json()["errors"]["features"]
    assert "outside the valid range 0 to 30" in errors["units_approved"]
    assert "not one of the categories" in errors["gender"]
    assert "unknown feature" in errors["shoe_size"]
    assert not Student.objects.for_institution(tenant_a.institution).filter(external_id="N3").exists()


def test_duplicate_external_id_is_rejected(api_client, tenant_a):
    api_client.force_authenticate(tenant_a.admin)
    response = api_client.post(list_url("alpha"), {"external_id": "S001"}, format="json")
    assert response.status_code == 400
    assert "already exists" in response.json()["errors"]["external_id"][0]


def test_viewer_cannot_read_or_write_individual_students(api_client, tenant_a):
    api_client.force_authenticate(tenant_a.viewer)
    assert api_client.get(list_url("alpha")).status_code == 403
    assert api_client.post(list_url("alpha"), {"external_id": "V1"}, format="json").status_code == 403


def test_advisor_cannot_edit_student_records(api_client, tenant_a):
    api_client.force_authenticate(tenant_a.advisor)
    assert api_client.get(list_url("alpha")).status_code == 200
    assert api_client.patch(detail_url("alpha", tenant_a.students[0].pk), {"name": "x"}).status_code == 403


def test_user_without_membership_gets_404_and_anonymous_gets_401_or_403(api_client, tenant_a):
    api_client.force_authenticate(UserFactory(username="nobody"))
    assert api_client.get(list_url("alpha")).status_code == 404
    api_client.force_authenticate(None)
    assert api_client.get(list_url("alpha")).status_code in (401, 403)


def test_updated_since_returns_only_recently_changed_students(api_client, tenant_a):
    api_client.force_authenticate(tenant_a.admin)
    first = api_client.get(list_url("alpha")).data["results"]
    newest = max(row["updated_at"] for row in first)
    api_client.patch(detail_url("alpha", tenant_a.students[2].pk), {"name": "Changed"}, format="json")
    response = api_client.get(list_url("alpha"), {"updated_since": newest})
    ids = [row["id"] for row in response.data["results"]]
    assert tenant_a.students[2].pk in ids
    assert len(ids) <= 2


def test_feature_schema_is_per_institution(api_client, tenants):
    a, b = tenants
    api_client.force_authenticate(a.viewer)
    response = api_client.get(reverse("api-feature-list", args=["alpha"]))
    assert {row["id"] for row in response.data} == {f.id for f in a.features}
    assert api_client.get(reverse("api-feature-detail", args=["alpha", b.features[0].pk])).status_code == 404
    assert api_client.get(reverse("api-feature-list", args=["beta"])).status_code == 404


def test_only_admins_change_the_feature_schema(api_client, tenant_a):
    payload = {"key": "attendance", "label": "Attendance", "kind": "numeric", "min_value": 0, "max_value": 100}
    api_client.force_authenticate(tenant_a.advisor)
    assert api_client.post(reverse("api-feature-list", args=["alpha"]), payload, format="json").status_code == 403
    api_client.force_authenticate(tenant_a.admin)
    assert api_client.post(reverse("api-feature-list", args=["alpha"]), payload, format="json").status_code == 201
    dup = api_client.post(reverse("api-feature-list", args=["alpha"]), payload, format="json")
    assert dup.status_code == 400 and "already exists" in str(dup.json()["errors"])


def test_my_institutions_lists_only_memberships(api_client, tenants):
    a, _ = tenants
    api_client.force_authenticate(a.advisor)
    response = api_client.get(reverse("api-institution-list"))
    assert [row["institution"]["slug"] for row in response.data["results"]] == ["alpha"]


def test_jobs_are_per_institution(api_client, tenants):
    from institutions.jobs import job_create

    a, b = tenants
    job_b, _ = job_create(institution=b.institution, kind="rescore")
    api_client.force_authenticate(a.admin)
    assert api_client.get(reverse("api-job-list", args=["alpha"])).data["count"] == 0
    assert api_client.get(reverse("api-job-detail", args=["alpha", job_b.pk])).status_code == 404
