"""The closing-the-loop pages (alert queues, one alert, routing rules, offices) in Spanish
(institution A's default) and European Portuguese (B's), with their forms, choices and messages;
what people wrote (concern labels, comments, office names) stays as written."""

from __future__ import annotations

import pytest
from django.urls import reverse

from interventions.models import Alert
from tests.interventions.alerts_fixtures import build_alert_world, save_marks
from tests.test_i18n_courses import _page

pytestmark = pytest.mark.django_db


@pytest.fixture
def worlds(tenants):
    a, b = tenants
    for tenant, language in ((a, "es"), (b, "pt")):
        tenant.institution.default_language = language
        tenant.institution.save(update_fields=["default_language"])
        build_alert_world(tenant)
        save_marks(tenant, create=[(tenant.students[0], tenant.attendance, "Missed three labs")])
    return a, b


ADVISOR_PAGES = {
    "alert-list": (["Mis alertas", "Filtrar alertas", "Sin cerrar", "Creada por", "Nueva"],
                   ["Os meus alertas", "Filtrar alertas", "Por fechar", "Criado por", "Novo"],
                   ["My alerts", "Not closed", "Raised by", "Assigned to", "Concerns routed"]),
    "alert-detail": (["La preocupación", "Trabajar esta alerta", "Registrar el contacto con el estudiante",
                      "Cerrar con un resultado", "No se pudo contactar al estudiante", "Missed three labs"],
                     ["A preocupação", "Trabalhar este alerta", "Registar o contacto com o estudante",
                      "Não foi possível contactar o estudante", "Missed three labs"],
                     ["The concern", "Work this alert", "Record contact", "Could not reach", "History",
                      "Choose how it ended", "Add a note"]),
}
ADMIN_PAGES = {
    "alert-rules": (["Enrutamiento de alertas", "¿A dónde iría una alerta?", "Agregar regla", "Enviar a",
                     "El tutor del estudiante"],
                    ["Para onde iria um alerta?", "Acrescentar regra", "Enviar para", "O tutor do estudante"],
                    ["Where would an alert go?", "Add rule", "Send to", "The student's advisor", "No rules"]),
    "office-list": (["Oficinas", "Agregar una oficina", "Alertas abiertas", "Tutoring centre"],
                    ["Gabinetes", "Acrescentar um gabinete", "Alertas abertos", "Tutoring centre"],
                    ["Add an office", "Open alerts", "Teams that take alerts"]),
    "office-detail": (["La cola de alertas de la oficina", "Agregar miembro", "Desactivar (las reglas la omiten)"],
                      ["A fila de alertas do gabinete", "Acrescentar membro", "Desativar (as regras ignoram-no)"],
                      ["The office's alert queue", "Add member", "Deactivate", "Details"]),
}


def test_the_alert_pages_are_in_each_institutions_language(client, worlds):
    for tenant, column, language in ((worlds[0], 0, "es"), (worlds[1], 1, "pt")):
        slug = tenant.institution.slug
        alert = Alert.objects.for_institution(tenant.institution).get()
        urls = {"alert-list": reverse("alert-list", args=[slug]),
                "alert-detail": reverse("alert-detail", args=[slug, alert.pk]),
                "alert-rules": reverse("alert-rules", args=[slug]),
                "office-list": reverse("office-list", args=[slug]),
                "office-detail": reverse("office-detail", args=[slug, tenant.office.pk])}
        client.force_login(tenant.advisor)
        for name, phrases in ADVISOR_PAGES.items():
            _page(client, urls[name], phrases[column], phrases[2], language)
        client.force_login(tenant.admin)
        for name, phrases in ADMIN_PAGES.items():
            _page(client, urls[name], phrases[column], phrases[2], language)


