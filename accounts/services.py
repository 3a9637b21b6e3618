"""Writes about accounts: invitations and joining an institution (docs/accounts.md)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.password_validation import validate_password
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from institutions.models import ApiKey, Institution, Membership, Role
from institutions.services import institution_create

from .language import recipient_language
from .models import Invitation

User = get_user_model()
_SALT = "accounts.invitation"


class InvitationError(ValidationError):
    """An invitation that cannot be sent or accepted; the message says why, and nothing changed."""


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def invitation_link(*, institution: Institution, raw_token: str, base_url: str) -> str:
    signed = signing.dumps({"i": institution.pk, "t": raw_token}, salt=_SALT, compress=False)
    return base_url.rstrip("/") + reverse("invitation-accept", args=[institution.slug, signed])


@transaction.atomic
def invitation_create(
    *, institution: Institution, email: str, role: str, invited_by: AbstractBaseUser | None, base_url: str,
) -> tuple[Invitation, str]:
    """Email ``email`` a link to join ``institution`` as ``role``; returns the invitation and the link.

    Nothing is looked up about the address: whether an account with it exists anywhere is not the
    inviting admin's business, and the reply is the same for every address. A pending invitation
    to the same address in this institution is revoked (its link stops working) and replaced.
    """
    email = (email or "").strip()
    try:
        validate_email(email)
    except ValidationError:
        raise InvitationError(_("Enter a valid email address.")) from None
    if role not in Role.values:
        raise InvitationError(f"Unknown role {role!r}.")
    now = timezone.now()
    Invitation.objects.for_institution(institution).filter(
        email__iexact=email, accepted_at=None, revoked_at=None).update(revoked_at=now, revoked_by=invited_by)
    raw_token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.for_institution(institution).create(
        email=email, role=role, token_hash=_hash(raw_token), invited_by=invited_by,
        expires_at=now + timedelta(days=settings.INVITATION_VALID_DAYS),
    )
    link = invitation_link(institution=institution, raw_token=raw_token, base_url=base_url)
    context = {"institution": institution, "invitation": invitation, "link": link,
               "invited_by": invited_by, "valid_days": settings.INVITATION_VALID_DAYS}
    # Queued for the worker (accounts/mail.py), which delivers and retries: a mail server that is
    # down never fails this. A backend that sends at once (EMAIL_BACKEND=smtp, set by hand) and
    # fails leaves no invitation behind.
    # Nothing is known of the invitee: the email is in the institution's language.
    with translation.override(recipient_language(institution=institution)):
        subject = _("You are invited to %(institution)s on dropout_platform") % {"institution": institution.name}
        body = render_to_string("accounts/invitation_email.txt", context)
    try:
        send_mail(subject=subject, message=body, from_email=None, recipient_list=[email])
    except OSError as exc:  # smtplib errors and refused connections are OSErrors
        raise InvitationError(_("The invitation email could not be sent (%(error)s); nothing was saved. "
                                "Check the email settings (docs/operations.md).") % {"error": exc.__class__.__name__}
                              ) from None
    return invitation, link


def invitation_from_link(*, institution_slug: str, signed_token: str) -> Invitation | None:
    """The pending invitation a link stands for, or None (bad signature, expired, used, revoked,
    or a link of another institution)."""
    try:
        payload = signing.loads(signed_token, salt=_SALT, max_age=timedelta(days=settings.INVITATION_VALID_DAYS))
    except signing.BadSignature:
        return None
    institution = Institution.objects.filter(slug=institution_slug).first()
    if institution is None or not isinstance(payload, dict) or payload.get("i") != institution.pk:
        return None
    invitation = Invitation.objects.for_institution(institution).select_related("institution").filter(
        token_hash=_hash(str(payload.get("t", "")))).first()
    if invitation is None or not invitation.is_pending:
        return None
    return invitation


def is_service_user(user: AbstractBaseUser) -> bool:
    """API-key principals: never a member of anything, whatever an invitation says."""
    return ApiKey.objects.unscoped().filter(service_user_id=user.pk).exists()


def _mark_accepted(invitation: Invitation, user: AbstractBaseUser) -> Membership:
    locked = Invitation.objects.for_institution(invitation.institution).select_for_update().get(pk=invitation.pk)
    if not locked.is_pending:
        raise InvitationError(_("This invitation is no longer valid."))
    membership = Membership.objects.for_institution(invitation.institution).create(user=user, role=locked.role)
    locked.accepted_at = timezone.now()
    locked.accepted_by = user
    locked.save(update_fields=["accepted_at", "accepted_by"])
    return membership


@transaction.atomic
def invitation_accept_existing(*, invitation: Invitation, user: AbstractBaseUser) -> Membership:
    """The signed-in owner of an account accepts: only then is that account attached."""
    if not user.is_authenticated or not user.is_active:
        raise InvitationError(_("Log in first."))
    if is_service_user(user):
        raise InvitationError(_("An API key's service account cannot join an institution."))
    if Membership.objects.for_institution(invitation.institution).filter(user=user).exists():
        raise InvitationError(_("You are already a member of %(name)s.") % {"name": invitation.institution.name})
    return _mark_accepted(invitation, user)


@transaction.atomic
def invitation_accept_new_account(
    *, invitation: Invitation, username: str, password: str, first_name: str = "", last_name: str = "",
) -> Membership:
    """Create an account for the invited address, with the password its owner chose on the link's page."""
    user = User(username=(username or "").strip(), email=invitation.email, first_name=first_name.strip(),
                last_name=last_name.strip())
    try:
        user.full_clean(exclude=["password"])
        validate_password(password, user)
    except ValidationError as exc:
        raise InvitationError(" ".join(exc.messages)) from None
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError:
        raise InvitationError(_("Choose another username.")) from None
    return _mark_accepted(invitation, user)


@transaction.atomic
def invitation_revoke(*, institution: Institution, invitation: Invitation, actor: AbstractBaseUser) -> Invitation:
    if invitation.institution_id != institution.pk:
        raise InvitationError(_("That invitation belongs to another institution."))
    if not invitation.is_pending:
        raise InvitationError(_("The invitation to %(email)s is no longer pending.") % {"email": invitation.email})
    invitation.revoked_at = timezone.now()
    invitation.revoked_by = actor
    invitation.save(update_fields=["revoked_at", "revoked_by"])
    return invitation


@transaction.atomic
def institution_start(
    *, slug: str, name: str, admin_email: str, timezone_name: str = "UTC", base_url: str,
) -> tuple[Institution, Invitation, str]:
    """An operator starts an institution: create it and invite its first administrator.

    All or nothing: a taken slug, a bad address or a mail server that refuses leaves neither the
    institution nor the invitation behind."""
    try:
        validate_email((admin_email or "").strip())
    except ValidationError:
        raise InvitationError(f"{admin_email!r} is not a valid email address.") from None
    try:
        institution = institution_create(slug=slug, name=name, timezone=timezone_name)
    except ValidationError as exc:
        problems = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items())
        raise InvitationError(f"The institution cannot be created: {problems}") from None
    invitation, link = invitation_create(institution=institution, email=admin_email, role=Role.ADMIN,
                                         invited_by=None, base_url=base_url)
    return institution, invitation, link
