"""Errors and limits: one body shape, 400/413/429, ETag/304, stable sync pagination, bounded queries."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from students.models import Student
from tests.factories import StudentFactory

pytestmark = pytest.mark.django_db

ERROR_KEYS = {"code", "message", "errors"}


def students_url(slug="alpha", pk=None):
    return reverse("api-student-list", args=[slug]) if pk is None else reverse("api-student-detail", args=[slug, pk])


def test_malformed_json_is_a_400_with_the_error_shape(tenant_a, client_a):
    response = client_a.generic("POST", students_url(), '{"external_id": ', content_type="application/json")
    assert response.status_code == 400
    body = response.json()
    assert set(body) == ERROR_KEYS and body["code"] == "parse_error"
    assert not Student.objects.for_institution(tenant_a.institution).filter(external_id="").exists()


def test_wrong_types_are_a_400_naming_the_field(tenant_a, client_a):
    response = client_a.post(students_url(), {"external_id": "T1", "features": "lots", "outcome_date": 5},
                             format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid" and {"features", "outcome_date"} <= set(body["errors"])


def test_oversize_body_is_a_413_and_nothing_is_written(tenant_a, client_a, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"external_id": "BIG", "name": "x" * 2000})
    response = client_a.generic("POST", students_url(), body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"
    assert "limit is 1000 bytes" in response.json()["message"]
    assert not Student.objects.for_institution(tenant_a.institution).filter(external_id="BIG").exists()


def test_key_over_its_rate_gets_429_with_retry_after_and_other_keys_do_not(tenant_a, make_key, key_client):
    _slow, slow_raw = make_key(tenant_a, rate_per_minute=3)
    _other, other_raw = make_key(tenant_a)
    slow = key_client(slow_raw)
    assert [slow.get(students_url()).status_code for _ in range(3)] == [200, 200, 200]
    limited = slow.get(students_url())
    assert limited.status_code == 429
    assert 1 <= int(limited["Retry-After"]) <= 61
    assert set(limited.json()) == ERROR_KEYS and limited.json()["code"] == "throttled"
    assert key_client(other_raw).get(students_url()).status_code == 200


def test_rate_window_counter_expires_on_redis(tenant_a, make_key, key_client):
    from django.core.cache import cache

    backend = getattr(cache, "_cache", None)
    if not hasattr(backend, "get_client"):
        pytest.skip("needs REDIS_URL (the rate-limit counters live in Redis)")
    key, raw = make_key(tenant_a, rate_per_minute=50)
    client = key_client(raw)
    assert [client.get(students_url()).status_code for _ in range(3)] == [200, 200, 200]
    redis = backend.get_client(write=False)
    counters = redis.keys(f"*throttle:apikey:{key.pk}:{key.prefix}:*")
    assert len(counters) == 1 and int(redis.get(counters[0])) == 3
    assert 0 < redis.ttl(counters[0]) <= 120  # set with the window's first request, not renewed forever


def test_read_has_etag_and_unchanged_read_is_304(tenant_a, client_a):
    first = client_a.get(students_url())
    etag = first["ETag"]
    assert first.status_code == 200 and etag.startswith('"')
    again = client_a.get(students_url(), HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again.content == b"" and again["ETag"] == etag
    detail = client_a.get(students_url(pk=tenant_a.students[0].pk))
    assert client_a.get(students_url(pk=tenant_a.students[0].pk),
                        HTTP_IF_NONE_MATCH=detail["ETag"]).status_code == 304


def test_etag_changes_when_the_data_changes(tenant_a, client_a):
    etag = client_a.get(students_url())["ETag"]
    client_a.patch(students_url(pk=tenant_a.students[0].pk), {"name": "Renamed"}, format="json")
    changed = client_a.get(students_url(), HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed["ETag"] != etag
    assert "Renamed" in {row["name"] for row in changed.json()["results"]}


def test_etag_differs_between_institutions_with_identical_ids(tenants, make_key, key_client):
    a, b = tenants
    etag_a = key_client(make_key(a)[1]).get(students_url("alpha"))["ETag"]
    response_b = key_client(make_key(b)[1]).get(students_url("beta"), HTTP_IF_NONE_MATCH=etag_a)
    assert response_b.status_code == 200


def _walk(client, url, params):
    rows, pages, next_url = [], 0, None
    response = client.get(url, params)
    while True:
        assert response.status_code == 200, response.json()
        body = response.json()
        assert "count" not in body
        rows.extend(body["results"])
        pages += 1
        next_url = body["next"]
        if not next_url:
            return rows, pages
        response = client.get(next_url)


def test_updated_since_pages_by_cursor_and_a_change_mid_sync_is_not_skipped(tenant_a, client_a):
    url = students_url()
    first_page = client_a.get(url, {"updated_since": "2000-01-01T00:00:00Z", "page_size": 2}).json()
    assert len(first_page["results"]) == 2 and first_page["next"]
    # A row the sync has already passed changes: it must come again, at the end.
    seen = first_page["results"][0]["id"]
    client_a.patch(students_url(pk=seen), {"name": "Changed mid-sync"}, format="json")
    rows, _pages = _walk(client_a, first_page["next"], {})
    ids = [row["id"] for row in first_page["results"]] + [row["id"] for row in rows]
    assert set(ids) == {s.pk for s in tenant_a.students}
    assert ids[-1] == seen


def test_sync_pages_are_ordered_by_updated_at_then_id(tenant_a, client_a):
    rows, pages = _walk(client_a, students_url(), {"updated_since": "2000-01-01T00:00:00Z", "page_size": 4})
    assert pages == 2
    keys = [(row["updated_at"], row["id"]) for row in rows]
    assert keys == sorted(keys) and len(keys) == len(tenant_a.students)


def test_bad_cursor_is_a_400(tenant_a, client_a):
    response = client_a.get(students_url(), {"cursor": "garbage"})
    assert response.status_code == 400 and "cursor" in response.json()["errors"]


def test_page_numbers_still_work_for_browsing(tenant_a, client_a):
    body = client_a.get(students_url(), {"page_size": 4, "page": 2}).json()
    assert body["count"] == 6 and len(body["results"]) == 2 and body["previous"]


def test_queries_per_list_request_do_not_grow_with_page_size(tenant_a, client_a):
    for i in range(60):
        StudentFactory(institution=tenant_a.institution, external_id=f"Q{i:03d}", advisor=tenant_a.advisor)
    counts = {}
    for size in (5, 50):
        client_a.get(students_url(), {"page_size": size})  # warm: last_used_at is written on first use
        with CaptureQueriesContext(connection) as queries:
            response = client_a.get(students_url(), {"page_size": size})
        assert len(response.json()["results"]) == size
        counts[size] = len(queries.captured_queries)
    assert counts[5] == counts[50], counts


def test_openapi_schema_validates_without_warnings(tmp_path):
    # --fail-on-warn turns every warning (an untyped path parameter, an unresolvable serializer,
    # an enum name collision) into an error, as CI does.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    schema = (tmp_path / "schema.yaml").read_text()
    assert "/api/v1/institutions/{institution_slug}/students/" in schema
    assert "scheme: bearer" in schema
    # Every operation documents the shared error body, so the fuzz test validates error answers too.
    assert "'429':" in schema and "#/components/schemas/Error" in schema


def test_interactive_docs_are_served_without_a_cdn(client, tenant_a):
    client.force_login(tenant_a.admin)
    response = client.get("/api/v1/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html and "cdn" not in html.lower()
