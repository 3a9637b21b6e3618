"""Single sign-on through an institution's identity providers (docs/sso.md): which provider a
login page offers, what a sign-in does to accounts and memberships, and SSO-only.

The protocol itself (OpenID Connect here, SAML 2.0 beside it) is django-allauth's, fed by
``accounts.sso_allauth``; everything that decides who gets in, as what, lives here and is the same
for both protocols. A person is recognised by the provider's subject only (``SsoIdentity``):
an email address never attaches an existing account, least of all one of another institution.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from institutions.models import Institution, Membership, Role
from institutions.scoping import institution_scope

from .models import IdentityProvider, SsoIdentity, SsoProtocol
from .services import is_service_user

User = get_user_model()
log = logging.getLogger(__name__)

ROLE_RANK = {Role.VIEWER: 1, Role.ADVISOR: 2, Role.ADMIN: 3}
DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
RULE_LINE = re.compile(r"^(?P<value>.+?)\s*(?:=|->|→)\s*(?P<role>[A-Za-z]+)\s*$")
MAX_RULES = 100


# --- discovery: which providers the login page offers ------------------------------------------

def email_domain(email: str) -> str:
    email = (email or "").strip().lower()
    return email.rsplit("@", 1)[1] if "@" in email else ""


def providers_for_email(email: str) -> list[IdentityProvider]:
    """The enabled providers that claim the address's domain (at most one institution's)."""
    domain = email_domain(email)
    if not DOMAIN.match(domain):
        return []
    return list(IdentityProvider.objects.unscoped().filter(enabled=True, email_domains__contains=[domain])
                .select_related("institution").order_by("institution__name", "name")[:20])


def providers_for_institution(slug: str) -> list[IdentityProvider]:
    return list(IdentityProvider.objects.unscoped().filter(enabled=True, institution__slug=slug)
                .select_related("institution").order_by("name")[:20])


def institutions_with_sso() -> list[Institution]:
    ids = IdentityProvider.objects.unscoped().filter(enabled=True).values("institution_id")
    return list(Institution.objects.filter(pk__in=ids).order_by("name")[:1000])


def provider_by_allauth_id(provider_id: str) -> IdentityProvider | None:
    """``idp<pk>`` (the id in the sign-in URLs) to the enabled provider, or None."""
    match = re.fullmatch(r"idp([1-9][0-9]{0,17})", provider_id or "")
    if not match:
        return None
    return IdentityProvider.objects.unscoped().select_related("institution").filter(
        pk=int(match.group(1)), enabled=True).first()


# --- role mapping ------------------------------------------------------------------------------

def role_rules_parse(text: str) -> list[dict]:
    """``value = role`` per line (``->`` also works) into rules; a bad line raises with its number."""
    rules, problems = [], []
    for number, line in enumerate((text or "").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = RULE_LINE.match(line)
        role = match.group("role").lower() if match else ""
        if not match or role not in Role.values:
            problems.append(_("line %(number)s (%(line)s): write 'value = admin', 'value = advisor' "
                              "or 'value = viewer'") % {"number": number, "line": repr(line[:60])})
            continue
        rules.append({"value": match.group("value").strip(), "role": role})
    if len(rules) > MAX_RULES:
        problems.append(_("at most %(count)s rules") % {"count": MAX_RULES})
    if problems:
        raise ValidationError(_("Role rules: %(problems)s.") % {"problems": "; ".join(problems)})
    return rules


def role_rules_text(rules: Iterable[dict]) -> str:
    return "\n".join(f"{rule['value']} = {rule['role']}" for rule in rules)


def _claim_values(value) -> set[str]:
    if value is None:
        return set()
    if isinstance(value, (list, tuple, set)):
        return {str(item) for item in value if item is not None}
    return {str(value)}


def role_from_claims(provider: IdentityProvider, claims: dict) -> str | None:
    """The highest role a rule gives for the provider's attribute, else the default role, else None."""
    values = _claim_values(claims.get(provider.role_attribute)) if provider.role_attribute else set()
    matched = [rule["role"] for rule in provider.role_rules if rule.get("value") in values
               and rule.get("role") in ROLE_RANK]
    if matched:
        return max(matched, key=lambda role: ROLE_RANK[role])
    return provider.default_role or None


# --- sign-in -----------------------------------------------------------------------------------

@dataclass
class SsoPerson:
    """What an identity provider vouched for, whatever the protocol."""

    subject: str
    email: str = ""
    first_name: str = ""
    last_name: str = ""
    username_hint: str = ""
    claims: dict = field(default_factory=dict)


@dataclass
class SsoOutcome:
    """Either a membership to sign in with, or the reason the sign-in is refused (shown to the person)."""

    membership: Membership | None = None
    refusal: str = ""
    created_account: bool = False
    created_membership: bool = False
    role_changed_from: str = ""
    membership_removed: bool = False


