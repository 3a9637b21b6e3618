"""Time-based one-time passwords (TOTP, django-otp) for sign-in, and the institutions that make
them mandatory for their administrators (docs/accounts.md, "Two-factor sign-in")."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils.translation import gettext as _
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from institutions.models import Institution, Membership, Role

from .models import RecoveryCode, RecoveryCodeDevice, SecurityPolicy

User = get_user_model()


class TwoFactorError(ValidationError):
    """A two-factor step that did not happen; the message says why."""


def two_factor_state(user: AbstractBaseUser) -> tuple[bool, bool]:
    """``(has_confirmed_device, required_by_an_institution)`` in one query: asked on every request."""
    requiring = SecurityPolicy.objects.unscoped().filter(require_admin_two_factor=True).values("institution_id")
    row = User.objects.filter(pk=user.pk).annotate(
        has_device=Exists(TOTPDevice.objects.filter(user_id=OuterRef("pk"), confirmed=True)),
        required=Exists(Membership.objects.unscoped().filter(
            user_id=OuterRef("pk"), role=Role.ADMIN, institution_id__in=requiring)),
    ).values_list("has_device", "required").first()
    return row or (False, False)


def security_policy_get(*, institution: Institution) -> SecurityPolicy:
    return SecurityPolicy.objects.for_institution(institution).filter().first() or SecurityPolicy(
        institution=institution)


@transaction.atomic
def security_policy_set(*, institution: Institution, require_admin_two_factor: bool,
                        actor: AbstractBaseUser) -> SecurityPolicy:
    """Turning the requirement on needs the acting admin to use two-factor already: an admin
    cannot lock the institution's administrators into a rule they have not tried themselves."""
    if require_admin_two_factor and not TOTPDevice.objects.filter(user=actor, confirmed=True).exists():
        raise TwoFactorError(_("Set up two-factor sign-in for your own account first (Two-factor, in your account)."))
    policy, _created = SecurityPolicy.objects.for_institution(institution).update_or_create(
        institution=institution,
        defaults={"require_admin_two_factor": require_admin_two_factor, "updated_by": actor})
    return policy


@transaction.atomic
def totp_device_start(*, user: AbstractBaseUser) -> TOTPDevice:
    """A new, unconfirmed authenticator for ``user`` (replacing any unconfirmed one)."""
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    return TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)


@transaction.atomic
def totp_device_confirm(*, request, user: AbstractBaseUser, token: str) -> TOTPDevice:
    """The first code proves the app holds the key; only then does the device count, and this
    session is verified with it."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        raise TwoFactorError(_("Start the set-up again: no authenticator is waiting for its first code."))
    if not device.verify_token((token or "").strip()):
        raise TwoFactorError(_("That code is not right. Check the app shows codes for this account and try again."))
    TOTPDevice.objects.filter(user=user, confirmed=True).delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    otp_login(request, device)
    return device


def totp_verify(*, request, user: AbstractBaseUser, token: str) -> TOTPDevice | RecoveryCodeDevice:
    """The second step of a login: a code from the app or one unused recovery code. django-otp
    slows repeated wrong codes down (throttling), each device on its own."""
    kind = RecoveryCodeDevice if recovery_code_hash(token) else TOTPDevice
    for device in kind.objects.filter(user=user, confirmed=True):
        allowed, _data = device.verify_is_allowed()
        if not allowed:
            raise TwoFactorError(_("Too many wrong codes: wait a little before the next try."))
        if device.verify_token((token or "").strip()):
            otp_login(request, device)
            return device
    raise TwoFactorError(_("That code is not right."))


@transaction.atomic
def totp_device_remove(*, user: AbstractBaseUser, token: str) -> None:
    _has_device, required = two_factor_state(user)
    if required:
        raise TwoFactorError(_("An institution where you are an administrator requires two-factor sign-in."))
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is None or not device.verify_token((token or "").strip()):
        raise TwoFactorError(_("Give a current code from the app to turn two-factor sign-in off."))
    TOTPDevice.objects.filter(user=user).delete()
    RecoveryCodeDevice.objects.filter(user=user).delete()


# Recovery codes -------------------------------------------------------------------------------
RECOVERY_CODE_COUNT = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i to misread
_RECOVERY_LENGTH = 12  # 12 of 31 symbols: about 59 bits each


def _normalized_recovery_code(token: str) -> str | None:
    code = "".join(ch for ch in (token or "").lower() if ch not in " -")
    if len(code) != _RECOVERY_LENGTH or any(ch not in _RECOVERY_ALPHABET for ch in code):
        return None
    return code


def recovery_code_hash(token: str) -> str | None:
    """The stored form of a recovery code (HMAC-SHA256 keyed by the site's secret), or None for
    something that cannot be one (an app's 6-digit code, a typo of the wrong length)."""
    code = _normalized_recovery_code(token)
    if code is None:
        return None
    key = hashlib.sha256(("accounts.recovery-code" + settings.SECRET_KEY).encode()).digest()
    return hmac.new(key, code.encode(), hashlib.sha256).hexdigest()


def recovery_codes_left(user: AbstractBaseUser) -> int | None:
    """How many unused codes the account has, or None when it never made any."""
    device = RecoveryCodeDevice.objects.filter(user=user, confirmed=True).first()
    if device is None:
        return None
    return device.codes.filter(used_at=None).count()


@transaction.atomic
def recovery_codes_generate(*, user: AbstractBaseUser) -> list[str]:
    """A new set of codes for ``user``, returned once to be shown once; every older code stops
    working. Only for an account that uses an authenticator app."""
    if not TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        raise TwoFactorError(_("Set up an authenticator app first: recovery codes stand in for it."))
    device, _created = RecoveryCodeDevice.objects.get_or_create(
        user=user, defaults={"name": "Recovery codes", "confirmed": True})
    device.codes.all().delete()
    codes = set()
    while len(codes) < RECOVERY_CODE_COUNT:
        codes.add("".join(secrets.choice(_RECOVERY_ALPHABET) for _position in range(_RECOVERY_LENGTH)))
    shown = [f"{code[:4]}-{code[4:8]}-{code[8:]}" for code in sorted(codes)]
    RecoveryCode.objects.bulk_create(RecoveryCode(device=device, code_hash=recovery_code_hash(code)) for code in shown)
    device.throttle_reset()
    return shown


def recovery_codes_regenerate(*, user: AbstractBaseUser, token: str) -> list[str]:
    """New codes in place of the old ones, for someone who gives a current code from the app (a
    session left open somewhere is not enough to mint a second factor)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is None:
        raise TwoFactorError(_("Set up an authenticator app first: recovery codes stand in for it."))
    allowed, _data = device.verify_is_allowed()
    if not allowed:
        raise TwoFactorError(_("Too many wrong codes: wait a little before the next try."))
    if not device.verify_token((token or "").strip()):
        raise TwoFactorError(_("Give a current code from the app to make new recovery codes."))
    return recovery_codes_generate(user=user)
