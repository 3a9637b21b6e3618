"""Every email is written in its recipient's language (accounts.language.recipient_language): their
own choice, else the default of the institution the email is about, else English; never the language
of whoever caused it to be sent, and never another recipient's. Its links stay on that institution."""

from __future__ import annotations

import datetime
import re

import pytest
from django.conf import settings
from django.core import mail
from django.test import TestCase
from django.urls import reverse

from accounts.language import recipient_language
from accounts.models import UserPreference
from courses.surveys import survey_send_reminders
from institutions.scoping import institution_scope
from interventions.models import Alert
from tests.courses.conftest import build_survey_world
from tests.courses.survey_helpers import open_survey
from tests.factories import MembershipFactory, UserFactory
from tests.interventions.alerts_fixtures import build_alert_world, save_marks
from tests.workspace.notification_world import digest_world
from workspace import digests

pytestmark = pytest.mark.django_db
MORNING = datetime.datetime(2026, 12, 2, 8, 0, tzinfo=datetime.UTC)  # 08:00 in Lisbon
URL = re.compile(r"https?://\S+")


@pytest.fixture
def languages(tenants, settings):
    """Institution A defaults to Spanish, B to Portuguese."""
    settings.SITE_URL = "https://risk.example.edu"
    a, b = tenants
    for tenant, language in ((a, "es"), (b, "pt")):
        tenant.institution.default_language = language
        tenant.institution.save(update_fields=["default_language"])
    return a, b


def _links_stay_on(body: str, slug: str) -> None:
    links = URL.findall(body)
    assert links
    for link in links:
        assert link.startswith(f"{settings.SITE_URL}/i/{slug}/"), link


def test_the_language_of_an_email_follows_the_person_then_the_institution_then_english(languages):
    a, b = languages
    both = UserFactory(username="both")
    MembershipFactory(institution=a.institution, user=both)
    MembershipFactory(institution=b.institution, user=both)
    outsider = UserFactory(username="outsider")
    assert recipient_language(institution=a.institution, user=both) == "es"
    assert recipient_language(institution=b.institution, user=both) == "pt"
    assert recipient_language(institution=None, user=both) == "en"  # their institutions disagree
    assert recipient_language(institution=a.institution, user=outsider) == "en"  # A's default is not theirs
    assert recipient_language(institution=a.institution) == "es"  # no account: the institution's
    UserPreference.objects.create(user=both, language="en")
    assert recipient_language(institution=a.institution, user=both) == "en"


def _digests(tenant, now):
    with institution_scope(tenant.institution), TestCase.captureOnCommitCallbacks(execute=True):
        digests.digests_send(institution=tenant.institution, now=now)
    sent = {m.to[0]: m for m in mail.outbox}
    mail.outbox.clear()
    return sent


def test_each_digest_is_in_its_recipients_language_with_links_into_their_institution(languages):
    a, b = languages
    a_advisors, _ = digest_world(a, users=2, students=3, now=MORNING)
    b_advisors, _ = digest_world(b, users=1, students=3, now=MORNING)
    UserPreference.objects.create(user=a_advisors[1], language="pt")  # A's second advisor reads Portuguese

    sent_a = _digests(a, MORNING)
    spanish = sent_a[a_advisors[0].email]
    assert spanish.subject.startswith("ALPHA University: su resumen diario (")
    assert "recién señalado" in spanish.subject and "alertas abiertas" in spanish.subject
    assert "Su resumen diario de ALPHA University, 2 de diciembre de 2026." in spanish.body
    assert "RECIÉN SEÑALADOS ENTRE SUS ESTUDIANTES ASIGNADOS" in spanish.body
    assert "señalado por el personal" in spanish.body and "(Nueva" in spanish.body
    assert "vencido desde el 1 de diciembre de 2026" in spanish.body and "vence hoy" in spanish.body
    for english in ("digest", "Hello", "flagged", "overdue", "due today", "You receive"):
        assert english not in spanish.body + spanish.subject
    _links_stay_on(spanish.body, "alpha")

    # The colleague's own choice: Portuguese, in the same run, without touching the first one's.
    portuguese = sent_a[a_advisors[1].email]
    assert portuguese.subject.startswith("ALPHA University: o seu resumo diário (")
    assert "ACOMPANHAMENTOS PARA HOJE OU EM ATRASO" in portuguese.body and "resumen" not in portuguese.body
    _links_stay_on(portuguese.body, "alpha")

    sent_b = _digests(b, MORNING)
    assert set(sent_b) == {b_advisors[0].email}
    beta = sent_b[b_advisors[0].email]
    assert beta.subject.startswith("BETA University: o seu resumo diário (")
    assert "O seu resumo diário de BETA University, 2 de Dezembro de 2026." in beta.body
    assert "sinalizado pelo pessoal" in beta.body and "em atraso desde" in beta.body
    assert "resumen" not in beta.body and "digest" not in beta.body
    _links_stay_on(beta.body, "beta")