def _new_username(person: SsoPerson) -> str:
    base = (person.email or person.username_hint or f"sso-{person.subject}").strip().lower()[:140]
    base = re.sub(r"[^\w.@+-]", "-", base) or "sso-user"
    candidate, suffix = base, 1
    while User.objects.filter(username__iexact=candidate).exists():
        suffix += 1
        candidate = f"{base}-{suffix}"
    return candidate


def _create_account(person: SsoPerson) -> AbstractBaseUser:
    for _attempt in range(5):
        user = User(username=_new_username(person), email=person.email[:254], first_name=person.first_name[:150],
                    last_name=person.last_name[:150])
        user.set_unusable_password()  # signs in through the provider only
        try:
            with transaction.atomic():
                user.save()
            return user
        except IntegrityError:  # a username taken between the look and the save
            continue
    raise IntegrityError("could not choose a free username")


def sso_sign_in(*, provider: IdentityProvider, person: SsoPerson, connect_user: AbstractBaseUser | None = None
                ) -> SsoOutcome:
    """Decide what a verified sign-in at ``provider`` does; everything happens in the provider's institution.

    - The account is the one linked to the provider's subject. Without a link: with ``connect_user``
      (a signed-in member of this institution who asked to connect) the link is made to that
      account; otherwise, with just-in-time creation on, a new account is created (an existing
      account with the same email, here or elsewhere, is never used); otherwise the sign-in is refused.
    - The role comes from the role mapping at every sign-in: the membership is created (JIT) or its
      role updated. When the mapping gives no role, a member who had one loses the membership
      (they have left the group at the provider) and the sign-in is refused.
    """
    with institution_scope(provider.institution), transaction.atomic():
        return _sign_in(provider, person, connect_user)


def _sign_in(provider: IdentityProvider, person: SsoPerson, connect_user: AbstractBaseUser | None) -> SsoOutcome:
    institution = provider.institution
    name = provider.name
    if not person.subject:
        return SsoOutcome(refusal=_("%(name)s did not say who you are (no subject).") % {"name": name})
    identities = SsoIdentity.objects.for_institution(institution)
    identity = identities.select_for_update().select_related("user").filter(
        provider=provider, subject=person.subject[:255]).first()
    outcome = SsoOutcome()
    role = role_from_claims(provider, person.claims)
    if identity is not None:
        user = identity.user
        if connect_user is not None and connect_user.pk != user.pk:
            return SsoOutcome(refusal=_(
                "Your account at %(name)s is already connected to another account here.") % {"name": name})
    elif connect_user is not None:
        if not Membership.objects.for_institution(institution).filter(user=connect_user).exists():
            return SsoOutcome(refusal=_(
                "Only members of %(institution)s can connect an account to %(name)s.") % {
                "institution": institution.name, "name": name})
        if identities.filter(provider=provider, user=connect_user).exists():
            return SsoOutcome(refusal=_(
                "Your account here is already connected to another account at %(name)s.") % {"name": name})
        user = connect_user
        identity = identities.create(provider=provider, subject=person.subject[:255], user=user)
    elif provider.jit_provisioning:
        if role is None:
            return SsoOutcome(refusal=_no_role_message(provider))
        user = _create_account(person)
        outcome.created_account = True
        identity = identities.create(provider=provider, subject=person.subject[:255], user=user)
    else:
        return SsoOutcome(refusal=_(
            "Your account at %(name)s is not connected to an account at %(institution)s, and new accounts are "
            "not created automatically. Ask an administrator of the institution for an invitation, accept it, "
            "then connect your account to %(name)s from the single sign-on page.") % {
            "name": name, "institution": institution.name})
    if not user.is_active:
        return SsoOutcome(refusal=_("This account is deactivated."))
    if is_service_user(user):
        return SsoOutcome(refusal=_("An API key's service account cannot sign in."))
    memberships = Membership.objects.for_institution(institution)
    membership = memberships.select_for_update().filter(user=user).first()
    if role is None:
        if membership is not None and provider.role_attribute:
            membership.delete()
            identities.filter(pk=identity.pk).update(last_login_at=timezone.now())
            log.info("sso: %s lost membership %s at institution %s (no role from %s)", user.pk,
                     membership.role, institution.pk, provider.pk)
            return SsoOutcome(refusal=_("%(reason)s Your membership of %(institution)s has ended.") % {
                "reason": _no_role_message(provider), "institution": institution.name}, membership_removed=True)
        return SsoOutcome(refusal=_no_role_message(provider))
    if membership is None:
        if not provider.jit_provisioning:
            return SsoOutcome(refusal=_("You are not a member of %(institution)s, and memberships are not "
                                        "created automatically. Ask an administrator of the institution.") % {
                "institution": institution.name})
        membership = memberships.create(user=user, role=role)
        outcome.created_membership = True
    elif membership.role != role:
        outcome.role_changed_from = membership.role
        membership.role = role
        membership.save(update_fields=["role", "updated_at"])
    identity.last_login_at = timezone.now()
    identity.email = person.email[:254]
    identity.save(update_fields=["last_login_at", "email"])
    outcome.membership = membership
    return outcome


