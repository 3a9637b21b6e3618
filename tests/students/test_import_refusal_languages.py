"""A file refused as a whole says why in the language of the administrator who uploaded it, and
changes nothing, at either institution."""

from __future__ import annotations

import pytest

from students.models import ImportUploadStatus

from .import_helpers import database_state, latest_upload
from .test_import_pages import upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def languages(tenant_a, tenant_b):
    tenant_a.institution.default_language = "es"
    tenant_a.institution.save(update_fields=["default_language"])
    tenant_b.institution.default_language = "pt"
    tenant_b.institution.save(update_fields=["default_language"])
    return tenant_a, tenant_b


@pytest.mark.parametrize(("content", "spanish", "portuguese"), [
    (b"\x1f\x8b\x08\x00rest", "Esto es un archivo comprimido gzip, no un archivo CSV ni XLSX",
     "Isto é um arquivo comprimido gzip, não um ficheiro CSV nem XLSX"),
    (b"student_id,name\x00\nN1,A\n", "El archivo contiene bytes NUL", "O ficheiro contém bytes NUL"),
    (b"student_id,name,name\nN1,A,B\n", "La cabecera nombra estas columnas más de una vez: name.",
     "O cabeçalho nomeia estas colunas mais de uma vez: name."),
])
def test_a_refused_file_says_why_in_the_uploaders_language(client, languages, content, spanish, portuguese):
    a, b = languages
    before = database_state(a.institution, b.institution)
    for tenant, expected, other in ((a, spanish, portuguese), (b, portuguese, spanish)):
        client.force_login(tenant.admin)
        response = upload(client, tenant.institution.slug, "students.csv", content)
        body = client.get(response["Location"]).content.decode()
        assert expected in body, body[:3000]
        assert other not in body
        assert latest_upload(tenant.institution).status == ImportUploadStatus.FAILED
    assert database_state(a.institution, b.institution) == before
