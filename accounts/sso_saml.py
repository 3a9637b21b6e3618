"""SAML 2.0 sign-in to an institution's identity provider (Shibboleth, InCommon members, ADFS,
Entra ID, Google...), with pysaml2 (docs/sso.md, "SAML 2.0").

pysaml2 speaks the protocol: it builds the AuthnRequest (HTTP-Redirect) and checks the IdP's
answer (HTTP-POST): the XML signature of the assertion against the certificate in the IdP's
metadata (with the ``xmlsec1`` binary), the issuer, the audience (this platform's entity id),
the destination, the validity window and that it answers a request this browser started.
Stricter than its defaults: assertions must be signed, unsolicited (IdP-initiated) answers are
refused, and each request id is answered once (a replayed answer is refused). What a verified
sign-in does is decided by ``accounts.sso`` as for every protocol.

Per provider, this platform is one service provider: its entity id is the provider's
``saml_sp_entity_id`` or, by default, the URL of its metadata (``/accounts/sso/saml/idp<pk>/metadata/``).
"""

from __future__ import annotations

import base64
import binascii
import logging
import time

import requests
from django.conf import settings
from django.core.cache import cache
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import create_metadata_string
from saml2.response import StatusError, UnsolicitedResponse
from saml2.saml import NAMEID_FORMAT_PERSISTENT
from saml2.sigver import SignatureError
from saml2.validate import ResponseLifetimeExceed, ToEarly

from .models import IdentityProvider, SsoProtocol
from .sso import SsoPerson, provider_by_allauth_id
from .sso_allauth import sign_in_finish, sign_in_refused

log = logging.getLogger(__name__)
SESSION_KEY = "sso_saml_requests"
REQUEST_VALID_SECONDS = 10 * 60
MAX_RESPONSE_BYTES = 512 * 1024


class MetadataUnavailable(Exception):
    """The IdP's metadata cannot be had (unreachable, not https, not metadata)."""


def _provider(provider_id: str) -> IdentityProvider:
    idp = provider_by_allauth_id(provider_id)
    if idp is None or idp.protocol != SsoProtocol.SAML:
        raise Http404("No such sign-in.")
    return idp


def metadata_fetch(url: str) -> str:
    """The IdP's metadata from its URL (https, unless SSO_ALLOW_HTTP_ISSUERS), cached for
    SAML_METADATA_CACHE_SECONDS so that a rotated signing key is picked up within that time."""
    if not url.startswith("https://") and not settings.SSO_ALLOW_HTTP_ISSUERS:
        raise MetadataUnavailable(_("The metadata URL must start with https://."))
    key = f"sso-saml-metadata:{url}"
    xml = cache.get(key)
    if xml is None:
        try:
            response = requests.get(url, timeout=settings.SOCIALACCOUNT_REQUESTS_TIMEOUT, allow_redirects=False)
            response.raise_for_status()
        except requests.RequestException as exc:
            raise MetadataUnavailable(_("The identity provider's metadata could not be read (%(error)s).") % {
                "error": exc.__class__.__name__}) from None
        if len(response.content) > 5 * 1024 * 1024:
            raise MetadataUnavailable(_("The identity provider's metadata is larger than 5 MB."))
        xml = response.text
        cache.set(key, xml, settings.SAML_METADATA_CACHE_SECONDS)
    return xml


def idp_metadata(idp: IdentityProvider) -> str:
    return idp.saml_metadata_xml.strip() or metadata_fetch(idp.saml_metadata_url)


def sp_entity_id(request, idp: IdentityProvider) -> str:
    return idp.saml_sp_entity_id.strip() or request.build_absolute_uri(
        reverse("saml_metadata", kwargs={"provider_id": idp.allauth_provider_id}))


def acs_url(request, idp: IdentityProvider) -> str:
    return request.build_absolute_uri(reverse("saml_acs", kwargs={"provider_id": idp.allauth_provider_id}))


def sp_config(request, idp: IdentityProvider, *, with_idp: bool = True) -> SPConfig:
    config = {
        "entityid": sp_entity_id(request, idp),
        "service": {"sp": {
            "name": f"dropout_platform ({idp.institution.name})",
            "endpoints": {"assertion_consumer_service": [(acs_url(request, idp), BINDING_HTTP_POST)]},
            "allow_unsolicited": False,
            "want_assertions_signed": True,
            "want_response_signed": False,
            "authn_requests_signed": False,
            "name_id_format": [NAMEID_FORMAT_PERSISTENT],
            "name_id_format_allow_create": True,
            "required_attributes": ["mail"],
            "optional_attributes": ["eduPersonAffiliation", "eduPersonScopedAffiliation", "givenName", "sn"],
        }},
        "xmlsec_binary": settings.SAML_XMLSEC_BINARY,
        "accepted_time_diff": settings.SAML_CLOCK_SKEW_SECONDS,
        "allow_unknown_attributes": True,
        "metadata": {"inline": [idp_metadata(idp)]} if with_idp else {},
    }
    sp = SPConfig()
    sp.load(config)
    return sp


def metadata_entity_id(xml: str) -> str:
    """The entity id of IdP metadata (for the set-up form), or raise MetadataUnavailable."""
    from saml2.mdstore import InMemoryMetaData

    metadata = InMemoryMetaData(None, xml)
    try:
        metadata.load()
    except Exception:  # pysaml2 raises many kinds for bad XML
        raise MetadataUnavailable(_("That is not SAML metadata (the XML could not be read).")) from None
    idps = [entity_id for entity_id, entity in metadata.items() if "idpsso_descriptor" in entity]
    if len(idps) != 1:
        raise MetadataUnavailable(_("The metadata must describe exactly one identity provider (IDPSSODescriptor)."))
    return idps[0]


