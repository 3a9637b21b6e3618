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

from institutions.scoping import institution_scope
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


# --- the model pages ---------------------------------------------------------------------------

def trained_tenant(tenant, *, prefix: str):
    """``tenant`` with a learnable population, a live v1 and a candidate v2 that failed the gate
    (too few students for its minimum), trained for real: the report, the gate's checks and the
    jobs are what ml and the services wrote."""
    from predictions.services.training import model_version_train

    from .predictions.conftest import add_population, fast_settings

    add_population(tenant.institution, prefix=prefix)
    fast_settings(tenant.institution)
    with institution_scope(tenant.institution):
        live = model_version_train(institution=tenant.institution)
        fast_settings(tenant.institution, min_training_size=100_000)
        candidate = model_version_train(institution=tenant.institution)
    assert live.status == "live" and candidate.status == "candidate" and not candidate.gate_passed
    return live, candidate


MODEL_PAGES = {
    "predictions/model_list.html": (["Todas las versiones", "Candidato v2", "Modelo activo", "Regresión logística"],
                                    ["Todas as versões", "Candidato v2", "Modelo ativo", "Regressão logística"]),
    "predictions/model_detail.html": (["Datos de entrenamiento", "¿Se cumplieron las predicciones de v2?",
                                       "Equidad: mayores diferencias entre grupos en el umbral de señalización",
                                       "Ficha del modelo", 'data-perfect-label="Calibración perfecta"'],
                                      ["Dados de treino", "As previsões da v2 concretizaram-se?",
                                       "Equidade: maiores diferenças entre grupos no limiar de sinalização",
                                       "Ficha do modelo", 'data-perfect-label="Calibração perfeita"']),
    "predictions/model_decision.html": (["¿Activar el modelo v2?", "Suficientes estudiantes con resultado conocido",
                                         "No es peor que el modelo activo v1",
                                         "Por qué debe activarse a pesar de las comprobaciones fallidas"],
                                        ["Ativar o modelo v2?", "Estudantes suficientes com resultado conhecido",
                                         "Não é pior do que o modelo ativo v1",
                                         "Porque deve ser ativada apesar das verificações falhadas"]),
    "predictions/job_list.html": (["Tareas de entrenamiento y cálculo de riesgo", "Reentrenar ahora"],
                                  ["Tarefas de treino e cálculo de risco", "Retreinar agora"]),
    "predictions/settings.html": (["Configuración del modelo de riesgo", "Regla de señalización",
                                   "Cuánto tiempo se conserva el historial de predicciones",
                                   "Preocupaciones de los docentes como variable del modelo"],
                                  ["Definições do modelo de risco", "Regra de sinalização",
                                   "Durante quanto tempo é mantido o histórico de previsões",
                                   "Preocupações dos docentes como variável do modelo"]),
}


def test_every_model_page_is_in_the_institutions_language(client, es_pt):
    for tenant, language, index, prefix in ((es_pt[0], "es", 0, "A"), (es_pt[1], "pt", 1, "B")):
        _live, candidate = trained_tenant(tenant, prefix=prefix)
        slug = tenant.institution.slug
        client.force_login(tenant.admin)
        client.post(reverse("model-retrain", args=[slug]))  # a job for the jobs page (queued: no worker)
        pages = [
            ("predictions/model_list.html", reverse("model-list", args=[slug])),
            ("predictions/model_detail.html", reverse("model-detail", args=[slug, candidate.number])),
            ("predictions/model_decision.html", reverse("model-promote", args=[slug, candidate.number])),
            ("predictions/job_list.html", reverse("prediction-job-list", args=[slug])),
            ("predictions/settings.html", reverse("prediction-settings", args=[slug])),
        ]
        for template, url in pages:
            assert_page_in(client.get(url), template, language, MODEL_PAGES[template][index])
        reject = client.get(reverse("model-reject", args=[slug, candidate.number]))
        assert_page_in(reject, "predictions/model_decision.html", language,
                       [["¿Rechazar el modelo v2?"], ["Rejeitar o modelo v2?"]][index])


def test_the_gates_checks_are_stored_in_english_and_shown_in_the_readers_language(client, es_pt):
    """The gate keeps its English text (the API's and the logs') and the sentences it was made
    of; the decision page says them in Spanish to A's administrator, and B cannot see A's."""
    a, b = es_pt
    _live, candidate = trained_tenant(a, prefix="A")
    checks = {check["name"]: check for check in candidate.gate["checks"]}
    assert checks["training_size"]["detail"] == f"{candidate.training_size} students (minimum 100000)"
    assert checks["auc_vs_live"]["label"] == ("Not worse than live model v1 on students neither model was "
                                              "trained on")
    client.force_login(a.admin)
    page = html.unescape(client.get(reverse("model-promote", args=[a.institution.slug, 2])).content.decode())
    assert f"{candidate.training_size} estudiantes (mínimo 100000)" in page
    assert "Diferencias de equidad dentro de los límites" in page
    assert "caída permitida 0.010" in page and "aumento permitido 0.010" in page
    assert "students (minimum" not in page and "allowed drop" not in page
    # A stored check without its sentences (a version gated before) keeps its English text.
    from predictions.models import ModelVersion
    ModelVersion.objects.for_institution(a.institution).filter(pk=candidate.pk).update(gate={
        "passed": False, "checks": [{"name": "training_size", "label": "Enough students with a known outcome",
                                     "passed": False, "detail": "300 students (minimum 10000)"}]})
    page = client.get(reverse("model-promote", args=[a.institution.slug, 2])).content.decode()
    assert "300 students (minimum 10000)" in page
    client.force_login(b.admin)
    assert client.get(reverse("model-promote", args=[a.institution.slug, 2])).status_code == 404


