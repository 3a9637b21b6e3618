"""Query strings of the HTML pages are input too (issue 16, item 6): every page of an institution
that takes no id, opened by its admin with hostile ``q``, ``page``, sort and filter values (NUL
characters, huge numbers, bad dates), answers without a server error.

The pages are found from the URL configuration, so a new page is covered without editing this file.
"""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

pytestmark = pytest.mark.django_db

PARAMETERS = ["q", "page", "sort", "band", "program", "cohort", "advisor", "no_contact_days", "open_intervention",
              "status", "kind", "days", "since", "until", "version", "export"]
HOSTILE_VALUES = ["a\x00b", "-1", "0", str(10**400), "2024-13-45", "\U0001f600" * 200, "' OR 1=1 --", "csv"]


def _institution_pages() -> list[str]:
    names = []

    def walk(patterns, prefix_params: set[str]):
        for entry in patterns:
            params = prefix_params | set(entry.pattern.regex.groupindex)
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, params)
            elif (isinstance(entry, URLPattern) and entry.name and params == {"institution_slug"}
                  and not entry.name.startswith("api-")):  # the API's are tests/api/test_query_fuzz.py's
                names.append(entry.name)

    walk(get_resolver().url_patterns, set())
    return sorted(set(names))


PAGES = _institution_pages()


def test_the_institution_pages_are_found():
    assert {"student-list", "flagged-list", "import-upload", "member-list", "model-list"} <= set(PAGES)


@pytest.mark.parametrize("name", PAGES)
def test_hostile_query_values_on_each_page_are_answered_without_a_server_error(client, tenants, name):
    a, _b = tenants
    client.force_login(a.admin)
    url = reverse(name, args=[a.institution.slug])
    for value in HOSTILE_VALUES:  # every parameter at once
        response = client.get(url, dict.fromkeys(PARAMETERS, value))
        assert response.status_code < 500, (name, value)
    for parameter in PARAMETERS:  # one at a time, where another's refusal cannot hide it
        for value in ("a\x00b", str(10**400)):
            response = client.get(url, {parameter: value})
            assert response.status_code < 500, (name, parameter, value)


def test_a_nul_in_the_student_search_says_nothing_matches(client, tenants):
    a, _b = tenants
    client.force_login(a.admin)
    response = client.get(reverse("student-list", args=["alpha"]), {"q": "S0\x0001"})
    assert response.status_code == 200
    assert list(response.context["students"]) == []
    assert "NUL character" in response.content.decode()
