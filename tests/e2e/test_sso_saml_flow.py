"""SAML single sign-on in a real browser against a real SAML IdP process (tests/peers/saml_idp):
a person finds their institution's sign-in on the login page by their email address, signs in
on the IdP's own page, and lands in the institution with the role their eduPersonAffiliation maps to."""

from __future__ import annotations

import pytest
import requests
from django.core.cache import cache

from accounts.models import IdentityProvider, SsoIdentity
from institutions.models import Membership, Role
from tests.peers.saml import saml_peer  # noqa: F401 - fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PASSWORD = "campus-saml-pw"


def test_a_person_signs_in_through_the_campus_saml_idp_and_lands_with_the_mapped_role(
        live_server, page, screenshot, tenants, saml_peer, settings):  # noqa: F811 - the fixture imported above
    a, b = tenants
    settings.SSO_ALLOW_HTTP_ISSUERS = True
    cache.clear()
    saml_peer.fault("")
    provider = IdentityProvider.objects.for_institution(a.institution).create(
        protocol="saml", name="Alpha Shibboleth", email_domains=["campus.example"], jit_provisioning=True,
        role_attribute="eduPersonAffiliation", role_rules=[{"value": "faculty", "role": "advisor"}],
        saml_metadata_url=saml_peer.metadata_url)
    # The IdP's operators load the SP metadata from its URL.
    metadata = requests.get(f"{live_server.url}/accounts/sso/saml/{provider.allauth_provider_id}/metadata/",
                            timeout=10)
    assert metadata.status_code == 200
    saml_peer.trust(metadata.text)
    saml_peer.add_person("grace", password=PASSWORD, email="grace@campus.example", affiliations=["faculty", "member"],
                         first_name="Grace", last_name="Hopper")

    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Your email address").fill("grace@campus.example")
    page.get_by_role("button", name="Sign in with your institution").click()
    page.get_by_role("button", name="Sign in with Alpha Shibboleth").click()
    page.get_by_role("heading", name="Campus SAML IdP").wait_for()
    assert page.url.startswith(saml_peer.url)
    page.get_by_label("Campus username").fill("grace")
    page.get_by_label("Campus password").fill(PASSWORD)
    screenshot(page, "sso-saml-idp-login")
    page.get_by_role("button", name="Sign in at the campus").click()
    page.get_by_role("button", name="Continue to the service").click()
    page.wait_for_url(f"{live_server.url}/i/alpha/**")
    page.get_by_role("link", name="My caseload").wait_for()
    screenshot(page, "sso-saml-landed")
    user = SsoIdentity.objects.for_institution(a.institution).get(provider=provider).user
    assert user.email == "grace@campus.example"
    assert Membership.objects.for_institution(a.institution).get(user=user).role == Role.ADVISOR
    assert page.get_by_role("link", name="Members").count() == 0  # an advisor, not an admin
    assert not Membership.objects.for_institution(b.institution).filter(user=user).exists()
    assert page.goto(f"{live_server.url}/i/beta/").status == 404
