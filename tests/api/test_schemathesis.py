"""Fuzz every documented endpoint with schemathesis, authenticated with a valid admin API key.

Requests are generated from the live OpenAPI schema (/api/v1/schema/, served by the app over
WSGI) and sent to the app with institution A's key. Every response must be free of server
errors and conform to the schema: documented status code, content type, headers and body, and
a resource is not found after its DELETE. Two phases: each operation on its own (explicit
examples, then generated ones), and the stateful phase, sequences of calls chained by the links
schemathesis infers from the schema (POST an intervention type, then GET/PATCH/DELETE it...).

Left out on purpose, being checks of the input's strictness rather than of the schema's truth:
``positive_data_acceptance`` (a body that matches the schema can still break a business rule the
schema cannot state: a student id of no student, an advisor of another institution; 400 is the
documented answer) and ``negative_data_rejection`` (django-filter reads an empty filter value as
no filter, a convention clients rely on). A query's ``cursor`` is an opaque token from a next
link; hand-made cursors are fuzzed by tests/api/test_query_fuzz.py.

``SCHEMA_EXAMPLES`` (default 25) and ``SCHEMA_STEPS`` (stateful sequences, default 15) make a
longer run; the defaults keep this under a minute.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import negative_data_rejection, positive_data_acceptance
from schemathesis.config import SchemathesisConfig

from dropout_platform.wsgi import application
from institutions.api_keys import ALL_SCOPES, api_key_create

MAX_EXAMPLES = int(os.environ.get("SCHEMA_EXAMPLES", "25"))
STATEFUL_EXAMPLES = int(os.environ.get("SCHEMA_STEPS", "15"))
EXCLUDED_CHECKS = [positive_data_acceptance, negative_data_rejection]
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


def _aim_at_own_institution(case) -> None:
    if "institution_slug" in (case.path_parameters or {}):
        # Aim at the key's own institution so requests reach the handlers, not just the 404.
        case.path_parameters["institution_slug"] = "alpha"
    if case.query:
        case.query.pop("cursor", None)


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck))
def test_every_endpoint_answers_without_server_errors_and_as_documented(case, admin_key):
    _aim_at_own_institution(case)
    case.call_and_validate(headers={"Authorization": f"Bearer {admin_key}"}, excluded_checks=EXCLUDED_CHECKS)


class ApiWorkflow(schema.as_state_machine()):
    key = ""

    def before_call(self, case) -> None:
        _aim_at_own_institution(case)

    def get_call_kwargs(self, case) -> dict:
        return {"headers": {"Authorization": f"Bearer {self.key}"}}

    def validate_response(self, response, case, additional_checks=None, **kwargs) -> None:
        case.validate_response(response, excluded_checks=EXCLUDED_CHECKS, transport_kwargs=kwargs,
                               headers=self.get_call_kwargs(case)["headers"])


def test_sequences_of_calls_answer_without_server_errors_and_as_documented(admin_key):
    ApiWorkflow.key = admin_key
    ApiWorkflow.run(settings=settings(
        max_examples=STATEFUL_EXAMPLES, stateful_step_count=6, deadline=None, derandomize=True,
        suppress_health_check=list(HealthCheck), phases=[Phase.generate],
    ))
