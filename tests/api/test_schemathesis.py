"""Fuzz every documented endpoint with schemathesis, authenticated with a valid admin API key.

Requests are generated from the live OpenAPI schema (/api/v1/schema/, served by the app over
WSGI) and sent to the app with institution A's key. Every response must be free of server
errors and, where the schema documents the status, match the documented response schema.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance
from schemathesis.config import SchemathesisConfig

from dropout_platform.wsgi import application
from institutions.api_keys import ALL_SCOPES, api_key_create

MAX_EXAMPLES = 12
pytestmark = pytest.mark.slow  # about a minute; runs in `make test` like everything else


@pytest.fixture(autouse=True)
def keep_the_test_transactions_connection_open():
    """Requests go straight to the WSGI app, so Django's request signals close "old" database
    connections; inside the test's transaction that would close the connection under the test
    (PostgreSQL). Django's own test client disconnects the same handler for the same reason."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def admin_key(tenant_a, tenant_b):
    # A generous rate: the fuzzer sends hundreds of requests, and 429s are tested elsewhere.
    return api_key_create(institution=tenant_a.institution, name="fuzz", scopes=list(ALL_SCOPES),
                          rate_per_minute=100_000)[1]


# Bounded run: the examples and fuzzing phases with a few cases per operation; the coverage
# phase (hundreds of boundary bodies per write operation) would take minutes on CI.
CONFIG = SchemathesisConfig.from_dict({"phases": {"coverage": {"enabled": False}}})
# Loaded when the module is collected: generating the schema reads no database rows.
schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", application, config=CONFIG)


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck))
def test_every_endpoint_answers_without_server_errors_and_as_documented(case, admin_key):
    if "institution_slug" in (case.path_parameters or {}):
        # Aim at the key's own institution so requests reach the handlers, not just the 404.
        case.path_parameters["institution_slug"] = "alpha"
    case.call_and_validate(
        headers={"Authorization": f"Bearer {admin_key}"},
        checks=[not_a_server_error, response_schema_conformance],
    )
