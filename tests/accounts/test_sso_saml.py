"""Signing in through an institution's SAML 2.0 identity provider: a real IdP process
(tests/peers/saml_idp, pysaml2's IdP server) on 127.0.0.1 with a key pair generated for the run,
which shows its own login page and signs its assertions. Each refusal is a specific page, and
changes no account or membership."""

from __future__ import annotations

import html
import re

import pytest
import requests
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from accounts.models import IdentityProvider, SsoIdentity
from institutions.models import Membership, Role
from tests.peers.saml import saml_peer  # noqa: F401 - the fixture

from .test_sso_oidc import refusal, snapshot

pytestmark = pytest.mark.django_db
PASSWORD = "campus-saml-pw"


@pytest.fixture(autouse=True)
def _honest_idp(saml_peer, settings):  # noqa: F811
    settings.SSO_ALLOW_HTTP_ISSUERS = True  # the peer is http://127.0.0.1
    cache.clear()
    saml_peer.fault("")
    yield
    saml_peer.fault("")


def saml_provider_for(institution, peer, **fields) -> IdentityProvider:
    """An enabled SAML provider of ``institution`` at ``peer``, which trusts its SP metadata."""
    values = {"name": "Campus Shibboleth", "role_attribute": "eduPersonAffiliation",
              "role_rules": [{"value": "faculty", "role": "advisor"}, {"value": "member", "role": "viewer"}],
              "default_role": "", "jit_provisioning": True, **fields}
    provider = IdentityProvider.objects.for_institution(institution).create(
        protocol="saml", saml_metadata_url=peer.metadata_url, **values)
    metadata = Client().get(reverse("saml_metadata", kwargs={"provider_id": provider.allauth_provider_id}))
    assert metadata.status_code == 200
    peer.trust(metadata.content.decode())
    return provider


def person(peer, username, affiliations):
    peer.add_person(username, password=PASSWORD, email=f"{username}@campus.example", affiliations=affiliations,
                    first_name=username.title(), last_name="Tester")


def answer_from_idp(client, provider, username, password=PASSWORD) -> dict:
    """Press "Continue", log in on the IdP's own page; returns what its page would post to us."""
    start = client.post(reverse("saml_login", kwargs={"provider_id": provider.allauth_provider_id}))
    assert start.status_code == 302, start.content[:500]
    idp = requests.Session()
    page = idp.get(start["Location"], timeout=10)
    assert page.status_code == 200 and "Campus SAML IdP" in page.text, page.text[:500]
    key = re.search(r'name="key" value="([^"]+)"', page.text).group(1)
    login_url = page.url.split("/sso/")[0] + "/login"
    answer = idp.post(login_url, data={"key": key, "username": username, "password": password}, timeout=30)
    assert answer.status_code == 200, answer.text[:500]
    action = html.unescape(re.search(r'<form method="post" action="([^"]+)"', answer.text).group(1))
    fields = dict(re.findall(r'name="(SAMLResponse|RelayState)" value="([^"]*)"', answer.text))
    return {"action": action, "data": {k: html.unescape(v) for k, v in fields.items()}}


def post_answer(client, answer):
    """As the browser does: post to the ACS, and again from the platform's page if it asks (no session cookie)."""
    path = "/" + answer["action"].split("://", 1)[1].split("/", 1)[1]
    response = client.post(path, answer["data"])
    if response.status_code == 200 and b'name="hop" value="1"' in response.content:
        response = client.post(path, {**answer["data"], "hop": "1"})
    return response


def test_the_sp_metadata_names_the_entity_id_and_the_assertion_consumer_service(client, tenant_a, saml_peer):  # noqa: F811
    provider = saml_provider_for(tenant_a.institution, saml_peer)
    xml = client.get(reverse("saml_metadata", kwargs={"provider_id": provider.allauth_provider_id})).content.decode()
    assert f'entityID="http://testserver/accounts/sso/saml/{provider.allauth_provider_id}/metadata/"' in xml
    assert f'Location="http://testserver/accounts/sso/saml/{provider.allauth_provider_id}/acs/"' in xml
    assert 'WantAssertionsSigned="true"' in xml


def test_first_saml_sign_in_creates_the_account_and_membership_with_the_mapped_role(tenants, saml_peer, client):  # noqa: F811
    a, b = tenants
    provider = saml_provider_for(a.institution, saml_peer)
    person(saml_peer, "prof.ada", ["faculty", "member"])
    response = post_answer(client, answer_from_idp(client, provider, "prof.ada"))
    assert response.status_code == 302 and response["Location"] == reverse("institution-home", args=["alpha"])
    identity = SsoIdentity.objects.for_institution(a.institution).get(provider=provider)
    assert identity.subject == "campus-prof.ada" and identity.email == "prof.ada@campus.example"
    membership = Membership.objects.for_institution(a.institution).get(user=identity.user)
    assert membership.role == Role.ADVISOR  # faculty (advisor) outranks member (viewer)
    assert identity.user.first_name == "Prof.Ada" and not identity.user.has_usable_password()
    assert client.get(reverse("caseload", args=["alpha"])).status_code == 200
    assert not Membership.objects.for_institution(b.institution).filter(user=identity.user).exists()
    assert client.get(reverse("institution-home", args=["beta"])).status_code == 404


