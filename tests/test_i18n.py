"""Localisation (docs/translating.md): complete catalogues, every marked string translated, the
main pages in Spanish and Portuguese, and the language chosen per person with a default per
institution that never reaches another institution's members or another person's pages."""

from __future__ import annotations

import re

import polib
import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import translation

from accounts.models import UserPreference
from institutions.translations import (
    catalogue_path,
    extract_messages,
    python_messages,
    target_languages,
    template_messages,
)

from .factories import InterventionFactory, InterventionTypeFactory

LANGUAGES = target_languages()
PLACEHOLDER = re.compile(r"%\((\w+)\)s|%%")


def test_the_languages_are_english_spanish_and_european_portuguese():
    assert [code for code, _name in settings.LANGUAGES] == ["en", "es", "pt"]
    assert LANGUAGES == ["es", "pt"]
    assert "django.middleware.locale.LocaleMiddleware" in settings.MIDDLEWARE
    order = settings.MIDDLEWARE
    assert (order.index("django.contrib.sessions.middleware.SessionMiddleware")
            < order.index("django.middleware.locale.LocaleMiddleware")
            < order.index("django.middleware.common.CommonMiddleware"))
    assert (order.index("django.contrib.auth.middleware.AuthenticationMiddleware")
            < order.index("accounts.middleware.UserLanguageMiddleware"))


@pytest.mark.parametrize("language", LANGUAGES)
def test_catalogue_has_no_untranslated_fuzzy_or_obsolete_entry(language):
    po = polib.pofile(str(catalogue_path(language)))
    assert [e.msgid for e in po.untranslated_entries()] == []
    assert [e.msgid for e in po.fuzzy_entries()] == []
    assert [e.msgid for e in po.obsolete_entries()] == []
    for entry in po.translated_entries():
        translations = list(entry.msgstr_plural.values()) if entry.msgid_plural else [entry.msgstr]
        for text in translations:
            # The same placeholders, or the page would fail (or lose a value) in this language.
            assert sorted(PLACEHOLDER.findall(text)) == sorted(PLACEHOLDER.findall(entry.msgid)), entry.msgid


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_marked_string_is_in_the_catalogue(language):
    po = polib.pofile(str(catalogue_path(language)))
    present = {(entry.msgctxt or "", entry.msgid) for entry in po if entry.translated()}
    missing = sorted(key for key in extract_messages() if key not in present)
    assert missing == [], f"run `python manage.py update_translations` and translate: {missing[:10]}"


def test_the_extraction_finds_what_the_pages_look_up():
    """The check above fails for a newly marked string only if the extraction sees it."""
    found = {m.msgid for m in template_messages(
        '{% load i18n %}{% translate "Zebra crossing" %}{% if x %}{% blocktranslate trimmed with n=x %}\n'
        '  Hello {{ n }}, 50%\n{% endblocktranslate %}{% endif %}'
        '{% for i in y %}{% blocktranslate count c=i %}one cat{% plural %}{{ c }} cats{% endblocktranslate %}'
        '{% endfor %}'
    )}
    assert found == {"Zebra crossing", "Hello %(n)s, 50%%", "one cat"}
    source = 'from django.utils.translation import gettext_lazy as _\nX = _("Quiet library")\nY = _(name)\n'
    assert [m.msgid for m in python_messages(source)] == ["Quiet library"]
    assert ("", "Dashboard") in extract_messages()
    assert ("", "My caseload") in extract_messages()  # workspace/navigation.py


def test_the_compiled_catalogue_translates():
    with translation.override("es"):
        assert translation.gettext("Log out") == "Cerrar sesión"
    with translation.override("pt"):
        assert translation.gettext("Log out") == "Terminar sessão"


# --- pages -------------------------------------------------------------------------------------

SPANISH = "Cerrar sesión"
PORTUGUESE = "Terminar sessão"
ENGLISH = "Log out"


@pytest.fixture
def languages(tenant_a, tenant_b):
    """Institution A defaults to Spanish, B to Portuguese."""
    tenant_a.institution.default_language = "es"
    tenant_a.institution.save(update_fields=["default_language"])
    tenant_b.institution.default_language = "pt"
    tenant_b.institution.save(update_fields=["default_language"])
    return tenant_a, tenant_b