def test_working_an_alert_answers_in_the_persons_language_and_another_institutions_alert_is_a_404(client, worlds):
    a, b = worlds
    alert_a = Alert.objects.for_institution(a.institution).get()
    alert_b = Alert.objects.for_institution(b.institution).get()
    client.force_login(b.advisor)
    response = client.post(reverse("alert-detail", args=[b.institution.slug, alert_b.pk]),
                           {"action": "acknowledge", "acknowledge-note": ""}, follow=True)
    assert "Recebido: o alerta fica a seu cargo." in response.content.decode()
    response = client.post(reverse("alert-detail", args=[b.institution.slug, alert_b.pk]), {"action": "nonsense"},
                           follow=True)
    assert "Escolha o que fazer com o alerta." in response.content.decode()
    # A's alert through B's pages, or A's pages for B's advisor: a 404, and A's alert is untouched.
    assert client.post(reverse("alert-detail", args=[b.institution.slug, alert_a.pk]),
                       {"action": "acknowledge"}).status_code == 404
    assert client.get(reverse("alert-detail", args=[a.institution.slug, alert_a.pk])).status_code == 404
    alert_a.refresh_from_db()
    assert alert_a.status == "open"
    client.force_login(a.advisor)
    response = client.post(reverse("alert-detail", args=[a.institution.slug, alert_a.pk]),
                           {"action": "close", "close-outcome": "resolved", "close-notes": ""}, follow=True)
    body = response.content.decode()
    assert "Alerta cerrada. Se envía un correo al docente que la creó diciendo que se atendió." in body


def test_the_access_page_and_its_grants_are_in_each_institutions_language(client, worlds):
    a, b = worlds
    for tenant, expected, language in (
            (a, ["Acceso según necesidad para los tutores", "Conceder a un tutor acceso a un estudiante",
                 "Ahora desactivado.", "Identificador del estudiante"], "es"),
            (b, ["Acesso por necessidade para os tutores", "Conceder a um tutor acesso a um estudante",
                 "Agora desativado.", "Identificador do estudante"], "pt")):
        client.force_login(tenant.admin)
        url = reverse("access-settings", args=[tenant.institution.slug])
        _page(client, url, expected, ["Who sees which students", "Need-to-know access", "Grant an advisor",
                                      "Now off", "No grants yet"], language)
    # B's administrator grants one of B's students; A's student id is "not in this institution".
    url = reverse("access-settings", args=[b.institution.slug])
    response = client.post(url, {"student": b.students[0].external_id, "user": b.advisor.pk, "reason": "Tutoring"},
                           follow=True)
    assert f"Foi concedido acesso a {b.students[0].display_name}." in response.content.decode()
    a.students[0].external_id = "ONLY-IN-A"
    a.students[0].save(update_fields=["external_id"])
    response = client.post(url, {"student": "ONLY-IN-A", "user": b.advisor.pk})
    assert response.status_code == 400
    assert "Não há nenhum estudante com este identificador nesta instituição." in response.content.decode()


def test_the_effectiveness_report_is_in_each_institutions_language(client, worlds):
    from tests.factories import InterventionFactory, InterventionTypeFactory

    for tenant, expected, language in (
            (worlds[0], ["¿Ayudan las intervenciones?", "Esto es observacional, no un experimento.",
                         "No hay suficientes estudiantes para concluir", "Todavía no se usa."], "es"),
            (worlds[1], ["As intervenções ajudam?", "Isto é observacional, não uma experiência.",
                         "Não há estudantes suficientes para concluir", "Ainda não foi usado."], "pt")):
        used = InterventionTypeFactory(institution=tenant.institution, key="call", label="Phone call")
        InterventionTypeFactory(institution=tenant.institution, key="visit", label="Home visit")
        InterventionFactory(institution=tenant.institution, student=tenant.students[0], author=tenant.advisor,
                            intervention_type=used)
        client.force_login(tenant.admin)
        body = _page(client, reverse("effectiveness", args=[tenant.institution.slug]), expected,
                     ["Do interventions help?", "Not enough students", "Not used yet", "Students reached"], language)
        assert "Phone call" in body and "Home visit" in body  # what the institution named stays as written