def test_survey_links_and_reminders_reach_instructors_in_their_institutions_language(languages):
    a, b = languages
    world_a, world_b = build_survey_world(a), build_survey_world(b)
    UserPreference.objects.create(user=a.admin, language="pt")  # the admin who opens it reads Portuguese
    survey_a = open_survey(world_a)
    open_survey(world_b)
    by_institution = {"alpha": [], "beta": []}
    for message in mail.outbox:
        by_institution[message.to[0].split("@")[1].split(".")[0]].append(message)
    mail.outbox.clear()
    assert by_institution["alpha"] and by_institution["beta"]
    for message in by_institution["alpha"]:
        assert message.subject == "Mid-term check (ALPHA University)"
        assert message.body.startswith("Estimado/a Teacher")
        assert "ALPHA University le pregunta cómo van los estudiantes de sus secciones en Autumn 2026." in message.body
        assert "Su enlace (no necesita cuenta ni contraseña):" in message.body
        assert re.search(r"Funciona desde el \d+ de \w+ de 2026 a las \d\d:\d\d hasta el", message.body)
        assert "Thanks for your help." in message.body  # what the administrator wrote stays as written
        for english in ("Dear", "Your link", "It works", "Thank you", "palavra-passe"):
            assert english not in message.body
        token = re.search(r"/survey/([^/\s]+)/", message.body).group(1)
        assert token.startswith(f"{a.institution.pk}.")
    for message in by_institution["beta"]:
        assert message.body.startswith("Caro/a Teacher")
        assert "A sua ligação (não precisa de conta nem de palavra-passe):" in message.body
        assert re.search(r"Funciona de \d+ de \w+ de 2026 às \d\d:\d\d até", message.body)
        assert "Su enlace" not in message.body and "Your link" not in message.body
        assert re.search(r"/survey/([^/\s]+)/", message.body).group(1).startswith(f"{b.institution.pk}.")

    with institution_scope(a.institution), TestCase.captureOnCommitCallbacks(execute=True):
        survey_send_reminders(institution=a.institution, survey=survey_a, user=a.admin,
                              expected=len(by_institution["alpha"]))
    assert mail.outbox and all(m.subject == "Recordatorio: Mid-term check (ALPHA University)" for m in mail.outbox)
    assert all("Este es un recordatorio: todavía no ha respondido." in m.body for m in mail.outbox)


def test_the_instructor_hears_that_an_alert_was_handled_in_their_institutions_language(
        client, languages, django_capture_on_commit_callbacks):
    a, b = languages
    for t in (a, b):
        build_alert_world(t)
        save_marks(t, create=[(t.students[0], t.attendance, "sleeps in class")])
    # The advisors who close them chose the other language for their own pages.
    UserPreference.objects.create(user=a.advisor, language="pt")
    UserPreference.objects.create(user=b.advisor, language="es")
    for t, outcome in ((a, "unreachable"), (b, "declined")):
        alert = Alert.objects.for_institution(t.institution).get()
        client.force_login(t.advisor)
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(reverse("alert-detail", args=[t.institution.slug, alert.pk]), {
                "action": "close", "close-outcome": outcome, "close-notes": "Left two voicemails"})
        assert response.status_code == 302
    to_a, to_b = (next(m for m in mail.outbox if m.to == [f"ines@{slug}.example.edu"]) for slug in ("alpha", "beta"))
    student_a, student_b = a.students[0].display_name, b.students[0].display_name
    assert to_a.subject == f"ALPHA University: se dio seguimiento a la preocupación que usted planteó sobre {student_a}"
    assert to_a.body.startswith("Hola, Ines:")
    assert f"Gracias por plantear una preocupación (Attendance) sobre {student_a} en Chemistry alpha." in to_a.body
    assert "Resultado: No se pudo contactar al estudiante." in to_a.body
    assert to_b.subject == f"BETA University: a preocupação que levantou sobre {student_b} teve seguimento"
    assert "Resultado: O estudante recusou a ajuda." in to_b.body
    for body in (to_a.body, to_b.body):
        assert "voicemail" not in body and "sleeps in class" not in body
        assert "Thank you" not in body and "Outcome" not in body
    assert "Obrigado" not in to_a.body and "Gracias" not in to_b.body


def test_an_invitation_is_in_the_inviting_institutions_language_with_its_link(client, languages):
    a, b = languages
    UserPreference.objects.create(user=a.admin, language="pt")  # the inviter's own language does not apply
    for t in (a, b):
        client.force_login(t.admin)
        response = client.post(reverse("invitation-list", args=[t.institution.slug]),
                               {"email": f"new@{t.institution.slug}.example.edu", "role": "advisor"})
        assert response.status_code == 302
    to_a, to_b = mail.outbox
    assert to_a.subject == "Está invitado a ALPHA University en dropout_platform"
    assert "le invita a unirse a ALPHA University en dropout_platform como Tutor." in to_a.body
    assert "Abra este enlace para aceptar (funciona una vez, durante" in to_a.body
    assert to_b.subject == "Está convidado para BETA University na dropout_platform"
    assert "convida-o a juntar-se a BETA University na dropout_platform como Tutor." in to_b.body
    assert "Abra esta ligação para aceitar" in to_b.body
    for message, slug in ((to_a, "alpha"), (to_b, "beta")):
        assert "invite" not in message.body and "Open this link" not in message.body
        [link] = URL.findall(message.body)
        assert link.startswith(f"http://testserver/accounts/invitations/{slug}/"), link


def test_a_password_reset_is_in_the_account_holders_language_not_the_browsers(client, languages):
    a, b = languages
    a.advisor.email, b.advisor.email = "adv@alpha.example.edu", "adv@beta.example.edu"
    a.advisor.save(update_fields=["email"])
    b.advisor.save(update_fields=["email"])
    for user in (a.advisor, b.advisor):
        client.post(reverse("password_reset"), {"email": user.email}, HTTP_ACCEPT_LANGUAGE="en")
    to_a, to_b = mail.outbox
    assert to_a.to == ["adv@alpha.example.edu"] and "contraseña" in to_a.body and "password" not in to_a.body
    assert to_b.to == ["adv@beta.example.edu"] and "palavra-passe" in to_b.body and "password" not in to_b.body
    UserPreference.objects.create(user=a.advisor, language="en")
    client.post(reverse("password_reset"), {"email": a.advisor.email}, HTTP_ACCEPT_LANGUAGE="es")
    assert "reset the password" in mail.outbox[-1].body
