"""The data pages (imports, schema, student list) and the model pages in Spanish and Portuguese
(docs/translating.md): each page, for a member of institution A (Spanish by default) and of B
(Portuguese by default), shows its own words in that language and none of them left in English."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import TestCase
from django.urls import reverse
from django.utils import translation

from institutions.translations import template_messages
from students.models import ImportUpload, ImportUploadStatus

from .students.import_helpers import GOOD_CSV
from .test_i18n import languages  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db


@pytest.fixture
def es_pt(languages):  # noqa: F811 (the fixture imported above)
    """(A, B): institution A defaults to Spanish, B to Portuguese (tests/test_i18n.py)."""
    return languages

TEMPLATES = Path(settings.BASE_DIR) / "templates"
PLACEHOLDER = re.compile(r"%\(\w+\)s")
TAG = re.compile(r"<code>.*?</code>|<[^>]+>")  # a command or key is the same in every language
INCLUDE = re.compile(r"""{%\s*include\s+["']([^"']+)["']""")

# A file with one bad value (units_approved is 0-30): the report lists a problem.
BAD_CSV = GOOD_CSV + "S002,Bo Ek,bo@example.edu,99,yes,f,Enrolled\r\n"


def _template_sources(name: str, seen: set[str] | None = None) -> list[str]:
    """The template and the templates it includes (not base.html: its words are tested elsewhere)."""
    seen = set() if seen is None else seen
    if name in seen:
        return []
    seen.add(name)
    source = (TEMPLATES / name).read_text(encoding="utf-8")
    sources = [source]
    for included in INCLUDE.findall(source):
        if (TEMPLATES / included).exists():
            sources += _template_sources(included, seen)
    return sources


def english_left(body: str, template: str, language: str) -> list[str]:
    """The page's own sentences (its template's marked strings, three words or more between
    placeholders and tags, code aside) that the page still shows in English."""
    text = html.unescape(body)
    left = []
    with translation.override(language):
        for source in _template_sources(template):
            for message in template_messages(source):
                if translation.gettext(message.msgid) == message.msgid:
                    continue
                for piece in PLACEHOLDER.split(TAG.sub("\n", message.msgid.replace("%%", "%"))):
                    for fragment in piece.split("\n"):
                        fragment = fragment.strip(" .,:;()")
                        if len(fragment.split()) >= 3 and fragment in text:
                            left.append(fragment)
    return left


def assert_page_in(response, template: str, language: str, phrases: list[str]):
    body = response.content.decode()
    assert response.status_code == 200, (response.status_code, body[:300])
    assert template in [t.name for t in response.templates], template
    for phrase in phrases:
        assert phrase in html.unescape(body), (template, language, phrase)
    assert english_left(body, template, language) == [], template


def upload_file(client, tenant, name: str, content: str, *, read: bool = True) -> ImportUpload:
    client.force_login(tenant.admin)
    url = reverse("import-upload", args=[tenant.institution.slug])
    file = SimpleUploadedFile(name, content.encode())
    if read:  # the preview job runs (eagerly, in tests) when the request's transaction commits
        with TestCase.captureOnCommitCallbacks(execute=True):
            response = client.post(url, {"file": file})
    else:
        response = client.post(url, {"file": file})
    assert response.status_code == 302
    return ImportUpload.objects.for_institution(tenant.institution).latest("created_at")


def validate(client, tenant, upload: ImportUpload) -> ImportUpload:
    url = reverse("import-mapping", args=[tenant.institution.slug, upload.pk])
    form = client.get(url).context["form"]
    data = {name: form[name].value() for name in form.fields if form[name].value() not in (None, [])}
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    upload.refresh_from_db()
    return upload


# (Spanish, Portuguese) phrases of each data page: the page's own words and its form's.
DATA_PAGES = {
    "students/student_list.html": (
        ["Buscar estudiantes", "Identificador, nombre, correo o programa", "Sigue matriculado"],
        ["Pesquisar estudantes", "Identificador, nome, e-mail ou curso", "Continua inscrito"]),
    "students/feature_list.html": (["Gestionar el esquema", "Valores válidos", "protegida", "de 0 a 30"],
                                   ["Gerir o esquema", "Valores válidos", "protegida", "de 0 a 30"]),
    "students/feature_schema.html": (["Gestionar el esquema de datos", "Cambios recientes", "2 categorías"],
                                     ["Gerir o esquema de dados", "Alterações recentes", "2 categorias"]),
    "students/feature_edit.html": (["Historial de esta variable", "Menor valor válido", "Revisar los cambios"],
                                   ["Histórico desta variável", "Menor valor válido", "Rever as alterações"]),
    "students/import_upload.html": (["Importar estudiantes", "Archivo CSV o Excel (.xlsx)", "Cargas recientes"],
                                    ["Importar estudantes", "Ficheiro CSV ou Excel (.xlsx)", "Carregamentos recentes"]),
    "students/import_mapping.html": (["Vista previa y correspondencia de columnas", "Ignorar esta columna",
                                      "Los números usan coma decimal (3,5)", "Validar todo el archivo"],
                                     ["Pré-visualização e correspondência de colunas", "Ignorar esta coluna",
                                      "Os números usam vírgula decimal (3,5)", "Validar o ficheiro inteiro"]),
    "students/import_reading.html": (["Leyendo su archivo", "esta página se actualiza sola"],
                                     ["A ler o seu ficheiro", "esta página atualiza-se sozinha"]),
    "students/import_detail.html": (["Problemas encontrados", "1 problema en 1 de 3 filas; no se importó nada",
                                     "Importar solo las 2 filas válidas y omitir las 1 filas con problemas."],
                                    ["Problemas encontrados", "1 problema em 1 de 3 linhas; nada foi importado",
                                     "Importar só as 2 linhas válidas e ignorar as 1 linhas com problemas."]),
}


def data_pages(client, tenant):
    """(template, url) of each data page of ``tenant``, as its administrator opens it."""
    slug = tenant.institution.slug
    reading = upload_file(client, tenant, "waiting.csv", GOOD_CSV, read=False)
    with_errors = validate(client, tenant, upload_file(client, tenant, "errors.csv", BAD_CSV))
    assert with_errors.status == ImportUploadStatus.INVALID
    return [
        ("students/student_list.html", reverse("student-list", args=[slug])),
        ("students/feature_list.html", reverse("feature-list", args=[slug])),
        ("students/feature_schema.html", reverse("feature-schema", args=[slug])),
        ("students/feature_edit.html", reverse("feature-edit", args=[slug, tenant.features[0].pk])),
        ("students/import_upload.html", reverse("import-upload", args=[slug])),
        ("students/import_mapping.html", reverse("import-mapping", args=[slug, with_errors.pk])),
        ("students/import_reading.html", reverse("import-mapping", args=[slug, reading.pk])),
        ("students/import_detail.html", reverse("import-detail", args=[slug, with_errors.pk])),
    ]


def test_every_data_page_is_in_the_institutions_language(client, es_pt):
    for tenant, language, index in ((es_pt[0], "es", 0), (es_pt[1], "pt", 1)):
        for template, url in data_pages(client, tenant):
            client.force_login(tenant.admin)
            assert_page_in(client.get(url), template, language, DATA_PAGES[template][index])
    # The check sees English words: the same page in English fails it.
    a = es_pt[0]
    a.institution.default_language = "en"
    a.institution.save(update_fields=["default_language"])
    client.force_login(a.admin)
    body = client.get(reverse("import-upload", args=[a.institution.slug])).content.decode()
    assert "Upload and preview" in body
    assert "Recent uploads and their state" in english_left(body, "students/import_upload.html", "es")


def test_the_import_report_and_mapping_errors_follow_the_readers_language(client, es_pt):
    """The report's summary and a refused mapping are said in the language of the page that shows
    them, not in the one of whoever ran the job."""
    a, b = es_pt
    with_errors = validate(client, a, upload_file(client, a, "errors.csv", BAD_CSV))
    detail = reverse("import-detail", args=[a.institution.slug, with_errors.pk])
    assert "1 problema en 1 de 3 filas" in client.get(detail).content.decode()
    a.institution.default_language = "pt"
    a.institution.save(update_fields=["default_language"])
    assert "1 problema em 1 de 3 linhas" in client.get(detail).content.decode()
    # A mapping with no id column is refused in Portuguese now, and nothing is validated.
    mapping = reverse("import-mapping", args=[a.institution.slug, with_errors.pk])
    form = client.get(mapping).context["form"]
    data = {name: form[name].value() for name in form.fields if form[name].value() not in (None, [])}
    data.update({name: "ignore" for name in form.fields if name.startswith("target_")})
    response = client.post(mapping, data)
    assert response.status_code == 400
    assert "Nenhuma coluna corresponde ao identificador externo" in html.unescape(response.content.decode())
    with_errors.refresh_from_db()
    assert with_errors.status == ImportUploadStatus.INVALID
    # B's administrator cannot open A's report, in any language.
    client.force_login(b.admin)
    assert client.get(detail).status_code == 404


def test_the_data_pages_messages_are_in_the_persons_language(client, es_pt):
    a, b = es_pt
    upload = upload_file(client, b, "discard-me.csv", GOOD_CSV)
    response = client.post(reverse("import-discard", args=[b.institution.slug, upload.pk]), follow=True)
    assert "discard-me.csv foi descartado." in html.unescape(response.content.decode())
    client.force_login(a.admin)
    feature = a.features[0]
    response = client.post(reverse("feature-edit", args=[a.institution.slug, feature.pk]),
                           {"label": feature.label, "description": feature.description, "min_value": "0",
                            "max_value": "30", "actionable": "on"}, follow=True)
    assert f"No cambió nada en {feature.label}." in html.unescape(response.content.decode())


def test_a_files_outcome_words_are_english_whatever_the_pages_language(client, es_pt):
    """"Still enrolled" in a file is an outcome in a Spanish page too (the labels shown are
    translated; the words read from files are not)."""
    a, _b = es_pt
    content = "student_id,outcome\r\nS001,Still enrolled\r\nS099,Dropped out\r\n"
    upload = validate(client, a, upload_file(client, a, "outcomes.csv", content))
    assert upload.status == ImportUploadStatus.VALIDATED, upload.validation_job.result
