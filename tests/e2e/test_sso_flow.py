"""Single sign-on in a real browser against a real OpenID Connect provider process
(tests/peers/oidc_provider): an institution's admin sets the provider up on the institution's
page, then a person finds it on the login page by their email address, signs in on the
provider's own page and lands in the institution with the role their group maps to."""

from __future__ import annotations

import secrets

import pytest

from accounts.models import IdentityProvider, SsoIdentity
from accounts.sso_secrets import secret_open
from tests.accounts.sso_helpers import PASSWORD
from tests.peers.oidc import oidc_peer  # noqa: F401 - fixture

from .conftest import assert_an_advisor_of_the_first_institution_only, log_in, sign_in_through_the_institutions_provider

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_person_signs_in_through_the_campus_provider_and_lands_with_the_mapped_role(
        live_server, page, screenshot, tenants, oidc_peer):  # noqa: F811 - the fixture imported above
    a, b = tenants
    oidc_peer.fault("")
    client_id, client_secret = f"platform-{secrets.token_hex(4)}", secrets.token_urlsafe(24)

    # The admin sets the provider up.
    log_in(page, live_server, "alpha-admin")
    page.goto(f"{live_server.url}/i/alpha/security/")
    page.get_by_role("link", name="Single sign-on").click()
    page.get_by_role("link", name="Add an identity provider").click()
    page.locator("#id_name").fill("Alpha Campus Login")
    page.get_by_label("Email domains").fill("alpha.example")
    page.get_by_label("Create accounts and memberships on first sign-in (just in time)").check()
    page.get_by_label("Role claim or attribute").fill("groups")
    page.get_by_label("Role rules").fill("advisors = advisor\nit-admins = admin")
    page.get_by_label("OIDC issuer URL").fill(oidc_peer.issuer)
    page.get_by_label("OIDC client id").fill(client_id)
    page.get_by_label("Client secret").fill(client_secret)
    screenshot(page, "sso-setup")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Saved the sign-in “Alpha Campus Login”.").wait_for()
    assert client_secret not in page.content()
    page.get_by_role("link", name="Alpha Campus Login").click()
    redirect_uri = page.locator("#sso-callback-url").inner_text()
    assert client_secret not in page.content()
    provider = IdentityProvider.objects.for_institution(a.institution).get()
    assert secret_open(provider.oidc_client_secret_stored) == client_secret
    oidc_peer.add_client(client_id, client_secret, redirect_uri)  # as the admin does at the provider
    page.get_by_role("button", name="Log out").click()

    # A person signs in.
    oidc_peer.add_person("nora", password=PASSWORD, email="nora@alpha.example", groups=["advisors", "staff"],
                         first_name="Nora", last_name="Quinn")
    sign_in_through_the_institutions_provider(
        page, live_server, email="nora@alpha.example", provider_name="Alpha Campus Login",
        provider_heading="Campus identity provider", provider_url=oidc_peer.url, username="nora", password=PASSWORD,
        buttons=("Sign in at campus",), slug="alpha", screenshot=screenshot,
        screenshot_names=("sso-provider-login", "sso-landed"))
    user = SsoIdentity.objects.for_institution(a.institution).get(provider=provider).user
    assert_an_advisor_of_the_first_institution_only(page, live_server, user, a, b)