def _pages(tenant):
    """(url, a word of that page in Spanish, in Portuguese)."""
    slug = tenant.institution.slug
    student = tenant.students[0]
    intervention = InterventionFactory(institution=tenant.institution, student=student, author=tenant.advisor,
                                       intervention_type=InterventionTypeFactory(institution=tenant.institution))
    return [
        (reverse("dashboard", args=[slug]), "Matriculados ahora", "Inscritos atualmente"),
        (reverse("caseload", args=[slug]), "Estudiantes asignados a usted.", "Estudantes atribuídos a si."),
        (reverse("flagged-list", args=[slug]), "Filtrar la lista", "Filtrar a lista"),
        (reverse("student-detail", args=[slug, student.pk]), "Registrar una intervención", "Registar uma intervenção"),
        (reverse("intervention-list", args=[slug]), "Filtrar intervenciones", "Filtrar intervenções"),
        (reverse("intervention-edit", args=[slug, intervention.pk]), "Cerrar con un resultado",
         "Fechar com um resultado"),
        (reverse("password_change"), "Cambie su contraseña", "Altere a sua palavra-passe"),
    ]


def _assert_language(response, expected, other):
    body = response.content.decode()
    assert response.status_code == 200, response.status_code
    assert expected in body
    assert other not in body
    assert ENGLISH not in body


@pytest.mark.django_db
def test_each_page_in_the_institution_default_language(client, languages):
    a, b = languages
    client.force_login(a.advisor)
    for url, spanish, portuguese in _pages(a):
        _assert_language(client.get(url), SPANISH, PORTUGUESE)
        body = client.get(url).content.decode()
        assert spanish in body and portuguese not in body, url
    client.force_login(b.advisor)
    for url, spanish, portuguese in _pages(b):
        _assert_language(client.get(url), PORTUGUESE, SPANISH)
        body = client.get(url).content.decode()
        assert portuguese in body and spanish not in body, url
    client.force_login(a.admin)
    _assert_language(client.get(reverse("intervention-types", args=[a.institution.slug])), SPANISH, PORTUGUESE)


@pytest.mark.django_db
def test_a_persons_own_choice_wins_over_the_institution_default(client, languages):
    a, _b = languages
    UserPreference.objects.create(user=a.advisor, language="pt")
    client.force_login(a.advisor)
    for url, _spanish, portuguese in _pages(a):
        response = client.get(url)
        _assert_language(response, PORTUGUESE, SPANISH)
        assert portuguese in response.content.decode(), url
    # A colleague at the same institution still has the institution's Spanish.
    client.force_login(a.admin)
    _assert_language(client.get(reverse("dashboard", args=[a.institution.slug])), SPANISH, PORTUGUESE)


@pytest.mark.django_db
def test_the_default_of_an_institution_one_does_not_belong_to_never_applies(client, languages):
    a, b = languages
    client.force_login(a.advisor)
    response = client.get(reverse("dashboard", args=[b.institution.slug]), HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 404
    assert PORTUGUESE not in response.content.decode()
    assert response["Content-Language"] == "en"


@pytest.mark.django_db
def test_browser_language_then_english_without_a_choice(client, languages):
    response = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="pt-PT,pt;q=0.9")
    assert "Iniciar sessão" in response.content.decode()
    assert response["Content-Language"] == "pt"
    response = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="es-CO,es;q=0.9")
    assert "Iniciar sesión" in response.content.decode()
    response = client.get(reverse("login"))
    assert "Log in" in response.content.decode()
    assert response["Content-Language"] == "en"


@pytest.mark.django_db
def test_error_pages_are_translated(client, languages):
    a, _b = languages
    client.force_login(a.advisor)
    response = client.get(f"/i/{a.institution.slug}/students/999999999/")
    assert response.status_code == 404
    assert "Página no encontrada" in response.content.decode()
    client.force_login(a.viewer)
    response = client.get(reverse("caseload", args=[a.institution.slug]))
    assert response.status_code == 403
    assert "No puede abrir esta página" in response.content.decode()


