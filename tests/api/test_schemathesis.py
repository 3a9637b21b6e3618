"""Fuzz every documented endpoint with schemathesis, authenticated with a valid admin API key.

Requests are generated from the live OpenAPI schema (/api/v1/schema/, served by the app over
WSGI) and sent to the app with institution A's key. Every response must be free of server
errors and conform to the schema: documented status code, content type, headers and body, and
a resource is not found after its DELETE. Two phases: each operation on its own (explicit
examples, then generated ones), and the stateful phase, sequences of calls chained by the links
schemathesis infers from the schema (POST an intervention type, then GET/PATCH/DELETE it...).

Every check is on, ``positive_data_acceptance`` and ``negative_data_rejection`` included: what
the schema calls valid is accepted and what it calls invalid is refused (ids are whole numbers
from 1, ``page_size`` from 1, booleans ``true``/``false``, lists of rows non-empty, text that may
not be blank holds a non-space character; an empty query value is the same as none, which the
schema says with ``allowEmptyValue``). Where a schema-valid request is refused by a business
rule the schema cannot state, that operation alone also expects the 400 (``BUSINESS_RULES``
below names each rule); every other operation is held to the full check. A query's ``cursor``
is an opaque token from a next link; hand-made cursors are fuzzed by tests/api/test_query_fuzz.py.

``SCHEMA_EXAMPLES`` (default 25) and ``SCHEMA_STEPS`` (stateful sequences, default 15) make a
longer run; the defaults (76 tests over the operations, every check) take about 70 s of CPU
(5 min of wall time at a load average of 11 on 2 cores).
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import negative_data_rejection
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation

from dropout_platform.wsgi import application
from institutions.api_keys import ALL_SCOPES, api_key_create

MAX_EXAMPLES = int(os.environ.get("SCHEMA_EXAMPLES", "25"))
STATEFUL_EXAMPLES = int(os.environ.get("SCHEMA_STEPS", "15"))
pytestmark = pytest.mark.slow  # about 70 s of CPU; runs in `make test` like everything else


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


TENANT = "/api/v1/institutions/{institution_slug}"
# Schema-valid requests that a rule of the institution's data or state refuses with the API's
# 400 body (docs/api.md); the schema cannot say which ids exist in an institution.
BUSINESS_RULES = {
    # Ids in the body name rows of this institution: a student, an advisor (a member), an
    # intervention type; an id of no row, or of another institution's, is a 400 (tenancy).
    f"POST {TENANT}/caseload-assignments/": "advisor and students of this institution",
    f"POST {TENANT}/flags/": "student of this institution",
    f"POST {TENANT}/interventions/": "student and intervention type of this institution",
    f"PUT {TENANT}/interventions/{{id}}/": "intervention type of this institution",
    f"PATCH {TENANT}/interventions/{{id}}/": "intervention type of this institution",
    f"POST {TENANT}/students/": "advisor of this institution",
    f"PUT {TENANT}/students/{{id}}/": "advisor of this institution",
    f"PATCH {TENANT}/students/{{id}}/": "advisor of this institution",
    f"POST {TENANT}/students/bulk-upsert/": "advisors of this institution; feature values fit its feature schema",
    f"POST {TENANT}/activity-events/": "each event's student is an external id of this institution",
    # A feature's key is unique in the institution; its key and kind cannot change once created.
    f"POST {TENANT}/features/": "a key no other feature of the institution has",
    f"PUT {TENANT}/features/{{id}}/": "key and kind as created",
    f"PATCH {TENANT}/features/{{id}}/": "key and kind as created",
    # term_end is not before term_start: two fields compared, which OpenAPI 3.0 cannot say.
    f"POST {TENANT}/activity-events/recompute-features/": "term_end not before term_start",
    # State: there must be an earlier live version to roll back to.
    f"POST {TENANT}/model-versions/rollback/": "an earlier live version exists",
    # An intervention type's key is unique in the institution.
    f"POST {TENANT}/intervention-types/": "a key no other intervention type of the institution has",
    # The files are a OneRoster export (named files of the documented columns).
    f"POST {TENANT}/roster-imports/": "the files are a OneRoster export",
    # The mapping is JSON of the form docs/imports.md gives, sent as a multipart text field.
    f"POST {TENANT}/imports/": "mapping is JSON of the documented form",
    # A chunked upload's state: a chunk starts at the upload's current offset (else 409 with it) and
    # ends within its declared size; completing needs every byte received (and the declared sha256).
    f"PATCH {TENANT}/imports/uploads/{{session_id}}/": "Upload-Offset is the upload's offset; within its size",
    f"POST {TENANT}/imports/uploads/{{session_id}}/complete/": "every byte received, matching the sha256",
    # Applicants' feature values fit the feature schema (keys the schema knows, no protected
    # attribute, values in range), and scoring needs a live model (else 409 no_live_model).
    f"POST {TENANT}/score/": "feature values fit the institution's feature schema",
    # An erasure is confirmed by repeating the student's external id (or asked as a dry run).
    f"POST {TENANT}/students/{{student_id}}/erase/": "confirm_external_id is the student's external id, or dry_run",
}
POSITIVE_WITH_RULES = ["2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"]

CONFIG = SchemathesisConfig.from_dict({
    # Bounded run: the examples and fuzzing phases; the coverage phase (hundreds of boundary
    # bodies per write operation) would take minutes on CI.
    "phases": {"coverage": {"enabled": False}},
    "generation": {
        # The key is sent by the test itself; generated Authorization headers would only be replaced.
        "with-security-parameters": False,
        # PostgreSQL text cannot hold NUL: every text value with "\x00" is a 400 (docs/api.md).
        "allow-x00": False,
    },
    # Every request aims at the key's own institution, so it reaches the handlers, not just the 404
    # (a fixed value: negative cases then vary the other parts of the request).
    "parameters": {"path.institution_slug": "alpha"},
    "operations": [{"include-name": list(BUSINESS_RULES),
                    "checks": {"positive_data_acceptance": {"expected-statuses": POSITIVE_WITH_RULES}}}],
})


def _body_type_mutations(case) -> list:
    """The negative case's changes, when every one is a body value of another JSON type."""
    mutations = getattr(getattr(case.meta, "phase", None) and case.meta.phase.data, "mutations", None) or []
    if all(mutation.parameter_location == ParameterLocation.BODY and mutation.keywords == ("type",)
           for mutation in mutations):
        return mutations
    return []


