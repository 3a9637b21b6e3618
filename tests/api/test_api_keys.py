"""API keys: shown once, stored hashed, bound to one institution, limited by scopes."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from dropout_platform.api_urls import router
from institutions.api_keys import api_key_revoke
from institutions.models import ApiKey
from students.models import Student, StudentChange

pytestmark = pytest.mark.django_db


def students_url(slug, pk=None):
    return reverse("api-student-list", args=[slug]) if pk is None else reverse("api-student-detail", args=[slug, pk])


def test_key_is_stored_as_sha256_and_only_its_prefix_is_visible(tenant_a, make_key):
    api_key, raw = make_key(tenant_a)
    stored = ApiKey.objects.for_institution(tenant_a.institution).get(pk=api_key.pk)
    assert raw.startswith(stored.display_prefix + "_")
    assert stored.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in str(ApiKey.objects.for_institution(tenant_a.institution).values().get(pk=api_key.pk))


def test_key_reads_its_own_institutions_students_only(tenants, client_a):
    a, _b = tenants
    response = client_a.get(students_url("alpha"))
    assert response.status_code == 200
    assert {row["id"] for row in response.json()["results"]} == {s.pk for s in a.students}


def _institution_routes():
    return [(prefix, basename) for prefix, _viewset, basename in router.registry]


@pytest.mark.parametrize(("prefix", "basename"), _institution_routes())
@pytest.mark.parametrize("method", ["get", "post"])
def test_key_of_a_gets_404_on_every_resource_of_b(tenants, client_a, prefix, basename, method):
    url = f"/api/v1/institutions/beta/{prefix}/"
    response = getattr(client_a, method)(url, {}, format="json")
    missing = getattr(client_a, method)(f"/api/v1/institutions/no-such-place/{prefix}/", {}, format="json")
    assert response.status_code == 404, (url, response.status_code)
    assert response.json() == missing.json() == {"code": "not_found", "message": "Not found.", "errors": {}}


@pytest.mark.parametrize("path", [
    "students/bulk-upsert/", "caseload-assignments/", "activity-events/recompute-features/", "imports/",
    "students/{student}/prediction/", "students/{student}/predictions/",
])
@pytest.mark.parametrize("method", ["get", "post"])
def test_key_of_a_gets_404_on_bs_non_router_endpoints(tenants, client_a, path, method):
    _a, b = tenants
    url = "/api/v1/institutions/beta/" + path.format(student=b.students[0].pk)
    response = getattr(client_a, method)(url, {}, format="json")
    assert response.status_code == 404, (url, response.status_code)
    assert response.json() == {"code": "not_found", "message": "Not found.", "errors": {}}


@pytest.mark.parametrize("method", ["get", "patch", "put", "delete"])
def test_key_of_a_gets_404_on_bs_student_through_either_url(tenants, client_a, method):
    _a, b = tenants
    target = b.students[0]
    for slug in ("alpha", "beta"):
        response = getattr(client_a, method)(students_url(slug, target.pk), {"name": "hijacked"}, format="json")
        assert response.status_code == 404
    target.refresh_from_db()
    assert target.name != "hijacked"


def test_key_of_a_cannot_read_institution_b(tenants, client_a):
    assert client_a.get(reverse("api-institution-detail", args=["beta"])).status_code == 404
    assert client_a.get(reverse("api-institution-detail", args=["alpha"])).json()["slug"] == "alpha"


def test_read_scope_reads_but_cannot_write(tenant_a, make_key, key_client):
    _key, raw = make_key(tenant_a, scopes=["students:read"])
    client = key_client(raw)
    assert client.get(students_url("alpha")).status_code == 200
    response = client.patch(students_url("alpha", tenant_a.students[0].pk), {"name": "x"}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert client.post(students_url("alpha"), {"external_id": "NEW"}, format="json").status_code == 403


def test_scopes_are_per_resource_family(tenant_a, make_key, key_client):
    _key, raw = make_key(tenant_a, scopes=["features:read"])
    client = key_client(raw)
    assert client.get(reverse("api-feature-list", args=["alpha"])).status_code == 200
    assert client.get(students_url("alpha")).status_code == 403
    assert client.get(reverse("api-job-list", args=["alpha"])).status_code == 403
    payload = {"key": "attendance", "label": "Attendance", "kind": "numeric"}
    assert client.post(reverse("api-feature-list", args=["alpha"]), payload, format="json").status_code == 403


def test_write_scope_creates_and_records_the_keys_service_user(tenant_a, make_key, key_client):
    api_key, raw = make_key(tenant_a, scopes=["students:write"])
    response = key_client(raw).post(students_url("alpha"), {"external_id": "K1", "program": "Law"}, format="json")
    assert response.status_code == 201, response.json()
    student = Student.objects.for_institution(tenant_a.institution).get(external_id="K1")
    change = StudentChange.objects.for_institution(tenant_a.institution).get(student=student)
    assert change.actor_id == api_key.service_user_id


@pytest.mark.parametrize("state", ["revoked", "expired", "wrong_secret", "malformed", "other_institution_id"])
def test_unusable_keys_get_401(tenant_a, make_key, key_client, state):
    api_key, raw = make_key(tenant_a)
    if state == "revoked":
        api_key_revoke(institution=tenant_a.institution, api_key=api_key)
    elif state == "expired":
        ApiKey.objects.for_institution(tenant_a.institution).filter(pk=api_key.pk).update(
            expires_at=timezone.now() - timedelta(seconds=1))
    elif state == "wrong_secret":
        raw = raw[:-4] + ("AAAA" if not raw.endswith("AAAA") else "BBBB")
    elif state == "malformed":
        raw = "not-a-key"
    else:
        raw = raw.replace(f"dpk_{tenant_a.institution.pk}_", f"dpk_{tenant_a.institution.pk + 1000}_")
    response = key_client(raw).get(students_url("alpha"))
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert set(response.json()) == {"code", "message", "errors"}


def test_last_used_is_written_at_most_once_a_minute(tenant_a, make_key, key_client):
    api_key, raw = make_key(tenant_a)
    client = key_client(raw)
    client.get(students_url("alpha"))
    first = ApiKey.objects.for_institution(tenant_a.institution).get(pk=api_key.pk).last_used_at
    assert first is not None
    with CaptureQueriesContext(connection) as queries:
        client.get(students_url("alpha"))
    assert not [q for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    assert ApiKey.objects.for_institution(tenant_a.institution).get(pk=api_key.pk).last_used_at == first


def test_admin_creates_key_on_the_page_and_sees_it_once(client, tenant_a):
    client.force_login(tenant_a.admin)
    url = reverse("api-key-list", args=["alpha"])
    response = client.post(url, {"name": "Nightly SIS", "expires": "90", "rate_per_minute": 600,
                                 "scope_students": "write", "scope_features": "read"})
    assert response.status_code == 201
    raw = response.context["raw_key"]
    assert raw in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    api_key = ApiKey.objects.for_institution(tenant_a.institution).get()
    assert api_key.scopes == ["students:write", "features:read"]
    assert api_key.expires_at > timezone.now() + timedelta(days=89)
    listing = client.get(url).content.decode()
    assert api_key.display_prefix in listing and raw not in listing


def test_key_form_without_any_scope_is_rejected(client, tenant_a):
    client.force_login(tenant_a.admin)
    response = client.post(reverse("api-key-list", args=["alpha"]),
                           {"name": "x", "expires": "never", "rate_per_minute": 10})
    assert response.status_code == 400
    assert "at least one" in response.content.decode()
    assert not ApiKey.objects.for_institution(tenant_a.institution).exists()


def test_revoked_key_stops_working_immediately(client, tenant_a, make_key, key_client):
    api_key, raw = make_key(tenant_a)
    assert key_client(raw).get(students_url("alpha")).status_code == 200
    client.force_login(tenant_a.admin)
    response = client.post(reverse("api-key-revoke", args=["alpha", api_key.pk]))
    assert response.status_code == 302
    assert key_client(raw).get(students_url("alpha")).status_code == 401


@pytest.mark.parametrize("role", ["advisor", "viewer"])
def test_only_admins_manage_keys(client, tenant_a, make_key, role):
    api_key, _raw = make_key(tenant_a)
    client.force_login(getattr(tenant_a, role))
    assert client.get(reverse("api-key-list", args=["alpha"])).status_code == 403
    assert client.post(reverse("api-key-revoke", args=["alpha", api_key.pk])).status_code == 403


def test_admin_of_a_cannot_see_or_revoke_bs_keys(client, tenants, make_key):
    a, b = tenants
    key_b, _raw_b = make_key(b)
    client.force_login(a.admin)
    assert client.get(reverse("api-key-list", args=["beta"])).status_code == 404
    assert client.post(reverse("api-key-revoke", args=["beta", key_b.pk])).status_code == 404
    assert client.post(reverse("api-key-revoke", args=["alpha", key_b.pk])).status_code == 404
    assert key_b.display_prefix not in client.get(reverse("api-key-list", args=["alpha"])).content.decode()
    key_b.refresh_from_db()
    assert key_b.revoked_at is None


@pytest.mark.parametrize(("scope", "allowed", "denied"), [
    ("interventions:read", ["flags/", "interventions/", "intervention-types/"], ["students/", "model-versions/"]),
    ("predictions:read", ["model-versions/"], ["flags/", "students/", "jobs/"]),
    ("imports:read", ["jobs/"], ["students/", "model-versions/", "activity-events/"]),
    ("activity:read", ["activity-events/"], ["students/", "features/"]),
    ("webhooks:read", ["webhooks/", "webhook-deliveries/"], ["students/", "jobs/"]),
])
def test_other_apps_endpoints_follow_the_key_scopes_through_the_shared_base(tenant_a, make_key, key_client,
                                                                            scope, allowed, denied):
    client = key_client(make_key(tenant_a, scopes=[scope])[1])
    for path in allowed:
        assert client.get(f"/api/v1/institutions/alpha/{path}").status_code == 200, path
    for path in denied:
        assert client.get(f"/api/v1/institutions/alpha/{path}").status_code == 403, path


def test_read_scope_cannot_trigger_long_work(tenant_a, make_key, key_client):
    client = key_client(make_key(tenant_a, scopes=["predictions:read", "activity:read"])[1])
    assert client.post("/api/v1/institutions/alpha/model-versions/retrain/").status_code == 403
    assert client.post("/api/v1/institutions/alpha/activity-events/recompute-features/",
                       {"term_start": "2026-01-01", "term_end": "2026-02-01"}, format="json").status_code == 403
