"""The API's error messages in the language the client asks for (``Accept-Language``), English
otherwise; the machine-readable ``code`` and field names never change with the language, and an
institution's default page language never reaches an API key's answers."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import UserPreference
from students.models import Student

pytestmark = pytest.mark.django_db


def students_url(slug, pk=None):
    return reverse("api-student-list", args=[slug]) if pk is None else reverse("api-student-detail", args=[slug, pk])


def _post_out_of_range(client, slug, language=None):
    headers = {"HTTP_ACCEPT_LANGUAGE": language} if language else {}
    return client.post(students_url(slug), {"external_id": "NEW1", "features": {"units_approved": 99, "nope": 1}},
                       format="json", **headers)


@pytest.mark.parametrize(("language", "message", "range_error", "unknown_error"), [
    (None, "The request has invalid fields; see errors.", "99 is outside the valid range 0 to 30",
     "unknown feature; add it to the feature schema first"),
    ("es", "La solicitud tiene campos no válidos; vea errors.", "99 está fuera del rango válido de 0 a 30",
     "variable desconocida; añádala primero al esquema de variables"),
    ("pt-PT,pt;q=0.9", "O pedido tem campos inválidos; veja errors.", "99 está fora do intervalo válido de 0 a 30",
     "variável desconhecida; adicione-a primeiro ao esquema de variáveis"),
])
def test_validation_errors_follow_accept_language_and_codes_do_not(tenant_a, client_a, language, message,
                                                                   range_error, unknown_error):
    response = _post_out_of_range(client_a, tenant_a.institution.slug, language)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert body["message"] == message
    assert body["errors"]["features"] == {"units_approved": range_error, "nope": unknown_error}
    assert not Student.objects.for_institution(tenant_a.institution).filter(external_id="NEW1").exists()


def test_the_institution_default_language_does_not_reach_an_api_key(tenant_a, client_a):
    tenant_a.institution.default_language = "es"
    tenant_a.institution.save(update_fields=["default_language"])
    body = _post_out_of_range(client_a, tenant_a.institution.slug).json()
    assert body["message"] == "The request has invalid fields; see errors."


def test_another_institutions_student_is_the_same_404_in_each_language(tenants, client_a):
    a, b = tenants
    for language, text in ((None, "Not found."), ("es", "No encontrado."), ("pt", "Não encontrado.")):
        headers = {"HTTP_ACCEPT_LANGUAGE": language} if language else {}
        theirs = client_a.get(students_url(a.institution.slug, b.students[0].pk), **headers)
        missing = client_a.get(students_url(a.institution.slug, 10**9), **headers)
        other_slug = client_a.get(students_url(b.institution.slug, b.students[0].pk), **headers)
        assert theirs.status_code == missing.status_code == other_slug.status_code == 404
        assert theirs.content == missing.content == other_slug.content
        assert theirs.json() == {"code": "not_found", "message": text, "errors": {}}
        assert b.students[0].external_id.encode() not in theirs.content


def test_a_signed_in_members_own_language_applies_to_the_session_api(client, tenant_a):
    UserPreference.objects.create(user=tenant_a.admin, language="pt")
    client.force_login(tenant_a.admin)
    response = client.post(students_url(tenant_a.institution.slug),
                           {"external_id": "NEW1", "features": {"units_approved": 99}},
                           content_type="application/json")
    assert response.status_code == 400, response.content
    assert response.json()["message"] == "O pedido tem campos inválidos; veja errors."
