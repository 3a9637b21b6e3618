"""Localisation of the account, administration and privacy pages (docs/translating.md): each page
in Spanish for a member of institution A (default es) and in Portuguese for one of B (default pt),
or in the browser's language for a page shown before signing in, with none of its English left."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import IdentityProvider
from accounts.services import invitation_create

pytestmark = pytest.mark.django_db

SPANISH, PORTUGUESE = "es", "pt"


@pytest.fixture
def languages(tenant_a, tenant_b):
    """Institution A defaults to Spanish, B to Portuguese."""
    for tenant, language in ((tenant_a, SPANISH), (tenant_b, PORTUGUESE)):
        tenant.institution.default_language = language
        tenant.institution.save(update_fields=["default_language"])
    return tenant_a, tenant_b


def assert_page_in(response, phrase: str, english: list[str], *, status: int = 200):
    """The page answered, shows ``phrase`` (of its language), and none of its own English words."""
    body = response.content.decode()
    assert response.status_code == status, (response.status_code, body[:300])
    assert phrase in body, phrase
    left = [words for words in english if words in body]
    assert left == [], left


def each_language(tenants):
    """(tenant, language index) for A in Spanish and B in Portuguese."""
    a, b = tenants
    return [(a, 0), (b, 1)]


# --- accounts: the institution's administration ------------------------------------------------------

ADMIN_PAGES = [
    # (url name, (Spanish phrase, Portuguese phrase), English words of the page)
    ("invitation-list", ("Invitar a un miembro", "Convidar um membro"),
     ["Invite a member", "Send invitation", "Back to the members", "The invitation link is sent", ">Role<",
      "pending (until", "Revoke the invitation"]),
    ("security-policy", ("Reglas de inicio de sesión de", "Regras de início de sessão de"),
     ["Sign-in rules of", "Administrators must use two-factor", "Your own two-factor sign-in", ">Save<"]),
    ("sso-provider-list", ("Añadir un proveedor de identidad", "Adicionar um fornecedor de identidade"),
     ["Add an identity provider", "Single sign-on of", "linked account", "Known accounts only", "Otherwise:",
      "Connect my account", "Remove the sign-in"]),
    ("sso-provider-new", ("Nuevo proveedor de identidad", "Novo fornecedor de identidade"),
     ["New identity provider", "Email domains", "Role rules", "Client secret", "OIDC issuer URL",
      "None: refuse the sign-in", "Shown on the login page", "Back to single sign-on"]),
]


@pytest.mark.parametrize("name, phrases, english", ADMIN_PAGES, ids=[page[0] for page in ADMIN_PAGES])
def test_the_account_administration_pages_are_in_each_institutions_language(client, languages, name, phrases,
                                                                             english):
    for tenant, index in each_language(languages):
        invitation_create(institution=tenant.institution, invited_by=tenant.admin, email="new@uni.example",
                          role="advisor", base_url="http://testserver/")
        IdentityProvider.objects.for_institution(tenant.institution).create(
            protocol="oidc", name="Campus login", oidc_issuer="https://login.uni.example",
            oidc_client_id="platform", default_role="advisor", jit_provisioning=False)
        client.force_login(tenant.admin)
        assert_page_in(client.get(reverse(name, args=[tenant.institution.slug])), phrases[index], english)


def test_an_invitations_state_and_its_sent_message_are_translated(client, languages):
    a, _b = languages
    client.force_login(a.admin)
    response = client.post(reverse("invitation-list", args=[a.institution.slug]),
                           {"email": "colleague@uni.example", "role": "viewer"}, follow=True)
    assert_page_in(response, "Invitación enviada a colleague@uni.example como Observador.",
                   ["Invitation sent", "pending (until"])
    assert "pendiente (hasta el" in response.content.decode()


def test_an_identity_provider_form_error_is_in_the_institutions_language(client, languages):
    _a, b = languages
    client.force_login(b.admin)
    response = client.post(reverse("sso-provider-new", args=[b.institution.slug]),
                           {"protocol": "oidc", "name": "Campus", "enabled": "on",
                            "email_domains_text": "not a domain!"})
    assert_page_in(response, "Não é um domínio de e-mail", ["Not an email domain", "Give a default role"],
                   status=400)
    assert "Indique uma função predefinida ou pelo menos uma regra de funções" in response.content.decode()
    # Help texts are shown as HTML: the placeholders in angle brackets are written as text, not as tags.
    assert "«Iniciar sessão com &lt;nome&gt;»" in response.content.decode()
    assert "env:SSO_CLIENT_SECRET_&lt;NAME&gt;" in response.content.decode()


# --- accounts: the person's own sign-in ------------------------------------------------------------------

OWN_PAGES = [
    ("two-factor", ("Configurar una aplicación de autenticación", "Configurar uma aplicação de autenticação"),
     ["Set up an authenticator app", "Two-factor sign-in", "Change your password"]),
    ("two-factor-setup", ("Confirmar y activar", "Confirmar e ativar"),
     ["Confirm and turn on", "Code from the app", "or by typing this key", "to finish later"]),
    ("two-factor-verify", ("Código de su aplicación", "Código da sua aplicação"),
     ["Code from your app", "Your account uses two-factor", "Lost your phone"]),
    ("sso-find", ("Buscar el inicio de sesión de mi institución", "Procurar o início de sessão da minha instituição"),
     ["Find my institution's sign-in", "Connect your account", "Your email address"]),
]


@pytest.mark.parametrize("name, phrases, english", OWN_PAGES, ids=[page[0] for page in OWN_PAGES])
def test_the_own_sign_in_pages_are_in_the_language_of_the_persons_institution(client, languages, name, phrases,
                                                                               english):
    for tenant, index in each_language(languages):
        client.force_login(tenant.advisor)
        assert_page_in(client.get(reverse(name)), phrases[index], english)


def test_recovery_codes_and_the_two_factor_messages_are_translated(client, languages):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from tests.accounts.test_two_factor import code_for

    a, _b = languages
    client.force_login(a.advisor)
    client.get(reverse("two-factor-setup"))
    wrong = client.post(reverse("two-factor-setup"), {"token": "000000"})
    assert_page_in(wrong, "Ese código no es correcto.", ["That code is not right"], status=400)
    device = TOTPDevice.objects.get(user=a.advisor, confirmed=False)
    shown = client.post(reverse("two-factor-setup"), {"token": code_for(device)})
    assert_page_in(shown, "Sus códigos de recuperación", ["Your recovery codes", "Save these codes now",
                                                            "I have saved them"])
    account = client.get(reverse("two-factor"))
    assert_page_in(account, "Le quedan 10 códigos de recuperación sin usar.",
                   ["unused recovery code", "Move it to a new phone", "Turn two-factor sign-in off"])


# --- accounts: pages before signing in, in the browser's language -------------------------------------

def test_an_invitation_link_is_in_the_browsers_language(languages):
    a, _b = languages
    _invitation, link = invitation_create(institution=a.institution, invited_by=a.admin, email="new@uni.example",
                                          role="advisor", base_url="http://testserver/")
    for accept, phrase in (("es-CO,es;q=0.9", "Crear la cuenta y unirse"),
                           ("pt-PT,pt;q=0.9", "Criar a conta e aderir")):
        response = Client().get(link, HTTP_ACCEPT_LANGUAGE=accept)
        assert_page_in(response, phrase, ["Create account and join", "You are invited as", "Already have an account",
                                          "Or create your account"])
    invalid = Client().get(link[:-3] + "xyz/", HTTP_ACCEPT_LANGUAGE="pt-PT")
    assert_page_in(invalid, "Esta ligação de convite não é válida", ["This invitation link is not valid",
                                                                      "It may have expired"], status=404)


def test_the_lock_after_too_many_failed_logins_is_in_the_browsers_language(languages, settings):
    a, _b = languages
    client = Client()
    for _attempt in range(settings.AXES_FAILURE_LIMIT + 1):
        response = client.post(reverse("login"), {"username": a.advisor.username, "password": "wrong"},
                               HTTP_ACCEPT_LANGUAGE="es-CO,es;q=0.9")
    assert_page_in(response, "Demasiados inicios de sesión fallidos",
                   ["Too many failed logins", "failed attempts", "reset your password"], status=429)


def test_the_single_sign_on_steps_are_in_the_browsers_language(languages):
    _a, b = languages
    oidc = IdentityProvider.objects.for_institution(b.institution).create(
        protocol="oidc", name="Campus login", oidc_issuer="https://login.uni.example", oidc_client_id="platform",
        default_role="advisor")
    saml = IdentityProvider.objects.for_institution(b.institution).create(
        protocol="saml", name="Campus Shibboleth", saml_metadata_url="https://idp.uni.example/metadata",
        default_role="advisor")
    portuguese = {"HTTP_ACCEPT_LANGUAGE": "pt-PT,pt;q=0.9"}
    before = Client().get(reverse("openid_connect_login", kwargs={"provider_id": oidc.allauth_provider_id}),
                          **portuguese)
    assert_page_in(before, "Continuar para Campus login", ["Continue to", "You are about to be sent"])
    acs = reverse("saml_acs", kwargs={"provider_id": saml.allauth_provider_id})
    hop = Client().post(acs, {"SAMLResponse": "x"}, **portuguese)
    assert_page_in(hop, "A iniciar sessão com Campus Shibboleth…", ["Signing in with", ">Continue<"])
    refused = Client().post(acs, {"SAMLResponse": "", "hop": "1"}, **portuguese)
    assert_page_in(refused, "O fornecedor de identidade não enviou resposta, ou enviou uma demasiado grande.",
                   ["Sign-in refused", "Nothing was changed", "The identity provider sent"], status=403)
    assert "Início de sessão recusado" in refused.content.decode()


# --- institutions: members, API keys, webhooks ----------------------------------------------------

def endpoint_for(tenant):
    from institutions.webhooks import webhook_endpoint_create

    return webhook_endpoint_create(institution=tenant.institution, url="https://sis.uni.example/hooks/dropout",
                                   events=["student.flagged"], created_by=tenant.admin)


INSTITUTION_PAGES = [
    ("member-list", ("Añadir un miembro", "Adicionar um membro"),
     ["Add a member", "Members of", "Members and their roles", "Role of", ">Change<", ">Remove<",
      "Two-factor sign-in for administrators", "New members join"]),
    ("api-key-list", ("Fecha de creación", "Data de criação"),
     ["Create a key", ">Created<", "Keys let student", "No keys yet", "Requests per minute", "No access",
      "Read and write", "Students: records", "In 90 days", ">Expires<", "Create key"]),
    ("webhook-list", ("Añadir un destino", "Adicionar um destino"),
     ["Add an endpoint", "Endpoints receive", "Endpoint URL", "A student was flagged", "Which events",
      ">active<", "Add endpoint"]),
]


@pytest.mark.parametrize("name, phrases, english", INSTITUTION_PAGES, ids=[page[0] for page in INSTITUTION_PAGES])
def test_the_institution_administration_pages_are_in_each_institutions_language(client, languages, name, phrases,
                                                                                 english):
    for tenant, index in each_language(languages):
        endpoint_for(tenant)
        client.force_login(tenant.admin)
        assert_page_in(client.get(reverse(name, args=[tenant.institution.slug])), phrases[index], english)


def test_a_webhook_endpoint_page_and_its_messages_are_in_each_institutions_language(client, languages):
    english = ["Send test event", "Rotate secret", "Signing secret", "Nothing sent yet", "Delivery log", ">Pause<",
               ">paused<", ">active<", "Endpoint URL"]
    for (tenant, index), rotated in zip(each_language(languages),
                                        ("Nuevo secreto de firma", "Novo segredo de assinatura"), strict=True):
        endpoint = endpoint_for(tenant)
        client.force_login(tenant.admin)
        url = reverse("webhook-detail", args=[tenant.institution.slug, endpoint.pk])
        assert_page_in(client.get(url), ("Enviar un evento de prueba", "Enviar um evento de teste")[index], english)
        response = client.post(reverse("webhook-action", args=[tenant.institution.slug, endpoint.pk, "rotate-secret"]),
                               follow=True)
        assert_page_in(response, rotated, [*english, "New signing secret"])


def test_a_new_api_key_is_shown_once_in_the_institutions_language(client, languages):
    _a, b = languages
    client.force_login(b.admin)
    response = client.post(reverse("api-key-list", args=[b.institution.slug]),
                           {"name": "Nightly SIS sync", "expires": "90", "rate_per_minute": "600",
                            "scope_students": "read"})
    assert_page_in(response, "Chave «Nightly SIS sync» criada", ["created", "Copy it now", "New API key", ">active<"],
                   status=201)
    assert "Copie-a agora; não voltará a ser mostrada." in response.content.decode()
    refused = client.post(reverse("api-key-list", args=[b.institution.slug]),
                          {"name": "No scope", "expires": "90", "rate_per_minute": "600"})
    assert_page_in(refused, "Dê à chave acesso a pelo menos um tipo de recurso.", ["Give the key access"],
                   status=400)


def test_the_institution_chooser_is_in_the_browsers_language(client, languages):
    from tests.factories import UserFactory

    client.force_login(UserFactory(username="nobody-yet"))
    response = client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="es-CO,es;q=0.9")
    assert_page_in(response, "Su cuenta aún no es miembro de ninguna institución.",
                   ["Choose an institution", "Your account is not a member"])


# --- privacy: retention, erasure, subject access ------------------------------------------------------

def test_the_retention_page_is_in_each_institutions_language(client, languages):
    english = ["How long data is kept", "Save rules", "would be erased", "would be closed",
               "Erase students this many days", "Term end days", "Run these rules every day", "No run yet",
               "Every erasure", "The daily run is off"]
    for tenant, index in each_language(languages):
        client.force_login(tenant.admin)
        response = client.get(reverse("retention", args=[tenant.institution.slug]))
        assert_page_in(response, ("Cuánto tiempo se conservan los datos",
                                  "Durante quanto tempo os dados são mantidos")[index], english)
        assert ("Se borrarían <strong>0</strong> estudiantes.",
                "Seriam apagados <strong>0</strong> estudantes.")[index] in response.content.decode()
    bad = client.post(reverse("retention", args=[tenant.institution.slug]),
                      {"term_end_dates_text": "13-45", "run_hour": "3"})
    assert_page_in(bad, "13-45&#x27; não é um dia do ano no formato MM-DD", ["is not a day of the year"])


def test_erasing_a_student_is_in_the_institutions_language(client, languages):
    a, _b = languages
    student = a.students[0]
    client.force_login(a.admin)
    page = client.get(reverse("student-erase", args=[a.institution.slug, student.pk]))
    assert_page_in(page, "Borrar a este estudiante", ["Erase this student", "This cannot be undone",
                                                     "Type the student's external id", "Nothing else names",
                                                     "Kept: figures", ">Cancel<", ">Deleted<", " students<"])
    assert "</strong> estudiantes</li>" in page.content.decode()
    wrong = client.post(reverse("student-erase", args=[a.institution.slug, student.pk]),
                        {"confirm_external_id": "not-it"})
    assert_page_in(wrong, "Ese no es el id externo de este estudiante; no se borró nada.",
                   ["That is not this student's external id"])
    done = client.post(reverse("student-erase", args=[a.institution.slug, student.pk]),
                       {"confirm_external_id": student.external_id}, follow=True)
    assert_page_in(done, "Se borró al estudiante. Id del borrado:",
                   ["The student was erased", "Erasure id", "One line per erased student", "Erasure page"])
    assert "Página de borrado" in done.content.decode()
    assert "entradas del registro de accesos (desvinculadas del estudiante)" in done.content.decode()
    assert "access log entries" not in done.content.decode()


def test_every_kind_of_row_an_erasure_can_count_has_a_translatable_name():
    from django.apps import apps

    from institutions.scoping import TenantModel
    from privacy.erasure import ACCESS_ENTRIES
    from privacy.row_kinds import ROW_KINDS

    kinds = {str(model._meta.verbose_name_plural) for model in apps.get_models()
             if issubclass(model, TenantModel) and not model._meta.proxy}
    assert sorted(kinds - set(ROW_KINDS)) == [], "name the new kind in privacy/row_kinds.py"
    assert ACCESS_ENTRIES in ROW_KINDS


def test_everything_held_about_a_student_is_in_each_institutions_language(client, languages):
    english = ["Download as JSON", "Everything held", "The record", "External id", "Feature values",
               "Data changes", "Who saw this record", "Predictions and their explanations", "Program, cohort",
               "Learning-platform activity", "Imports that name the student", "Sent to other systems", "Contents:"]
    from interventions.services import access_grant_create

    for tenant, index in each_language(languages):
        student = tenant.students[0]
        access_grant_create(institution=tenant.institution, student=student, user_id=tenant.advisor.pk,
                            reason="Covering", granted_by=tenant.admin)
        client.force_login(tenant.admin)
        response = client.get(reverse("student-export", args=[tenant.institution.slug, student.pk]))
        assert_page_in(response, ("Descargar como JSON", "Descarregar como JSON")[index],
                       [*english, "Student access grants"])
        assert ("Permisos de acceso a estudiantes (1)",
                "Permissões de acesso a estudantes (1)")[index] in response.content.decode()


# --- the access log and the notifications ---------------------------------------------------------------

def test_the_access_log_is_in_each_institutions_language(client, languages):
    english = ["Search the access log", "Export these entries", "External id, or #id", "To (inclusive)",
               "Any read", "Anyone", "No entries match", "Viewed the student profile", " rows<", ">Newer<"]
    for tenant, index in each_language(languages):
        client.force_login(tenant.admin)
        client.get(reverse("student-detail", args=[tenant.institution.slug, tenant.students[0].pk]))
        response = client.get(reverse("access-log", args=[tenant.institution.slug]), {"action": ""})
        assert_page_in(response, ("Consultó el perfil del estudiante", "Consultou o perfil do estudante")[index],
                       english)
        unknown = client.get(reverse("access-log", args=[tenant.institution.slug]), {"student": "NOPE"})
        assert_page_in(unknown, ("No hay ningún estudiante con el id externo &#x27;NOPE&#x27;",
                                 "Não há nenhum estudante com o id externo &#x27;NOPE&#x27;")[index],
                       ["No student with external id"], status=400)


def test_the_notification_pages_are_in_each_institutions_language(client, languages):
    from workspace.notifications import notifications_create

    for tenant, index in each_language(languages):
        for number in range(51):
            notifications_create(institution=tenant.institution, user_ids=[tenant.advisor.pk], kind="follow_up_due",
                                 title=f"Follow up {number}", url=f"/i/{tenant.institution.slug}/")
        client.force_login(tenant.advisor)
        listing = client.get(reverse("notification-list", args=[tenant.institution.slug]))
        assert_page_in(listing, ("Marcar todo como leído", "Marcar tudo como lido")[index],
                       ["Mark all read", "Email digest settings", "Alerts routed or referred", ">All<", ">Unread<",
                        "Follow-up due", ">Next<", "Page 1 of"])
        assert ("Página 1 de 2 (51 en total)", "Página 1 de 2 (51 no total)")[index] in listing.content.decode()
        read = client.post(reverse("notification-read-all", args=[tenant.institution.slug]), follow=True)
        assert_page_in(read, ("51 notificaciones marcadas como leídas.", "51 notificações marcadas como lidas.")[index],
                       ["marked read"])
        settings_page = client.get(reverse("notification-preferences", args=[tenant.institution.slug]))
        assert_page_in(settings_page, ("Volver a sus notificaciones", "Voltar às suas notificações")[index],
                       ["Email digest", "Daily, each morning", "Newly flagged students", "It is sent from 07:00",
                        "Back to your notifications", "No digest has been sent", "Digests go to", ">Save<"])
        saved = client.post(reverse("notification-preferences", args=[tenant.institution.slug]),
                            {"digest": "weekly"}, follow=True)
        assert_page_in(saved, ("Resumen por correo: Semanal (los lunes).",
                               "Resumo por e-mail: Semanal (às segundas-feiras).")[index], ["Email digest:"])


def test_a_refused_webhook_address_is_explained_in_the_institutions_language(client, languages):
    a, _b = languages
    client.force_login(a.admin)
    response = client.post(reverse("webhook-list", args=[a.institution.slug]),
                           {"url": "http://sis.uni.example/hooks", "events": ["student.flagged"]})
    assert_page_in(response, "las URL de webhooks deben usar https://", ["webhook URLs must use"], status=400)