@pytest.mark.django_db
def test_one_persons_language_does_not_reach_the_next_request(client, languages):
    a, b = languages
    client.force_login(a.advisor)
    _assert_language(client.get(reverse("dashboard", args=[a.institution.slug])), SPANISH, PORTUGUESE)
    client.logout()
    response = client.get(reverse("login"))
    assert "Log in" in response.content.decode() and "Iniciar" not in response.content.decode()
    client.force_login(b.advisor)
    _assert_language(client.get(reverse("dashboard", args=[b.institution.slug])), PORTUGUESE, SPANISH)


# --- the selector ------------------------------------------------------------------------------

@pytest.mark.django_db
def test_the_selector_changes_only_the_signed_in_persons_language(client, languages):
    a, b = languages
    client.force_login(b.advisor)
    dashboard_b = reverse("dashboard", args=[b.institution.slug])
    response = client.post(reverse("language-choose"), {"language": "es", "next": dashboard_b})
    assert response.status_code == 302 and response["Location"] == dashboard_b
    assert UserPreference.objects.get(user=b.advisor).language == "es"
    _assert_language(client.get(dashboard_b), SPANISH, PORTUGUESE)
    assert not UserPreference.objects.filter(user__in=[a.advisor, a.admin, b.admin]).exists()
    client.force_login(b.admin)
    _assert_language(client.get(dashboard_b), PORTUGUESE, SPANISH)
    # Back to the institution's default.
    client.force_login(b.advisor)
    client.post(reverse("language-choose"), {"language": "", "next": dashboard_b})
    assert UserPreference.objects.get(user=b.advisor).language is None
    _assert_language(client.get(dashboard_b), PORTUGUESE, SPANISH)


@pytest.mark.django_db
def test_the_selector_refuses_bad_input_and_foreign_targets(client, languages):
    a, b = languages
    client.force_login(a.advisor)
    response = client.post(reverse("language-choose"), {"language": "klingon"}, follow=True)
    assert not UserPreference.objects.filter(user=a.advisor).exists()
    assert "Elija uno de los idiomas ofrecidos." in response.content.decode()
    response = client.post(reverse("language-choose"), {"language": "pt", "next": "https://evil.example/"})
    assert response["Location"] == reverse("home")
    # Another institution's page as the target: the choice is recorded, the page stays a 404.
    response = client.post(reverse("language-choose"),
                           {"language": "pt", "next": reverse("dashboard", args=[b.institution.slug])}, follow=True)
    assert response.status_code == 404
    assert b.institution.name not in response.content.decode()
    assert client.get(reverse("language-choose")).status_code == 405
    client.logout()
    response = client.post(reverse("language-choose"), {"language": "es"})
    assert response.status_code == 302 and reverse("login") in response["Location"]


@pytest.mark.django_db
def test_a_pages_messages_are_in_the_persons_language(client, languages):
    a, _b = languages
    client.force_login(a.advisor)
    student = a.students[0]
    response = client.post(reverse("flag-create", args=[a.institution.slug, student.pk]), {"reason": ""}, follow=True)
    assert "Indique por qué este estudiante necesita atención." in response.content.decode()


@pytest.mark.django_db
def test_an_administrator_sets_their_institutions_default_language_only(client, languages):
    a, b = languages
    members = reverse("institution-language", args=[a.institution.slug])
    client.force_login(a.admin)
    response = client.post(members, {"default_language": "pt"}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("member-list", args=[a.institution.slug])
    a.institution.refresh_from_db()
    b.institution.refresh_from_db()
    assert a.institution.default_language == "pt" and b.institution.default_language == "pt"
    body = response.content.decode()
    assert "El idioma predeterminado de" in body  # said in the language the change was made in
    assert "Idioma das páginas" in body  # and the next page follows the new default
    client.post(members, {"default_language": "xx"})
    a.institution.refresh_from_db()
    assert a.institution.default_language == "pt"
    # B's administrator cannot reach A's page; A's advisor may not change it.
    client.force_login(b.admin)
    assert client.post(members, {"default_language": "es"}).status_code == 404
    client.force_login(a.advisor)
    assert client.post(members, {"default_language": "es"}).status_code == 403
    a.institution.refresh_from_db()
    assert a.institution.default_language == "pt"
    # B's own change does not touch A.
    client.force_login(b.admin)
    client.post(reverse("institution-language", args=[b.institution.slug]), {"default_language": "en"})
    a.institution.refresh_from_db()
    b.institution.refresh_from_db()
    assert (a.institution.default_language, b.institution.default_language) == ("pt", "en")
