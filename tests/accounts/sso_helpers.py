"""Helpers of the SSO tests: an institution's identity provider pointed at the test OIDC
provider (tests/peers/oidc.py), and one sign-in through it, done the way a browser does (the
platform through Django's test client, the provider over HTTP with a session of its own)."""

from __future__ import annotations

import re
import secrets
from urllib.parse import urlsplit

import requests
from django.urls import reverse

from accounts.models import IdentityProvider
from accounts.sso_secrets import secret_seal
from tests.peers.oidc import OidcPeer

PASSWORD = "campus-pw-1"


def oidc_provider_for(institution, peer: OidcPeer, *, base_url: str = "http://testserver",
                      **fields) -> IdentityProvider:
    """An enabled OIDC provider of ``institution`` at ``peer``, its client registered there."""
    client_id = f"platform-{institution.slug}-{secrets.token_hex(4)}"
    client_secret = secrets.token_urlsafe(24)
    values = {"name": "Campus login", "role_attribute": "groups",
              "role_rules": [{"value": "advisors", "role": "advisor"}, {"value": "it-admins", "role": "admin"}],
              "default_role": "", "jit_provisioning": True, **fields}
    provider = IdentityProvider.objects.for_institution(institution).create(
        protocol="oidc", oidc_issuer=peer.issuer, oidc_client_id=client_id,
        oidc_client_secret_stored=secret_seal(client_secret), **values)
    callback = base_url + reverse("openid_connect_callback", kwargs={"provider_id": provider.allauth_provider_id})
    peer.add_client(client_id, client_secret, callback)
    return provider


def start(client, provider: IdentityProvider, **data):
    """POST the "Sign in with ..." button; returns the provider's authorize URL."""
    response = client.post(reverse("openid_connect_login", kwargs={"provider_id": provider.allauth_provider_id}),
                           data)
    assert response.status_code == 302, response.content[:500]
    return response["Location"]


def authorize_at_peer(authorize_url: str, username: str, password: str = PASSWORD) -> str:
    """Log in on the provider's own page; returns the platform callback URL it redirects to."""
    session = requests.Session()
    page = session.get(authorize_url, timeout=10)
    assert "Campus identity provider" in page.text, page.text[:500]
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    next_url = re.search(r'name="next" value="([^"]*)"', page.text).group(1).replace("&amp;", "&")
    response = session.post(page.url, data={"csrfmiddlewaretoken": csrf, "username": username, "password": password,
                                            "next": next_url}, allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text[:500]
    base = f"{urlsplit(authorize_url).scheme}://{urlsplit(authorize_url).netloc}"
    response = session.get(base + response.headers["Location"], allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text[:500]
    return response.headers["Location"]


def callback_path(callback_url: str) -> str:
    parts = urlsplit(callback_url)
    return f"{parts.path}?{parts.query}"


def sign_in(client, provider: IdentityProvider, username: str, **data):
    """The whole round trip; returns the platform's answer to the provider's redirect."""
    callback = authorize_at_peer(start(client, provider, **data), username)
    return client.get(callback_path(callback))