@schemathesis.check
def negative_data_rejection_but_text_on_the_wire(ctx, response, case):
    """``negative_data_rejection``, except for two cases where the wrong type is not on the wire:

    - a JSON number sent for a text field is read as its text (``"external_id": 1042`` is
      ``"1042"``; DRF's text fields, documented in docs/api.md; SIS exports rely on it);
    - every part of a multipart body (the file uploads) is text, so a value "of another type"
      arrives as the same text a valid one would (``true``, ``{"columns": ...}``).

    Every other invalid request must be refused."""
    mutations = _body_type_mutations(case)
    if mutations and (case.media_type == "multipart/form-data" or all(
            mutation.original_value == "string" and mutation.new_value in ("number", "integer")
            for mutation in mutations)):
        return None
    return negative_data_rejection(ctx, response, case)


CHECK_KWARGS = {"excluded_checks": [negative_data_rejection],
                "additional_checks": [negative_data_rejection_but_text_on_the_wire]}
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
    case.call_and_validate(headers={"Authorization": f"Bearer {admin_key}"}, **CHECK_KWARGS)


class ApiWorkflow(schema.as_state_machine()):
    key = ""

    def before_call(self, case) -> None:
        _aim_at_own_institution(case)

    def get_call_kwargs(self, case) -> dict:
        return {"headers": {"Authorization": f"Bearer {self.key}"}}

    def validate_response(self, response, case, additional_checks=None, **kwargs) -> None:
        case.validate_response(response, transport_kwargs=kwargs, **CHECK_KWARGS,
                               headers=self.get_call_kwargs(case)["headers"])


def test_sequences_of_calls_answer_without_server_errors_and_as_documented(admin_key):
    ApiWorkflow.key = admin_key
    ApiWorkflow.run(settings=settings(
        max_examples=STATEFUL_EXAMPLES, stateful_step_count=6, deadline=None, derandomize=True,
        suppress_health_check=list(HealthCheck), phases=[Phase.generate],
    ))
