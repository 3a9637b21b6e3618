"""The roster import and progress survey pages in Spanish (institution A's default) and European
Portuguese (B's), with their messages; the instructor's survey page in their institution's language;
another institution's page stays a 404 in any language."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import TestCase
from django.urls import reverse

from courses.models import ConcernType, RosterImport
from tests.courses.conftest import build_survey_world
from tests.courses.roster_files import roster_zip
from tests.courses.survey_helpers import links_by_recipient, open_survey

pytestmark = pytest.mark.django_db
LOG_OUT = {"es": "Cerrar sesión", "pt": "Terminar sessão"}


@pytest.fixture
def languages(tenants):
    a, b = tenants
    for tenant, language in ((a, "es"), (b, "pt")):
        tenant.institution.default_language = language
        tenant.institution.save(update_fields=["default_language"])
    return a, b


def _page(client, url, expected, english, language, status=200):
    response = client.get(url)
    body = response.content.decode()
    assert response.status_code == status, url
    for phrase in expected:
        assert phrase in body, (url, phrase)
    for phrase in english:
        assert phrase not in body, (url, phrase)
    if language in LOG_OUT:
        assert LOG_OUT[language] in body and "Log out" not in body
    return body


def _roster(client, tenant):
    files = SimpleUploadedFile("roster.zip", roster_zip())
    with TestCase.captureOnCommitCallbacks(execute=True):
        client.post(reverse("roster-upload", args=[tenant.institution.slug]),
                    {"files": files, "student_id_field": "identifier"})
    return RosterImport.objects.for_institution(tenant.institution).get()


PAGES = {
    # page: (Spanish phrases, Portuguese phrases, the English they replace)
    "roster-upload": (["Importar cursos y secciones (OneRoster)", "Exportación OneRoster",
                       "Subir y ver la vista previa"],
                      ["Importar unidades curriculares e turmas (OneRoster)", "Carregar e pré-visualizar"],
                      ["Import courses and sections", "Upload and preview", "Recent roster imports",
                       "OneRoster export"]),
    "roster-detail": (["Todavía no se ha importado nada.", "Importar esta lista", "Secciones",
                       "Esperando confirmación"],
                      ["Ainda não foi importado nada.", "Importar esta lista", "Turmas", "A aguardar confirmação"],
                      ["Nothing has been imported yet", "Import this roster", "Unchanged", "Roster imports"]),
    "concern-types": (["Tipos de preocupación", "Añadir un tipo", "Dejar de ofrecer", "Preocupación"],
                      ["Tipos de preocupação", "Adicionar um tipo", "Deixar de oferecer"],
                      ["Add a type", "Stop offering", "Rename", "Offered", "No concern type"]),
    "survey-list": (["Encuestas de progreso", "Abrir una encuesta", "Abierta", "0 de 2"],
                    ["Inquéritos de progresso", "Abrir um inquérito", "Aberto", "0 de 2"],
                    ["Ask the instructors", "Open a survey", "Window", "Answered"]),
    "survey-open": (["Abrir una encuesta de progreso", "Mensaje para los docentes", "Ver quién la recibe"],
                    ["Abrir um inquérito de progresso", "Mensagem para os docentes", "Pré-visualizar quem o recebe"],
                    ["Message to instructors", "Preview who gets it", "Automatic reminder"]),
    "survey-detail": (["Por docente", "Participación por curso", "Cerrar la encuesta ahora", "Recordatorios"],
                      ["Por docente", "Participação por unidade curricular", "Fechar o inquérito agora"],
                      ["Per instructor", "Per course", "Close the survey now", "Send reminders", "Invited"]),
}


def _urls(tenant, survey, roster):
    slug = tenant.institution.slug
    return {
        "roster-upload": reverse("roster-upload", args=[slug]),
        "roster-detail": reverse("roster-import-detail", args=[slug, roster.pk]),
        "concern-types": reverse("concern-types", args=[slug]),
        "survey-list": reverse("survey-list", args=[slug]),
        "survey-open": reverse("survey-open", args=[slug]),
        "survey-detail": reverse("survey-detail", args=[slug, survey.pk]),
    }


def test_the_roster_and_survey_pages_are_in_each_institutions_language(client, languages):
    a, b = languages
    for tenant, column in ((a, 0), (b, 1)):
        world = build_survey_world(tenant)
        survey = open_survey(world)
        client.force_login(tenant.admin)
        roster = _roster(client, tenant)
        for name, url in _urls(tenant, survey, roster).items():
            _page(client, url, PAGES[name][column], PAGES[name][2], "es" if column == 0 else "pt")
        mail.outbox.clear()
    # A's page for B's administrator: a 404, whatever the language.
    client.force_login(b.admin)
    assert client.get(reverse("survey-list", args=[a.institution.slug])).status_code == 404
    assert client.get(reverse("roster-upload", args=[a.institution.slug])).status_code == 404


def test_a_surveys_messages_are_in_the_administrators_language(client, languages):
    a, b = languages
    world = build_survey_world(b)
    survey = open_survey(world)
    client.force_login(b.admin)
    response = client.post(reverse("survey-close", args=[b.institution.slug, survey.pk]), follow=True)
    assert "“Mid-term check” está fechado; a ligação de cada docente deixou de funcionar." in response.content.decode()
    kind = ConcernType.objects.for_institution(b.institution).first()
    response = client.post(reverse("concern-types", args=[b.institution.slug]),
                           {"action": "toggle", "type": kind.pk}, follow=True)
    assert f"{kind.label}: deixou de ser oferecido nos novos inquéritos." in response.content.decode()
    # A's concern type named from B's page: nothing changes, a 404.
    a_kind = ConcernType.objects.for_institution(a.institution).create(key="late", label="Late")
    response = client.post(reverse("concern-types", args=[b.institution.slug]), {"action": "toggle", "type": a_kind.pk})
    assert response.status_code == 404
    a_kind.refresh_from_db()
    assert a_kind.is_active


def test_the_instructors_page_is_in_their_institutions_language_without_an_account(client, languages):
    a, b = languages
    for tenant, expected, english in (
            (a, ["Guardar Course 0, section 1", "Comentario (opcional, acompaña lo que marcó)", "Abierta hasta el"],
             ["Save Course", "Comment (optional", "Open until"]),
            (b, ["Guardar Course 0, section 1", "Comentário (opcional, acompanha o que assinalou)", "Aberto até"],
             ["Save Course", "Comment (optional", "Open until"])):
        world = build_survey_world(tenant)
        open_survey(world)
        link = links_by_recipient()[world.instructors[0].email]
        mail.outbox.clear()
        body = client.get(link, follow=True, HTTP_ACCEPT_LANGUAGE="en").content.decode()
        for phrase in expected:
            assert phrase in body, phrase
        for phrase in english:
            assert phrase not in body, phrase
    # A link that does not exist: the browser's language (no institution is known).
    response = client.get("/survey/999.nothing/", HTTP_ACCEPT_LANGUAGE="es")
    assert response.status_code == 404 and "Este enlace de encuesta no funciona" in response.content.decode()
