"""django-allauth, fed with the institutions' identity providers (docs/sso.md).

allauth speaks the protocols (OpenID Connect: discovery, the authorization-code flow with PKCE
and ``state``, the token request, the id_token's checks); ``accounts.sso`` decides what a
verified sign-in does. Nothing of allauth's own account handling is used: its ``SocialApp``s
are built in memory from ``IdentityProvider`` rows for the one request (the client secret is
decrypted only then), and every completed sign-in is taken over in ``pre_social_login``.

Stricter than allauth's defaults, for every OIDC provider:
- the id_token's signature is always checked against the provider's published keys (allauth
  skips it when the token came straight from the token endpoint, which the specification
  allows; a tampered token is refused here either way);
- a ``nonce`` is sent with each sign-in and must come back in the id_token (a token issued for an
  earlier sign-in is refused), besides allauth's single-use ``state``;
- the discovery document must name the configured issuer, and the userinfo answer must be about
  the id_token's subject.
"""

from __future__ import annotations

import hmac
import logging
import secrets

import jwt
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.internal import jwtkit
from allauth.socialaccount.models import SocialApp
from allauth.socialaccount.providers.base.constants import AuthProcess
from allauth.socialaccount.providers.oauth2.client import OAuth2Error
from allauth.socialaccount.providers.oauth2.views import OAuth2CallbackView, OAuth2LoginView
from allauth.socialaccount.providers.openid_connect.provider import OpenIDConnectProvider
from allauth.socialaccount.providers.openid_connect.views import OpenIDConnectOAuth2Adapter
from django.contrib import messages
from django.contrib.auth import login
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from requests import RequestException

from .models import IdentityProvider, SsoProtocol
from .sso import SsoPerson, provider_by_allauth_id, sso_sign_in
from .sso_secrets import SecretUnavailable, secret_open

log = logging.getLogger(__name__)
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


# --- OpenID Connect ----------------------------------------------------------------------------

class AnswerRejected(OAuth2Error):
    """A provider's answer this module refuses; its message is shown to the person."""


class InstitutionOIDCAdapter(OpenIDConnectOAuth2Adapter):
    @property
    def openid_config(self):
        config = super().openid_config
        expected = self.get_provider().app.settings["issuer"].rstrip("/")
        if str(config.get("issuer", "")).rstrip("/") != expected:
            raise AnswerRejected(_("The provider's discovery document names the issuer %(named)s, not the "
                                   "configured %(expected)s: check the issuer URL of this sign-in.") % {
                "named": repr(config.get("issuer")), "expected": repr(expected)})
        return config

    def _decode_id_token(self, app: SocialApp, id_token: str) -> dict:
        return jwtkit.verify_and_decode(
            credential=id_token, keys_url=self.openid_config["jwks_uri"], issuer=self.openid_config["issuer"],
            audience=app.client_id, lookup_kid=jwtkit.lookup_kid_jwk, verify_signature=True)

    def complete_login(self, request, app, token, **kwargs):
        if not kwargs["response"].get("id_token"):
            raise AnswerRejected(_("The identity provider sent no id_token."))
        sociallogin = super().complete_login(request, app, token, **kwargs)
        data = sociallogin.account.extra_data
        userinfo = data.get("userinfo")
        if userinfo is not None and str(userinfo.get("sub")) != str(data["id_token"].get("sub")):
            raise AnswerRejected(_(
                "The identity provider's userinfo answer is about someone else than its id_token."))
        return sociallogin


class InstitutionOIDCProvider(OpenIDConnectProvider):
    oauth2_adapter_class = InstitutionOIDCAdapter

    def redirect(self, request, process, next_url=None, data=None, **kwargs):
        nonce = secrets.token_urlsafe(32)
        auth_params = kwargs.pop("auth_params", None) or self.get_auth_params()
        auth_params["nonce"] = nonce
        # kwargs go into allauth's single-use state, so the nonce comes back with the callback.
        return super().redirect(request, process, next_url, data, auth_params=auth_params, nonce=nonce, **kwargs)

    def extract_uid(self, data):
        return str(data["id_token"]["sub"])


