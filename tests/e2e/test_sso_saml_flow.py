"""SAML single sign-on in a real browser against a real SAML IdP process (tests/peers/saml_idp):
a person finds their institution's sign-in on the login page by their email address, signs in
on the IdP's own page, and lands in the institution with the role their eduPersonAffiliation maps to."""

from __future__ import annotations

import pytest
import requests
from django.core.cache import cache

from accounts.models import IdentityProvider, SsoIdentity
from tests.peers.saml import saml_peer  # noqa: F401 - fixture

from .conftest import assert_an_advisor_of_the_first_institution_only, sign_in_through_the_institutions_provider

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

    sign_in_through_the_institutions_provider(
        page, live_server, email="grace@campus.example", provider_name="Alpha Shibboleth",
        provider_heading="Campus SAML IdP", provider_url=saml_peer.url, username="grace", password=PASSWORD,
        buttons=("Sign in at the campus", "Continue to the service"), slug="alpha", screenshot=screenshot,
        screenshot_names=("sso-saml-idp-login", "sso-saml-landed"))
    user = SsoIdentity.objects.for_institution(a.institution).get(provider=provider).user
    assert user.email == "grace@campus.example"
    assert_an_advisor_of_the_first_institution_only(page, live_server, user, a, b)
