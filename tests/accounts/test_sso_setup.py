"""An institution's administrators set up its single sign-on; the login page finds it; "SSO only"
turns passwords off for its members. (The sign-in itself, against a real provider: test_sso_oidc.py.)"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.core import mail
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.models import IdentityProvider, SsoIdentity
from accounts.sso import SsoPerson, role_from_claims, sso_sign_in
from accounts.sso_secrets import SecretUnavailable, secret_open, secret_seal
from institutions.models import ApiKey, Role
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db
RAW_SECRET = "s3cret-from-the-provider-XYZ"


def form_data(**overrides):
    data = {"protocol": "oidc", "name": "Campus login", "enabled": "on", "email_domains_text": "alpha.example",
            "role_attribute": "groups", "role_rules_text": "advisors = advisor\nit-admins = admin", "default_role": "",
            "oidc_issuer": "https://login.alpha.example/v2.0", "oidc_client_id": "platform",
            "client_secret": RAW_SECRET}
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def provider_of(institution, **fields):
    values = {"name": "Campus login", "protocol": "oidc", "oidc_issuer": "https://login.example/v2.0",
              "oidc_client_id": "platform", "oidc_client_secret_stored": secret_seal("x"), "default_role": Role.VIEWER,
              **fields}
    return IdentityProvider.objects.for_institution(institution).create(**values)


def test_an_admin_sets_up_a_provider_and_its_secret_is_stored_encrypted_and_never_shown(client, tenants):
    a, _b = tenants
    client.force_login(a.admin)
    response = client.post(reverse("sso-provider-new", args=[a.institution.slug]), form_data())
    assert response.status_code == 302, response.content.decode()[:2000]
    provider = IdentityProvider.objects.for_institution(a.institution).get()
    stored = provider.oidc_client_secret_stored
    assert RAW_SECRET not in stored and secret_open(stored) == RAW_SECRET
    assert provider.role_rules == [{"value": "advisors", "role": "advisor"}, {"value": "it-admins", "role": "admin"}]
    assert provider.email_domains == ["alpha.example"] and provider.updated_by == a.admin
    for url in (reverse("sso-provider-list", args=[a.institution.slug]),
                reverse("sso-provider-edit", args=[a.institution.slug, provider.pk])):
        page = client.get(url).content.decode()
        assert RAW_SECRET not in page and stored not in page
    edit = client.get(reverse("sso-provider-edit", args=[a.institution.slug, provider.pk])).content.decode()
    assert re.search(r'<input type="password" name="client_secret"[^>]*>', edit)
    assert 'value="' not in re.search(r'<input type="password" name="client_secret"[^>]*>', edit).group(0)
    assert f"/accounts/sso/oidc/idp{provider.pk}/login/callback/" in edit  # the redirect URI to register

    # Blank keeps the stored secret; a new one replaces it.
    client.post(reverse("sso-provider-edit", args=[a.institution.slug, provider.pk]),
                form_data(client_secret="", name="Campus login (new)"))
    provider.refresh_from_db()
    assert provider.name == "Campus login (new)" and provider.oidc_client_secret_stored == stored
    client.post(reverse("sso-provider-edit", args=[a.institution.slug, provider.pk]), form_data(client_secret="other"))
    provider.refresh_from_db()
    assert secret_open(provider.oidc_client_secret_stored) == "other"


def test_the_staff_admin_never_shows_the_secret(client, tenant_a):
    provider = provider_of(tenant_a.institution, oidc_client_secret_stored=secret_seal(RAW_SECRET))
    client.force_login(UserFactory(username="platform-staff", is_staff=True, is_superuser=True))
    page = client.get(f"/admin/accounts/identityprovider/{provider.pk}/change/")
    assert page.status_code == 200
    assert provider.oidc_client_secret_stored not in page.content.decode()
    assert "oidc_client_secret_stored" not in page.content.decode()


def test_a_secret_from_the_environment_must_use_the_prefix(client, tenants, monkeypatch):
    a, _b = tenants
    client.force_login(a.admin)
    url = reverse("sso-provider-new", args=[a.institution.slug])
    response = client.post(url, form_data(client_secret="env:DJANGO_SECRET_KEY"))
    assert response.status_code == 400 and "env:SSO_CLIENT_SECRET_&lt;NAME&gt;" in response.content.decode()
    assert not IdentityProvider.objects.for_institution(a.institution).exists()
    assert client.post(url, form_data(client_secret="env:SSO_CLIENT_SECRET_ALPHA")).status_code == 302
    stored = IdentityProvider.objects.for_institution(a.institution).get().oidc_client_secret_stored
    assert stored == "env:SSO_CLIENT_SECRET_ALPHA"
    monkeypatch.delenv("SSO_CLIENT_SECRET_ALPHA", raising=False)
    with pytest.raises(SecretUnavailable, match="SSO_CLIENT_SECRET_ALPHA is not set"):
        secret_open(stored)
    monkeypatch.setenv("SSO_CLIENT_SECRET_ALPHA", "from-env")
    assert secret_open(stored) == "from-env"


def test_the_encryption_key_can_be_rotated(settings):
    old, new = "0" * 43 + "=", "1" * 43 + "="
    settings.SSO_SECRET_KEY = old
    stored = secret_seal("rotate-me")
    settings.SSO_SECRET_KEY = f"{new},{old}"
    assert secret_open(stored) == "rotate-me"
    settings.SSO_SECRET_KEY = new
    with pytest.raises(SecretUnavailable, match="cannot be decrypted"):
        secret_open(stored)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"role_rules_text": "advisors: advisor"}, "line 1 (&#x27;advisors: advisor&#x27;)"),
    ({"role_rules_text": "advisors = superuser"}, "write &#x27;value = admin&#x27;"),
    ({"role_rules_text": "", "default_role": ""}, "Give a default role or at least one role rule"),
    ({"oidc_issuer": "http://login.alpha.example"}, "must start with https://"),
    ({"client_secret": ""}, "Give the client secret"),
    ({"email_domains_text": "not a domain"}, "Not an email domain"),
])
def test_a_bad_set_up_is_refused_with_a_specific_message_and_nothing_is_saved(client, tenant_a, settings, overrides,
                                                                                message):
    settings.SSO_ALLOW_HTTP_ISSUERS = False
    client.force_login(tenant_a.admin)
    response = client.post(reverse("sso-provider-new", args=[tenant_a.institution.slug]), form_data(**overrides))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not IdentityProvider.objects.for_institution(tenant_a.institution).exists()


def test_an_email_domain_of_another_institution_cannot_be_claimed(client, tenants):
    a, b = tenants
    provider_of(a.institution, email_domains=["alpha.example"])
    client.force_login(b.admin)
    response = client.post(reverse("sso-provider-new", args=[b.institution.slug]), form_data())
    assert response.status_code == 400 and "already used by another institution" in response.content.decode()
    assert not IdentityProvider.objects.for_institution(b.institution).exists()


def test_only_the_institutions_admins_reach_its_sso_set_up(client, tenants):
    a, b = tenants
    provider = provider_of(a.institution, name="Alpha secret IdP")
    client.force_login(a.advisor)
    assert client.get(reverse("sso-provider-list", args=[a.institution.slug])).status_code == 403
    client.force_login(b.admin)
    b_list = client.get(reverse("sso-provider-list", args=[b.institution.slug])).content.decode()
    assert "Alpha secret IdP" not in b_list
    assert client.get(reverse("sso-provider-edit", args=[b.institution.slug, provider.pk])).status_code == 404
    assert client.post(reverse("sso-provider-edit", args=[b.institution.slug, provider.pk]),
                       form_data()).status_code == 404
    assert client.post(reverse("sso-provider-delete", args=[b.institution.slug, provider.pk])).status_code == 404
    assert client.get(reverse("sso-provider-list", args=[a.institution.slug])).status_code == 404
    assert IdentityProvider.objects.for_institution(a.institution).get().name == "Alpha secret IdP"
    client.force_login(a.admin)
    assert client.post(reverse("sso-provider-delete", args=[a.institution.slug, provider.pk])).status_code == 302
    assert not IdentityProvider.objects.for_institution(a.institution).exists()


def test_the_login_page_finds_the_sign_in_by_email_domain_or_by_institution(client, tenants):
    a, b = tenants
    pa = provider_of(a.institution, name="Alpha Campus", email_domains=["alpha.example"])
    provider_of(a.institution, name="Alpha Old", email_domains=["alpha.example"], enabled=False)
    provider_of(b.institution, name="Beta Campus", email_domains=["beta.example"])
    login_page = client.get(reverse("login")).content.decode()
    assert 'action="/accounts/sso/"' in login_page

    page = client.post(reverse("sso-find"), {"email": "Someone@Alpha.Example"}).content.decode()
    assert "Sign in with Alpha Campus" in page and f'action="/accounts/sso/oidc/idp{pa.pk}/login/"' in page
    assert "Beta Campus" not in page.split("Or choose your institution")[0] and "Alpha Old" not in page
    assert "No single sign-on is set up" in client.post(reverse("sso-find"), {"email": "x@elsewhere.example"}
                                                        ).content.decode()
    assert client.post(reverse("sso-find"), {"email": "no-at-sign"}).status_code == 400
    by_institution = client.get(reverse("sso-find"), {"institution": b.institution.slug}).content.decode()
    assert "Sign in with Beta Campus" in by_institution and "Sign in with Alpha Campus" not in by_institution


def _sso_only(institution, admin):
    provider = provider_of(institution, sso_only=True)
    SsoIdentity.objects.for_institution(institution).create(provider=provider, subject="admin-sub", user=admin)
    return provider


def test_sso_only_turns_password_login_off_for_the_institutions_members(client, tenants):
    a, b = tenants
    _sso_only(a.institution, a.admin)
    response = client.post(reverse("login"), {"username": a.advisor.username, "password": "pw-for-tests"})
    assert response.status_code == 200
    assert "single sign-on only" in response.content.decode() and "Campus login (ALPHA University)" in \
        response.content.decode()
    assert "_auth_user_id" not in client.session
    response = client.post(reverse("login"), {"username": b.advisor.username, "password": "pw-for-tests"})
    assert response.status_code == 302 and int(client.session["_auth_user_id"]) == b.advisor.pk


def test_sso_only_sends_no_password_reset_and_a_reset_link_no_longer_works(client, tenants):
    a, b = tenants
    uid, token = urlsafe_base64_encode(force_bytes(a.viewer.pk)), default_token_generator.make_token(a.viewer)
    _sso_only(a.institution, a.admin)
    first = client.post(reverse("password_reset"), {"email": a.viewer.email})
    second = client.post(reverse("password_reset"), {"email": b.viewer.email})
    assert first.status_code == second.status_code == 302 and first["Location"] == second["Location"]
    assert [m.to for m in mail.outbox] == [[b.viewer.email]]
    # A link sent before SSO only was turned on.
    page = client.get(reverse("password_reset_confirm", args=[uid, token]), follow=True)
    response = client.post(page.redirect_chain[-1][0], {"new_password1": "A-new-long-pass-9", "new_password2":
                                                        "A-new-long-pass-9"})
    assert response.status_code == 200 and "single sign-on only" in response.content.decode()
    a.viewer.refresh_from_db()
    assert a.viewer.check_password("pw-for-tests")


def test_sso_only_needs_the_admin_to_have_signed_in_through_the_provider(client, tenant_a):
    client.force_login(tenant_a.admin)
    provider = provider_of(tenant_a.institution, oidc_issuer="https://login.alpha.example/v2.0")
    url = reverse("sso-provider-edit", args=[tenant_a.institution.slug, provider.pk])
    response = client.post(url, form_data(sso_only="on", client_secret=""))
    assert response.status_code == 400 and "Sign in through this provider yourself first" in response.content.decode()
    provider.refresh_from_db()
    assert not provider.sso_only
    SsoIdentity.objects.for_institution(tenant_a.institution).create(provider=provider, subject="s",
                                                                     user=tenant_a.admin)
    assert client.post(url, form_data(sso_only="on", client_secret="")).status_code == 302
    provider.refresh_from_db()
    assert provider.sso_only


def test_the_issuer_cannot_change_once_people_sign_in_through_it(client, tenant_a):
    client.force_login(tenant_a.admin)
    provider = provider_of(tenant_a.institution, oidc_issuer="https://login.alpha.example/v2.0")
    SsoIdentity.objects.for_institution(tenant_a.institution).create(provider=provider, subject="s",
                                                                     user=tenant_a.advisor)
    url = reverse("sso-provider-edit", args=[tenant_a.institution.slug, provider.pk])
    response = client.post(url, form_data(oidc_issuer="https://evil.example", client_secret=""))
    assert response.status_code == 400 and "cannot change" in response.content.decode()
    provider.refresh_from_db()
    assert provider.oidc_issuer == "https://login.alpha.example/v2.0"


def test_the_highest_mapped_role_wins_and_single_values_count(tenant_a):
    provider = provider_of(tenant_a.institution, role_attribute="eduPersonAffiliation", default_role="",
                           role_rules=[{"value": "member", "role": "viewer"}, {"value": "staff", "role": "advisor"},
                                       {"value": "faculty", "role": "admin"}])
    assert role_from_claims(provider, {"eduPersonAffiliation": ["member", "staff"]}) == Role.ADVISOR
    assert role_from_claims(provider, {"eduPersonAffiliation": "faculty"}) == Role.ADMIN
    assert role_from_claims(provider, {"eduPersonAffiliation": ["student"]}) is None
    assert role_from_claims(provider, {}) is None


def test_opening_a_sign_in_link_asks_before_leaving_for_the_provider(client, tenant_a):
    provider = provider_of(tenant_a.institution, name="Alpha Campus")
    page = client.get(reverse("openid_connect_login", kwargs={"provider_id": provider.allauth_provider_id}))
    text = page.content.decode()
    # A GET never starts a sign-in (a link on another site cannot start one): it asks for a POST.
    assert page.status_code == 200 and "Continue to Alpha Campus" in text and '<form method="post">' in text


def test_a_linked_service_account_or_a_deactivated_account_cannot_sign_in(tenant_a):
    provider = provider_of(tenant_a.institution, default_role=Role.ADVISOR)
    identities = SsoIdentity.objects.for_institution(tenant_a.institution)
    service = UserFactory(username="svc")
    ApiKey.objects.for_institution(tenant_a.institution).create(name="k", service_user=service, prefix="p1",
                                                                 key_hash="h" * 64)
    identities.create(provider=provider, subject="svc-sub", user=service)
    outcome = sso_sign_in(provider=provider, person=SsoPerson(subject="svc-sub"))
    assert outcome.membership is None and "service account" in outcome.refusal
    tenant_a.viewer.is_active = False
    tenant_a.viewer.save()
    identities.create(provider=provider, subject="gone-sub", user=tenant_a.viewer)
    outcome = sso_sign_in(provider=provider, person=SsoPerson(subject="gone-sub"))
    assert outcome.membership is None and "deactivated" in outcome.refusal


def test_a_subject_linked_to_one_account_cannot_be_connected_to_another(tenant_a):
    provider = provider_of(tenant_a.institution, default_role=Role.ADVISOR)
    SsoIdentity.objects.for_institution(tenant_a.institution).create(provider=provider, subject="s1",
                                                                     user=tenant_a.advisor)
    outcome = sso_sign_in(provider=provider, person=SsoPerson(subject="s1"), connect_user=tenant_a.admin)
    assert outcome.membership is None and "already connected to another account" in outcome.refusal
    assert SsoIdentity.objects.for_institution(tenant_a.institution).get(subject="s1").user == tenant_a.advisor


def test_sso_only_also_holds_on_the_staff_admin_login(client, tenants):
    a, _b = tenants
    _sso_only(a.institution, a.admin)
    staff_member = UserFactory(username="staff-member", is_staff=True, is_superuser=True)
    MembershipFactory(institution=a.institution, user=staff_member, role=Role.VIEWER)
    response = client.post("/admin/login/", {"username": "staff-member", "password": "pw-for-tests"})
    assert response.status_code == 200 and "single sign-on only" in response.content.decode()
    assert "_auth_user_id" not in client.session
    UserFactory(username="plain-staff", is_staff=True, is_superuser=True)
    assert client.post("/admin/login/", {"username": "plain-staff", "password": "pw-for-tests"}).status_code == 302
