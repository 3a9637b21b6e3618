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
