"""Fixtures for the external-system API: keys for tenant A and B, and a client sending one."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from institutions.api_keys import ALL_SCOPES, api_key_create

from .receiver import start_receiver


@pytest.fixture
def make_key():
    def make(tenant, scopes=ALL_SCOPES, **kwargs):
        return api_key_create(institution=tenant.institution, name=kwargs.pop("name", "SIS"), scopes=list(scopes),
                              created_by=tenant.admin, **kwargs)
    return make


@pytest.fixture
def key_client():
    def client(raw_key: str) -> APIClient:
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
        return api
    return client


@pytest.fixture
def admin_key_a(tenant_a, make_key):
    return make_key(tenant_a)


@pytest.fixture
def client_a(admin_key_a, key_client):
    return key_client(admin_key_a[1])


@pytest.fixture
def receiver():
    """A real HTTP receiver on 127.0.0.1 (see receiver.py) for webhook tests."""
    receiver = start_receiver()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()