def oidc_app(provider: IdentityProvider) -> SocialApp:
    try:
        secret = secret_open(provider.oidc_client_secret_stored)
    except SecretUnavailable as exc:
        log.error("sso: identity provider %s: %s", provider.pk, exc)
        secret = ""
    return SocialApp(provider="openid_connect", provider_id=provider.allauth_provider_id, name=provider.name,
                     client_id=provider.oidc_client_id, secret=secret,
                     settings={"server_url": provider.oidc_issuer, "issuer": provider.oidc_issuer,
                               "oauth_pkce_enabled": True, "fetch_userinfo": True})


def oidc_person(provider: IdentityProvider, sociallogin) -> SsoPerson:
    data = sociallogin.account.extra_data
    claims = {**(data.get("userinfo") or {}), **data["id_token"]}  # the signed token wins
    nonce_sent = str((sociallogin.state or {}).get("nonce") or "")
    if not nonce_sent or not hmac.compare_digest(nonce_sent, str(data["id_token"].get("nonce") or "")):
        raise SignInRefused(_("The identity provider's answer was not issued for this sign-in (its nonce does not "
                              "match): it may be a replayed answer. Start again."))
    email = claims.get("email") or ""
    if email and claims.get("email_verified") is False:
        email = ""
    return SsoPerson(subject=str(claims.get("sub") or ""), email=str(email),
                     first_name=str(claims.get("given_name") or ""), last_name=str(claims.get("family_name") or ""),
                     username_hint=str(claims.get("preferred_username") or ""), claims=claims)


# Per protocol: the SocialApp allauth uses, the allauth provider class, and the person it vouched
# for. The SAML 2.0 entries are added beside these (docs/sso.md, "SAML 2.0").
APP_BUILDERS = {SsoProtocol.OIDC: oidc_app}
PROVIDER_CLASSES = {"openid_connect": InstitutionOIDCProvider}
PERSON_READERS = {SsoProtocol.OIDC: oidc_person}
# URL names (and their keyword) of the sign-in start and of the provider's return, per protocol.
# SAML 2.0 is pysaml2's, outside allauth (accounts/sso_saml.py): only its URLs are named here.
SIGN_IN_URLS = {SsoProtocol.OIDC: ("openid_connect_login", "provider_id"),
                SsoProtocol.SAML: ("saml_login", "provider_id")}
CALLBACK_URLS = {SsoProtocol.OIDC: ("openid_connect_callback", "provider_id"),
                 SsoProtocol.SAML: ("saml_acs", "provider_id")}