def test_the_model_pages_messages_are_in_the_persons_language(client, es_pt):
    a, b = es_pt
    _live, candidate = trained_tenant(b, prefix="B")
    client.force_login(b.admin)
    slug = b.institution.slug
    response = client.post(reverse("model-reject", args=[slug, candidate.number]),
                           {"note": "gap too wide", "confirm": "on"}, follow=True)
    body = html.unescape(response.content.decode())
    assert "O modelo v2 foi rejeitado." in body
    assert "gap too wide" in body  # the administrator's own note, as written
    response = client.post(reverse("model-retrain", args=[slug]), follow=True)
    assert "O retreino está em fila como tarefa n.º" in html.unescape(response.content.decode()) or \
        "O retreino está guardado como tarefa n.º" in html.unescape(response.content.decode())
    response = client.post(reverse("model-rollback", args=[slug]), follow=True)
    assert "não há uma versão ativa anterior para a qual voltar" in html.unescape(response.content.decode())
    # A's administrator cannot decide on B's versions.
    client.force_login(a.admin)
    assert client.post(reverse("model-reject", args=[slug, candidate.number]), {"confirm": "on"}).status_code == 404


def test_a_refused_cells_reason_is_in_the_language_of_who_started_the_import(client, es_pt):
    """The worker writes each refused cell's reason in the language of the person who started the
    validation (their own choice, else their institution's), as the report they read shows it."""
    from accounts.models import UserPreference

    a, b = es_pt
    content = GOOD_CSV + "S003,Cy Do,not-an-email,4,yes,f,Enrolled\r\n"
    for tenant, reason in ((a, "no es una dirección de correo válida"),
                           (b, "não é um endereço de e-mail válido")):
        upload = validate(client, tenant, upload_file(client, tenant, "email.csv", content))
        assert upload.status == ImportUploadStatus.INVALID, upload.validation_job.result
        page = html.unescape(client.get(reverse("import-detail", args=[tenant.institution.slug, upload.pk]))
                             .content.decode())
        assert reason in page and "not a valid email address" not in page
    # A's administrator who chose Portuguese gets Portuguese reasons in Spanish-speaking A.
    UserPreference.objects.create(user=a.admin, language="pt")
    upload = validate(client, a, upload_file(client, a, "email-pt.csv", content))
    errors = upload.validation_job.result["errors"]
    assert [error["reason"] for error in errors] == ["não é um endereço de e-mail válido"]


def test_every_step_a_training_reports_is_shown_in_the_readers_language(client, es_pt):
    """The steps ml and the services report while a model trains or scores (stored in English on
    the job) are each known to the job pages, which say them in Spanish or Portuguese."""
    from institutions.jobs import job_create
    from institutions.models import JobKind
    from predictions.services.training import model_version_train
    from predictions.templatetags.model_pages import job_stage

    from .predictions.conftest import add_population, fast_settings

    a, b = es_pt
    add_population(a.institution)
    fast_settings(a.institution)
    steps = []
    with institution_scope(a.institution):
        model_version_train(institution=a.institution, progress=lambda fraction, stage: steps.append(stage))
    steps += ["scoring with model v1", "ranking", "finding students to score", "preparing training data"]
    with translation.override("es"):
        untranslated = [step for step in dict.fromkeys(steps) if job_stage(step) == step]
    assert len(steps) > 5 and untranslated == []
    # The progress fragment of B's running job, for B's administrator, in Portuguese; A's cannot open it.
    with institution_scope(b.institution):
        job, _created = job_create(institution=b.institution, kind=JobKind.RETRAIN, created_by=b.admin)
    type(job).objects.for_institution(b.institution).filter(pk=job.pk).update(
        status="running", stage="cross-validating (fold 2 of 5)", counts={"training_size": 240})
    url = reverse("prediction-job-progress", args=[b.institution.slug, job.pk])
    client.force_login(b.admin)
    response = client.get(url)
    assert_page_in(response, "predictions/_job_progress.html", "pt",
                   ["Em curso", "validação cruzada (partição 2 de 5)", "estudantes de treino: 240",
                    f"Cancelar a tarefa n.º {job.pk}"])
    client.force_login(a.admin)
    assert client.get(url).status_code == 404