# Each refusal: what the IdP does wrong (a fault it is told to make), or what the person or the
# provider's settings lack, and the words the refusal page must say.
@pytest.mark.parametrize("username, affiliations, fault, provider_fields, clock_skew, says", [
    pytest.param("tamper.tom", ["member"], "tamper", {}, None, "invalid signature", id="tampered"),
    pytest.param("aud.ann", ["member"], "wrong_audience", {}, None, "wrong audience", id="for-another-service"),
    # valid for one second, handed over three seconds later, with no clock skew allowed
    pytest.param("late.lee", ["member"], "expired", {}, 0, "expired", id="expired"),
    pytest.param("new.nia", ["faculty"], "", {"jit_provisioning": False}, None, "not connected to an account",
                 id="unknown-person-without-just-in-time-creation"),
    pytest.param("stu.dent", ["student"], "", {}, None, "eduPersonAffiliation", id="no-mapped-affiliation"),
])
def test_a_refused_saml_answer_names_its_reason_and_changes_no_account_or_membership(
        tenant_a, saml_peer, client, settings, username, affiliations, fault, provider_fields,  # noqa: F811
        clock_skew, says):
    if clock_skew is not None:
        settings.SAML_CLOCK_SKEW_SECONDS = clock_skew
    provider = saml_provider_for(tenant_a.institution, saml_peer, **provider_fields)
    person(saml_peer, username, affiliations)
    saml_peer.fault(fault)
    before = snapshot()
    text = refusal(post_answer(client, answer_from_idp(client, provider, username)))
    assert says in text
    assert snapshot() == before


def test_a_replayed_assertion_is_refused(tenant_a, saml_peer, client):  # noqa: F811
    provider = saml_provider_for(tenant_a.institution, saml_peer)
    person(saml_peer, "replay.rae", ["member"])
    answer = answer_from_idp(client, provider, "replay.rae")
    assert post_answer(client, answer).status_code == 302
    client.logout()
    # The same answer (same assertion id) again, in this browser and in another that started its own sign-in.
    assert "replayed" in refusal(post_answer(client, answer))
    other = Client()
    other.post(reverse("saml_login", kwargs={"provider_id": provider.allauth_provider_id}))
    assert "replayed" in refusal(post_answer(other, answer))
    assert other.get(reverse("caseload", args=["alpha"])).status_code == 302  # not signed in


def test_an_answer_for_one_institution_is_refused_by_anothers_sign_in(tenants, saml_peer, client):  # noqa: F811
    a, b = tenants
    provider_a = saml_provider_for(a.institution, saml_peer)
    provider_b = saml_provider_for(b.institution, saml_peer)
    person(saml_peer, "both.bo", ["faculty"])
    answer = answer_from_idp(client, provider_a, "both.bo")
    acs_b = reverse("saml_acs", kwargs={"provider_id": provider_b.allauth_provider_id})
    before = snapshot()
    refusal(client.post(acs_b, answer["data"]))
    assert snapshot() == before


def test_a_garbled_answer_is_refused_without_an_error(tenant_a, saml_peer, client):  # noqa: F811
    provider = saml_provider_for(tenant_a.institution, saml_peer)
    acs = reverse("saml_acs", kwargs={"provider_id": provider.allauth_provider_id})
    # Without this site's session cookie (left out of the IdP's cross-site POST) the answer is
    # posted again from a page of this site; with none there either, it is refused.
    hop = client.post(acs, {"SAMLResponse": "%%% not base64"})
    assert hop.status_code == 200 and b'name="hop" value="1"' in hop.content and b"data-auto-submit" in hop.content
    assert "not readable" in refusal(client.post(acs, {"SAMLResponse": "%%% not base64", "hop": "1"}))
    assert "could not be verified" in refusal(client.post(acs, {"SAMLResponse": "PGZvbz4=", "hop": "1"}))  # <foo>


def test_an_admin_sets_up_saml_from_the_metadata_url_and_bad_metadata_is_refused(client, tenants, saml_peer):  # noqa: F811
    a, b = tenants
    client.force_login(a.admin)
    form = {"protocol": "saml", "name": "Campus Shibboleth", "enabled": "on", "jit_provisioning": "on",
            "role_attribute": "eduPersonAffiliation", "role_rules_text": "faculty = advisor", "default_role": "",
            "email_domains_text": "campus.example"}
    url = reverse("sso-provider-new", args=["alpha"])
    refused = client.post(url, {**form, "saml_metadata_xml": "<not-metadata/>"})
    assert refused.status_code == 400 and b"exactly one identity provider" in refused.content
    assert not IdentityProvider.objects.for_institution(a.institution).exists()
    assert client.post(url, {**form, "saml_metadata_url": saml_peer.metadata_url}).status_code == 302
    provider = IdentityProvider.objects.for_institution(a.institution).get()
    assert provider.saml_idp_entity_id == saml_peer.metadata_url
    edit = client.get(reverse("sso-provider-edit", args=["alpha", provider.pk])).content.decode()
    metadata_url = f"http://testserver/accounts/sso/saml/{provider.allauth_provider_id}/metadata/"
    assert f'id="sso-saml-metadata-url">{metadata_url}<' in edit and f'id="sso-saml-entity-id">{metadata_url}<' in edit
    assert not IdentityProvider.objects.for_institution(b.institution).exists()
    client.force_login(b.admin)
    assert client.get(reverse("sso-provider-edit", args=["alpha", provider.pk])).status_code == 404