# --- views -------------------------------------------------------------------------------------

def saml_metadata(request, provider_id: str):
    """This platform's SP metadata for the provider: what the institution registers at its IdP."""
    idp = _provider(provider_id)
    xml = create_metadata_string(None, config=sp_config(request, idp, with_idp=False), valid=24 * 7)
    return HttpResponse(xml, content_type="application/samlmetadata+xml")


@require_http_methods(["GET", "POST"])
def saml_login(request, provider_id: str):
    """GET: our 'Continue to <provider>' page; POST: send the browser to the IdP with an AuthnRequest."""
    idp = _provider(provider_id)
    process = request.POST.get("process") or request.GET.get("process", "")
    if request.method == "GET":
        return render(request, "socialaccount/login.html", {"provider": idp, "process": process})
    try:
        client = Saml2Client(config=sp_config(request, idp))
        entity_id = idp.saml_idp_entity_id.strip() or metadata_entity_id(idp_metadata(idp))
        request_id, info = client.prepare_for_authenticate(entityid=entity_id, binding=BINDING_HTTP_REDIRECT,
                                                           relay_state=process)
    except MetadataUnavailable as exc:
        return sign_in_refused(request, idp, str(exc))
    now = time.time()
    pending = {rid: item for rid, item in request.session.get(SESSION_KEY, {}).items()
               if now - item["t"] < REQUEST_VALID_SECONDS}
    pending[request_id] = {"p": idp.pk, "t": now, "connect": process == "connect"}
    request.session[SESSION_KEY] = dict(list(pending.items())[-10:])
    return redirect(dict(info["headers"])["Location"])


def _refusal_of(exc: Exception) -> str:
    if isinstance(exc, SignatureError):
        return _("The identity provider's answer has an invalid signature: it was changed on the way or not "
                 "issued by it.")
    if isinstance(exc, (ResponseLifetimeExceed, ToEarly)):
        return _("The identity provider's answer has expired (or is not valid yet). Check the server's clock, "
                "then start again.")
    if isinstance(exc, UnsolicitedResponse):
        return _("This answer was not issued for a sign-in started in this browser, or was already used: a replayed "
                "or stale answer. Start again.")
    if isinstance(exc, StatusError):
        return _("The identity provider refused the sign-in.")
    if "AudienceRestrictions" in str(exc) or "audience" in str(exc).lower():
        return _("The identity provider's answer was issued for another service (wrong audience).")
    return _("The identity provider's answer could not be verified.")


@csrf_exempt  # a cross-site POST from the IdP by design; the answer must match this session's request
@require_POST
def saml_acs(request, provider_id: str):
    """The IdP posts the signed answer here (HTTP-POST binding)."""
    idp = _provider(provider_id)
    raw = request.POST.get("SAMLResponse", "")
    if request.POST.get("hop") != "1" and settings.SESSION_COOKIE_NAME not in request.COOKIES:
        # The IdP's page posts from another site, so the browser leaves out the session cookie
        # (SameSite=Lax): post the same answer again from a page of this site, which carries it.
        return render(request, "accounts/saml_continue.html",
                      {"provider": idp, "saml_response": raw[:MAX_RESPONSE_BYTES],
                       "relay_state": request.POST.get("RelayState", "")[:100]})
    if not raw or len(raw) > MAX_RESPONSE_BYTES:
        return sign_in_refused(request, idp, _("The identity provider sent no answer, or one too large."))
    try:
        base64.b64decode(raw, validate=True).decode()  # pysaml2 decodes it again below
    except (binascii.Error, UnicodeDecodeError):
        return sign_in_refused(request, idp, _("The identity provider's answer is not readable."))
    now = time.time()
    pending = request.session.get(SESSION_KEY, {})
    outstanding = {rid: provider_id for rid, item in pending.items()
                   if item["p"] == idp.pk and now - item["t"] < REQUEST_VALID_SECONDS}
    try:
        client = Saml2Client(config=sp_config(request, idp))
        response = client.parse_authn_request_response(raw, BINDING_HTTP_POST, outstanding=outstanding)
    except MetadataUnavailable as exc:
        return sign_in_refused(request, idp, str(exc))
    except Exception as exc:  # every failure of verification is a refusal, never a 500
        log.info("sso: SAML answer at %s refused: %r", provider_id, exc)
        return sign_in_refused(request, idp, _refusal_of(exc))
    if response is None or response.in_response_to not in outstanding:
        return sign_in_refused(request, idp, _refusal_of(UnsolicitedResponse()))
    # Each request is answered once: the same answer posted again is refused.
    connect = pending.pop(response.in_response_to, {}).get("connect", False) and request.user.is_authenticated
    request.session[SESSION_KEY] = pending
    return sign_in_finish(request, idp, saml_person(response), connect=connect)


def saml_person(response) -> SsoPerson:
    claims = {name: list(values) for name, values in (response.ava or {}).items()}
    name_id = response.name_id
    subject = (name_id.text or "").strip() if name_id is not None else ""

    def first(name: str) -> str:
        values = claims.get(name) or [""]
        return str(values[0])

    return SsoPerson(subject=subject, email=first("mail"), first_name=first("givenName"), last_name=first("sn"),
                     username_hint=first("uid"), claims=claims)
