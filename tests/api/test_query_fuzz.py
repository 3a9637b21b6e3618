"""Query strings and cursors are input too (issue 16, item 6): every list endpoint of the API,
given malformed ``cursor``, ``page``, ``page_size``, ``updated_since``, search and filter values
(NUL characters, huge numbers, hand-made cursors), answers 2xx or a 4xx with the standard error
body (``code`` and ``message``), never a 500.

The list endpoints and their documented query parameters come from the live OpenAPI schema, so a
new endpoint is fuzzed without editing this file.
"""

from __future__ import annotations

import base64
import json

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from institutions.api_keys import ALL_SCOPES, api_key_create

pytestmark = [pytest.mark.django_db, pytest.mark.slow]  # about a minute; runs in `make test` like the rest

COMMON = ["cursor", "page", "page_size", "updated_since"]  # sent to every list, documented or not


def _list_operations() -> list[tuple[str, list[str]]]:
    response = Client().get("/api/v1/schema/", {"format": "json"})
    schema = json.loads(response.content)
    operations = []
    for path, item in sorted(schema["paths"].items()):
        operation = item.get("get")
        path_parameters = {p["name"] for p in (operation or {}).get("parameters", []) if p["in"] == "path"}
        if operation is None or path_parameters - {"institution_slug"}:
            continue  # detail routes take ids, fuzzed by test_ids_from_input and schemathesis
        names = sorted({p["name"] for p in operation.get("parameters", []) if p["in"] == "query"} | set(COMMON))
        operations.append((path.replace("{institution_slug}", "alpha"), names))
    return operations


def _cursor(text: str) -> str:
    return base64.b64encode(text.encode("utf-8", errors="surrogatepass")).decode("ascii")


HOSTILE_VALUES = [
    "", "a\x00b", "-1", "0", str(10**400), "9223372036854775808", "2024-13-45", "9999-12-31T23:59:59+99:00",
    "' OR 1=1 --", "\U0001f600" * 300, _cursor("o=1&p=notadate"), _cursor("o=99999999999999999999&r=1"),
    _cursor("p=\x00"), "not base64!",
]
RANDOM_VALUES = [
    "%00", "1e3", "10" * 200, "NaN", "true", "2024-01-01T25:61:00", "0000-00-00", "[]", "{}", "null", "é✓€", " ",
    _cursor("o=-5&r=1"), _cursor("p=2024-01-01T00:00:00&o=0"), _cursor("r=1&p=1e400"), "////", "=" * 10,
]
VALUE = st.one_of(
    st.sampled_from(HOSTILE_VALUES + RANDOM_VALUES),
    st.text(max_size=40),
    st.integers().map(str),
    st.text(max_size=30).map(_cursor),
    st.binary(max_size=30).map(lambda raw: base64.b64encode(raw).decode("ascii")),
)
OPERATIONS = _list_operations()


@pytest.fixture
def key(tenant_a, tenant_b):
    return api_key_create(institution=tenant_a.institution, name="query fuzz", scopes=list(ALL_SCOPES),
                          rate_per_minute=1_000_000)[1]


def assert_answered(response, query):
    assert response.status_code < 500, (query, response.content[:500])
    if response.status_code >= 400:
        body = response.json()
        assert body["code"] and body["message"], (query, body)


def test_list_endpoints_are_found():
    paths = [path for path, _names in OPERATIONS]
    assert "/api/v1/institutions/alpha/students/" in paths and "/api/v1/institutions/alpha/jobs/" in paths


@pytest.mark.parametrize(("path", "names"), OPERATIONS, ids=[path for path, _ in OPERATIONS])
@pytest.mark.parametrize("value", HOSTILE_VALUES, ids=range(len(HOSTILE_VALUES)))
def test_each_hostile_value_in_each_query_parameter_is_answered_without_a_server_error(client, key, path, names,
                                                                                        value):
    for name in names:
        query = {name: value}
        assert_answered(client.get(path, query, HTTP_AUTHORIZATION=f"Bearer {key}"), query)


@pytest.mark.parametrize(("path", "names"), OPERATIONS, ids=[path for path, _ in OPERATIONS])
@settings(max_examples=15, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_random_query_strings_are_answered_without_a_server_error(client, key, path, names, data):
    chosen = data.draw(st.lists(st.sampled_from(names), max_size=4, unique=True))
    query = {name: data.draw(VALUE) for name in chosen}
    assert_answered(client.get(path, query, HTTP_AUTHORIZATION=f"Bearer {key}"), query)


def test_a_hand_made_cursor_is_a_400_naming_the_cursor(client, key, tenant_a):
    response = client.get("/api/v1/institutions/alpha/students/", {"cursor": _cursor("o=1&p=notadate")},
                          HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 400
    assert "cursor" in json.dumps(response.json())


def test_an_other_institutions_list_stays_a_404_whatever_the_query(client, key, tenant_b):
    for value in ("\x00", _cursor("o=1&p=notadate"), str(10**400)):
        response = client.get("/api/v1/institutions/beta/students/", {"cursor": value, "page": value},
                              HTTP_AUTHORIZATION=f"Bearer {key}")
        assert response.status_code in (403, 404)
