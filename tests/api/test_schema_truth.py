"""The OpenAPI schema says what the API answers (issue 17, item 9): fields that can be null say
so, an open intervention's empty outcome is in its enum, and an id in a path that is no integer
is the API's JSON 404, the same body as any other 404.

Responses are validated against the live schema with schemathesis (status, content type, body).
"""

from __future__ import annotations

import pytest
import requests
import schemathesis
from django.contrib.auth import get_user_model
from schemathesis.core.transport import Response

from dropout_platform.wsgi import application
from predictions.models import ModelVersion
from tests.factories import FlagFactory, InterventionFactory

schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", application)


def _conforms(response, method: str, template: str) -> None:
    """Validate Django's test response as schemathesis's own (status, content type, body)."""
    url = "http://testserver" + response.wsgi_request.get_full_path()
    answer = Response(
        status_code=response.status_code, headers={name: [value] for name, value in response.headers.items()},
        content=response.content, request=requests.Request(method, url).prepare(), elapsed=0.0, message="",
        encoding="utf-8", http_version="1.1", verify=False,
    )
    schema[template][method].validate_response(answer)


def test_a_flag_whose_users_are_gone_is_answered_as_the_schema_says(tenant_a, tenant_b, client_a):
    gone = get_user_model().objects.create(username="left-the-institution")
    flag = FlagFactory(institution=tenant_a.institution, student=tenant_a.students[0], raised_by=gone)
    system_flag = FlagFactory(institution=tenant_a.institution, student=tenant_a.students[1])
    gone.delete()  # SET_NULL: raised_by becomes null; resolved_by is null while open
    for pk in (flag.pk, system_flag.pk):
        response = client_a.get(f"/api/v1/institutions/alpha/flags/{pk}/")
        assert response.status_code == 200
        assert response.json()["raised_by"] is None and response.json()["resolved_by"] is None
        _conforms(response, "GET", "/api/v1/institutions/{institution_slug}/flags/{id}/")
    listing = client_a.get("/api/v1/institutions/alpha/flags/")
    _conforms(listing, "GET", "/api/v1/institutions/{institution_slug}/flags/")
    assert client_a.get(f"/api/v1/institutions/beta/flags/{flag.pk}/").status_code == 404


def test_an_open_intervention_with_no_outcome_and_no_author_is_answered_as_the_schema_says(tenant_a, tenant_b,
                                                                                            client_a):
    intervention = InterventionFactory(institution=tenant_a.institution, student=tenant_a.students[0], author=None)
    response = client_a.get(f"/api/v1/institutions/alpha/interventions/{intervention.pk}/")
    assert response.status_code == 200
    assert response.json()["outcome"] == "" and response.json()["author"] is None
    _conforms(response, "GET", "/api/v1/institutions/{institution_slug}/interventions/{id}/")


def test_a_model_version_nobody_created_or_decided_is_answered_as_the_schema_says(tenant_a, tenant_b, client_a):
    ModelVersion.objects.for_institution(tenant_a.institution).create(number=1, artifact=b"{}", artifact_sha256="0")
    response = client_a.get("/api/v1/institutions/alpha/model-versions/1/")
    assert response.status_code == 200
    assert response.json()["created_by"] is None and response.json()["decided_by"] is None
    _conforms(response, "GET", "/api/v1/institutions/{institution_slug}/model-versions/{number}/")
    assert client_a.get("/api/v1/institutions/beta/model-versions/1/").status_code == 404


@pytest.mark.parametrize("path", [
    "students/abc/prediction/", "students/1.5/predictions/", "students/abc/", "interventions/x/",
    "model-versions/one/", "flags/abc/", "jobs/-/",
])
def test_a_path_id_that_is_no_integer_is_the_json_404(tenant_a, tenant_b, client_a, path):
    real_404 = client_a.get("/api/v1/institutions/alpha/students/999999999/")
    response = client_a.get(f"/api/v1/institutions/alpha/{path}")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.content == real_404.content  # byte for byte
    assert client_a.get(f"/api/v1/institutions/beta/{path}").content == real_404.content


def test_a_url_outside_the_api_keeps_the_html_404(client):
    response = client.get("/i/alpha/no-such-page/x/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")


def test_the_schema_documents_the_503_and_415_answers():
    operation = schema["/api/v1/institutions/{institution_slug}/students/"]["POST"]
    assert {"415", "503"} <= set(operation.definition.raw["responses"])
    assert "415" not in schema["/api/v1/institutions/{institution_slug}/students/"]["GET"].definition.raw[
        "responses"]


@pytest.mark.parametrize(("query", "field"), [
    ("interventions/?student=1.5", "student"), ("interventions/?student=-3", "student"),
    ("flags/?raised_by=1e30", "raised_by"), ("students/?advisor=x", "advisor"),
    ("students/?flagged=0.2", "flagged"), ("interventions/?overdue=-1", "overdue"),
    ("flags/?is_open=maybe", "is_open"), ("predictions/?flagged=yes", "flagged"),
    ("jobs/?page_size=2.5", "page_size"), ("jobs/?page_size=0", "page_size"),
    ("students/?page_size=-5", "page_size"), ("webhook-deliveries/?status=lost", "status"),
    ("jobs/?page_size=5&page_size=9", "page_size"), ("flags/?student=1&student=2", "student"),
])
def test_a_query_value_the_schema_calls_invalid_is_the_json_400(tenant_a, tenant_b, client_a, query, field):
    response = client_a.get(f"/api/v1/institutions/alpha/{query}")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid" and field in response.json()["errors"]
    template = "/api/v1/institutions/{institution_slug}/" + query.split("?")[0]
    _conforms(response, "GET", template)


def test_an_empty_query_value_is_no_filter_as_the_schema_says(tenant_a, tenant_b, client_a):
    everyone = client_a.get("/api/v1/institutions/alpha/students/").json()
    empty = client_a.get("/api/v1/institutions/alpha/students/?status=&flagged=&advisor=&updated_since=&page_size=")
    assert empty.status_code == 200 and empty.json() == everyone
    parameters = schema["/api/v1/institutions/{institution_slug}/students/"]["GET"].definition.raw["parameters"]
    assert all(p.get("allowEmptyValue") for p in parameters if p["in"] == "query")


def test_an_id_filter_of_another_institution_lists_nothing(tenant_a, tenant_b, client_a):
    flag_b = FlagFactory(institution=tenant_b.institution, student=tenant_b.students[0])
    response = client_a.get(f"/api/v1/institutions/alpha/flags/?student={flag_b.student_id}")
    assert response.status_code == 200 and response.json()["results"] == []


def test_a_form_body_is_a_415_the_api_reads_json(tenant_a, tenant_b, client_a):
    response = client_a.post("/api/v1/institutions/alpha/model-versions/rescore/", "full=true",
                             content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415 and response.json()["code"] == "unsupported_media_type"
    assert client_a.post("/api/v1/institutions/alpha/model-versions/rescore/", {"full": True},
                         format="json").status_code == 202
