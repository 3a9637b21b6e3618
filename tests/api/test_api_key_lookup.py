"""Authenticating a key loads the key with its institution and service user in one read, and
finds nothing for another institution, an unknown prefix, a wrong secret or an impossible id."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from institutions.api_keys import api_key_authenticate
from institutions.models import ApiKey, Institution

pytestmark = pytest.mark.django_db


def field_values(instance) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in type(instance)._meta.concrete_fields}


def test_authenticated_key_carries_its_institution_and_user_without_further_queries(tenant_a, make_key):
    api_key, raw = make_key(tenant_a, scopes=["students:read", "predictions:write"],
                            expires_at=timezone.now() + timedelta(days=3), rate_per_minute=77)
    ApiKey.objects.unscoped().filter(pk=api_key.pk).update(last_used_at=timezone.now() - timedelta(hours=1))

    found = api_key_authenticate(raw_key=raw)

    orm = ApiKey.objects.unscoped().select_related("institution", "service_user").get(pk=api_key.pk)
    assert type(found) is ApiKey and found.pk == api_key.pk
    expected_key = field_values(orm)
    expected_key["last_used_at"] = found.last_used_at  # authenticate has just touched it
    assert field_values(found) == expected_key
    assert found.scopes == ["students:read", "predictions:write"]
    with CaptureQueriesContext(connection) as queries:
        assert type(found.institution) is Institution and type(found.service_user) is get_user_model()
        assert field_values(found.institution) == field_values(orm.institution)
        assert field_values(found.service_user) == field_values(orm.service_user)
    assert queries.captured_queries == []


def test_lookup_rejects_wrong_institution_prefix_secret_and_out_of_range_ids(tenants, make_key):
    a, b = tenants
    _key, raw = make_key(a)
    _, institution_id, prefix, secret = raw.split("_", 3)
    assert api_key_authenticate(raw_key=raw) is not None
    assert api_key_authenticate(raw_key=f"dpk_{b.institution.pk}_{prefix}_{secret}") is None
    assert api_key_authenticate(raw_key=f"dpk_{institution_id}_ffffffff_{secret}") is None
    assert api_key_authenticate(raw_key=f"dpk_{institution_id}_{prefix}_{secret}x") is None
    assert api_key_authenticate(raw_key=f"dpk_{10**30}_{prefix}_{secret}") is None