class SignInRefused(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# --- the adapter --------------------------------------------------------------------------------

class InstitutionSocialAccountAdapter(DefaultSocialAccountAdapter):
    """``SOCIALACCOUNT_ADAPTER``: apps from ``IdentityProvider`` rows; sign-ins decided by accounts.sso."""

    def list_apps(self, request, provider=None, client_id=None):
        if provider and provider not in PROVIDER_CLASSES:
            rows = [row for row in [provider_by_allauth_id(provider)] if row is not None]
        else:
            rows = list(IdentityProvider.objects.unscoped().select_related("institution").filter(enabled=True)[:1000])
        apps = []
        for row in rows:
            builder = APP_BUILDERS.get(row.protocol)
            if builder is None:
                continue
            app = builder(row)
            if provider in PROVIDER_CLASSES and app.provider != provider:
                continue
            if client_id and app.client_id != client_id:
                continue
            apps.append(app)
        return apps

    def get_provider(self, request, provider, client_id=None):
        app = self.get_app(request, provider=provider, client_id=client_id)
        provider_class = PROVIDER_CLASSES.get(app.provider)
        if provider_class is None:
            raise SocialApp.DoesNotExist()
        return provider_class(request, app=app)

    def pre_social_login(self, request, sociallogin):
        idp = provider_by_allauth_id(sociallogin.account.provider)
        if idp is None:
            raise ImmediateHttpResponse(sign_in_refused(request, None, _("This sign-in is no longer set up.")))
        try:
            person = PERSON_READERS[idp.protocol](idp, sociallogin)
        except SignInRefused as exc:
            raise ImmediateHttpResponse(sign_in_refused(request, idp, exc.message)) from None
        connect = (sociallogin.state or {}).get("process") == AuthProcess.CONNECT and request.user.is_authenticated
        raise ImmediateHttpResponse(sign_in_finish(request, idp, person, connect=connect))

    def on_authentication_error(self, request, provider, error=None, exception=None, extra_context=None):
        app = getattr(provider, "app", None)
        idp = provider_by_allauth_id(app.provider_id) if app is not None else None
        log.info("sso: sign-in at %s refused: %s %r", getattr(app, "provider_id", "?"), error, exception)
        raise ImmediateHttpResponse(sign_in_refused(request, idp, refusal_reason(error, exception, extra_context)))


def refusal_reason(error, exception, extra_context) -> str:
    if isinstance(exception, AnswerRejected):
        return str(exception)
    cause = getattr(exception, "__cause__", None)
    if isinstance(cause, (jwt.InvalidSignatureError, jwt.InvalidKeyError)):
        return _("The identity provider's answer has an invalid signature: it was changed on the way or not "
                 "issued by it.")
    if isinstance(cause, jwt.InvalidAudienceError):
        return _("The identity provider's answer was issued for another application (wrong audience).")
    if isinstance(cause, jwt.ExpiredSignatureError):
        return _("The identity provider's answer has expired. Check the server's clock, then start again.")
    if isinstance(cause, jwt.InvalidIssuerError):
        return _("The identity provider's answer names another issuer.")
    if isinstance(cause, jwt.PyJWTError):
        return _("The identity provider's answer could not be verified.")
    if exception is None and extra_context is not None and "state_id" in extra_context:
        return _("This sign-in was already completed or has expired (its state is unknown in this browser): "
                "a replayed or stale answer. Start again.")
    if str(error) == "cancelled":
        return _("The sign-in was cancelled at the identity provider.")
    if exception is not None:
        return _("The sign-in did not complete: the identity provider could not be reached or refused it.")
    return _("The sign-in did not complete: the identity provider sent an error.")


def sign_in_finish(request, idp: IdentityProvider, person: SsoPerson, *, connect: bool):
    """After any protocol verified ``person``: decide (accounts.sso), log in, and answer."""
    outcome = sso_sign_in(provider=idp, person=person, connect_user=request.user if connect else None)
    if outcome.membership is None:
        return sign_in_refused(request, idp, outcome.refusal)
    membership = outcome.membership
    if not (connect and request.user.pk == membership.user_id):
        login(request, membership.user, backend=MODEL_BACKEND)
    if connect:
        messages.success(request, _("Your account is connected to %(name)s: you can sign in with it from now on.") % {
            "name": idp.name})
    elif outcome.role_changed_from:
        messages.info(request, _("%(name)s changed your role at %(institution)s to %(role)s.") % {
            "name": idp.name, "institution": idp.institution.name, "role": membership.get_role_display()})
    return redirect("institution-home", institution_slug=idp.institution.slug)


def sign_in_refused(request, idp: IdentityProvider | None, message: str):
    return render(request, "accounts/sso_refused.html", {"provider": idp, "message": message}, status=403)


# --- URL views (allauth's stock OIDC views would use its own, laxer adapter) ---------------------

def _oidc_view(view_class, request, provider_id: str):
    try:
        return view_class.adapter_view(InstitutionOIDCAdapter(request, provider_id))(request)
    except SocialApp.DoesNotExist:
        raise Http404("No such sign-in.") from None
    except (OAuth2Error, RequestException, ValueError) as exc:
        # allauth reads the discovery document before its own error handling begins (for the
        # client's authentication method): an unreachable or wrong provider is refused here.
        idp = provider_by_allauth_id(provider_id)
        log.info("sso: sign-in at %s refused before allauth's handling: %r", provider_id, exc)
        return sign_in_refused(request, idp, refusal_reason(None, exc, None))


def oidc_login(request, provider_id: str):
    return _oidc_view(OAuth2LoginView, request, provider_id)


def oidc_callback(request, provider_id: str):
    return _oidc_view(OAuth2CallbackView, request, provider_id)