def _no_role_message(provider: IdentityProvider) -> str:
    if provider.role_attribute:
        return _("%(name)s signed you in, but none of your %(attribute)s values gives a role at %(institution)s.") % {
            "name": provider.name, "attribute": provider.role_attribute, "institution": provider.institution.name}
    return _("%(name)s signed you in, but %(institution)s gives no role to its accounts.") % {
        "name": provider.name, "institution": provider.institution.name}


# --- SSO only ----------------------------------------------------------------------------------

def sso_only_providers_for(user: AbstractBaseUser) -> list[IdentityProvider]:
    """The enabled SSO-only providers of the institutions ``user`` belongs to."""
    if user is None or not user.pk:
        return []
    institution_ids = Membership.objects.unscoped().filter(user_id=user.pk).values("institution_id")
    return list(IdentityProvider.objects.unscoped().filter(
        enabled=True, sso_only=True, institution_id__in=institution_ids).select_related("institution")[:20])


def sso_only_message(providers: list[IdentityProvider]) -> str:
    names = ", ".join(sorted({f"{p.name} ({p.institution.name})" for p in providers}))
    return _("Your institution signs you in with single sign-on only: use “Sign in with %(names)s”.") % {"names": names}


# --- set-up by an institution's administrators ---------------------------------------------------

class IdentityProviderError(ValidationError):
    """A provider set-up that cannot be saved; the message says why, and nothing changed."""


def email_domains_claimed_outside(institution_slug: str) -> set[str]:
    """The email domains other institutions' providers claim. Read outside any institution scope
    (the set-up page asks before it enters its own), since inside one only its rows are visible."""
    rows = IdentityProvider.objects.unscoped().exclude(institution__slug=institution_slug).values_list(
        "email_domains", flat=True)
    return {domain for domains in rows.iterator() for domain in (domains or [])}


def email_domains_parse(text: str, *, claimed_elsewhere: set[str]) -> list[str]:
    domains = sorted({part.strip().lower().lstrip("@") for part in re.split(r"[\s,;]+", text or "") if part.strip()})
    bad = [domain for domain in domains if not DOMAIN.match(domain)]
    if bad:
        raise IdentityProviderError(_("Not an email domain: %(domains)s (write e.g. uni.example).") % {
            "domains": ", ".join(bad[:5])})
    if len(domains) > 50:
        raise IdentityProviderError(_("At most 50 email domains."))
    taken = [domain for domain in domains if domain in claimed_elsewhere]
    if taken:
        raise IdentityProviderError(_("%(domains)s: already used by another institution's sign-in; "
                                      "ask platform staff if it is yours.") % {"domains": ", ".join(taken)})
    return domains


@transaction.atomic
def identity_provider_save(*, institution: Institution, provider: IdentityProvider, actor: AbstractBaseUser,
                           new_secret_stored: str | None) -> IdentityProvider:
    """Save a provider the form has validated. ``new_secret_stored`` replaces the stored secret
    (None keeps it). Changing the issuer of a provider people already sign in with is refused:
    its subjects would name other people."""
    if provider.institution_id != institution.pk:
        raise IdentityProviderError(_("That identity provider belongs to another institution."))
    if provider.pk:
        before = IdentityProvider.objects.for_institution(institution).select_for_update().get(pk=provider.pk)
        linked = SsoIdentity.objects.for_institution(institution).filter(provider=before).exists()
        if linked and (before.protocol != provider.protocol or before.oidc_issuer != provider.oidc_issuer
                       or before.saml_idp_entity_id != provider.saml_idp_entity_id):
            raise IdentityProviderError(_(
                "People already sign in through this provider, so its protocol, issuer and entity id cannot change "
                "(the same subject would name someone else). Add another provider instead."))
    if provider.sso_only and provider.enabled and not SsoIdentity.objects.for_institution(institution).filter(
            provider_id=provider.pk, user=actor).exists():
        raise IdentityProviderError(_(
            "Sign in through this provider yourself first (connect your account on the single sign-on page): "
            "SSO only turns password login off for every member, you included."))
    if new_secret_stored is not None:
        provider.oidc_client_secret_stored = new_secret_stored
    provider.updated_by = actor
    provider.save()
    return provider


@transaction.atomic
def identity_provider_delete(*, institution: Institution, provider: IdentityProvider) -> None:
    if provider.institution_id != institution.pk:
        raise IdentityProviderError(_("That identity provider belongs to another institution."))
    provider.delete()


def protocols_available() -> list[str]:
    """The protocols whose sign-in flow is built."""
    from . import sso_allauth

    return [protocol for protocol in SsoProtocol.values if protocol in sso_allauth.SIGN_IN_URLS]
