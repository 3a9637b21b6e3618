"""Invitations: how a person joins an institution (docs/accounts.md)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django_otp.models import Device, ThrottlingMixin

from institutions.models import Role
from institutions.scoping import TenantModel


class Invitation(TenantModel):
    """An emailed offer of a role in one institution.

    Only a SHA-256 of the link's secret is stored; the link itself exists only in the email. It is
    used once (accepted), can be revoked by the institution's admins, and expires.
    """

    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.ADVISOR)
    token_hash = models.CharField(max_length=64)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                                   related_name="+", db_index=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                    related_name="+", db_index=False)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+", db_index=False)

    class Meta(TenantModel.Meta):
        ordering = ["institution_id", "-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["institution", "token_hash"], name="invitation_unique_token"),
        ]
        indexes = [models.Index(fields=["institution", "email"], name="invitation_by_email")]

    def __str__(self) -> str:
        return f"{self.email} ({self.role}) @ {self.institution_id}"

    @property
    def is_pending(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None and self.expires_at > timezone.now()

    @property
    def state(self) -> str:
        if self.accepted_at:
            return "accepted"
        if self.revoked_at:
            return "revoked"
        return "pending" if self.expires_at > timezone.now() else "expired"


class SecurityPolicy(TenantModel):
    """An institution's sign-in rules, set by its administrators (docs/accounts.md)."""

    require_admin_two_factor = models.BooleanField(
        default=False, help_text="Administrators must confirm each login with a code from an authenticator app.")
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+", db_index=False)

    class Meta(TenantModel.Meta):
        constraints = [models.UniqueConstraint(fields=["institution"], name="security_policy_one_per_institution")]

    def __str__(self) -> str:
        return f"security policy @ {self.institution_id}"


class RecoveryCodeDevice(ThrottlingMixin, Device):
    """One-time recovery codes, a fallback for an authenticator app that is out of reach
    (docs/accounts.md, "Recovery codes"). A django-otp device, so a code verifies the session like
    an app's code; only a keyed hash of each code is stored, and each code works once."""

    class Meta:
        verbose_name = "recovery codes"
        verbose_name_plural = "recovery codes"

    def get_throttle_factor(self) -> int:
        return getattr(settings, "OTP_RECOVERY_THROTTLE_FACTOR", 1)

    def verify_token(self, token) -> bool:
        from .two_factor import recovery_code_hash  # the hashing lives beside the rest of two-factor

        code_hash = recovery_code_hash(token)
        used = code_hash is not None and self.codes.filter(code_hash=code_hash, used_at=None).update(
            used_at=timezone.now()) == 1
        if used:
            self.throttle_reset()
        else:
            self.throttle_increment()
        return used


class RecoveryCode(models.Model):
    device = models.ForeignKey(RecoveryCodeDevice, on_delete=models.CASCADE, related_name="codes")
    code_hash = models.CharField(max_length=64)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["device", "code_hash"], name="recovery_code_unique")]

    def __str__(self) -> str:
        return f"recovery code {'used' if self.used_at else 'unused'} of device {self.device_id}"


class SsoProtocol(models.TextChoices):
    OIDC = "oidc", "OpenID Connect"
    SAML = "saml", "SAML 2.0"


class IdentityProvider(TenantModel):
    """One single sign-on identity provider of an institution (docs/sso.md); an institution may
    have several. Both protocols share the login discovery, provisioning and role mapping; each
    has its own connection fields. The OIDC client secret is stored encrypted
    (``accounts.sso_secrets``) or as an ``env:SSO_CLIENT_SECRET_...`` reference, never shown back."""

    protocol = models.CharField(max_length=8, choices=SsoProtocol.choices, default=SsoProtocol.OIDC)
    name = models.CharField(max_length=100, help_text='Shown on the login page: "Sign in with <name>".')
    email_domains = models.JSONField(
        default=list, blank=True,
        help_text="Lowercase email domains (e.g. uni.example) whose people the login page sends here.")
    enabled = models.BooleanField(default=True)
    jit_provisioning = models.BooleanField(
        default=False, help_text="Create the account and the membership on a person's first sign-in.")
    sso_only = models.BooleanField(
        default=False, help_text="Members of this institution cannot log in or reset a password with a password.")
    # Role mapping: the claim (OIDC) or attribute (SAML) read, rules value -> role, and the role
    # for a person no rule matches ("" refuses them).
    role_attribute = models.CharField(
        max_length=200, blank=True, help_text="e.g. groups, roles, eduPersonAffiliation")
    role_rules = models.JSONField(
        default=list, blank=True,
        help_text='[{"value": "staff", "role": "advisor"}, ...]; the highest role matched wins.')
    default_role = models.CharField(max_length=16, choices=Role.choices, blank=True,
                                    help_text="Role when no rule matches; blank refuses the sign-in.")
    # OpenID Connect
    oidc_issuer = models.URLField(max_length=500, blank=True,
                                  help_text="Issuer URL; its /.well-known/openid-configuration is read.")
    oidc_client_id = models.CharField(max_length=255, blank=True)
    oidc_client_secret_stored = models.TextField(
        blank=True, help_text="Fernet ciphertext, or env:SSO_CLIENT_SECRET_<NAME>. Never shown.")
    # SAML 2.0
    saml_metadata_url = models.URLField(max_length=500, blank=True)
    saml_metadata_xml = models.TextField(blank=True)
    saml_idp_entity_id = models.CharField(max_length=500, blank=True)
    saml_sp_entity_id = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+", db_index=False)

    class Meta(TenantModel.Meta):
        ordering = ["institution_id", "name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["institution", "name"], name="identity_provider_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_protocol_display()}) @ {self.institution_id}"

    @property
    def allauth_provider_id(self) -> str:
        """The id in the sign-in URLs (/accounts/sso/<protocol>/<id>/...)."""
        return f"idp{self.pk}"

    @property
    def has_client_secret(self) -> bool:
        return bool(self.oidc_client_secret_stored)


class SsoIdentity(TenantModel):
    """The link between an account and a person at one identity provider: the provider's subject
    (OIDC ``sub``, SAML NameID). Sign-ins find the account by this link only, never by email."""

    provider = models.ForeignKey(IdentityProvider, on_delete=models.CASCADE, related_name="identities")
    subject = models.CharField(max_length=255)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sso_identities")
    email = models.EmailField(blank=True, help_text="As the provider last sent it (informational).")
    created_at = models.DateTimeField(auto_now_add=True)
    last_login_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantModel.Meta):
        ordering = ["institution_id", "provider_id", "subject"]
        constraints = [
            # Led by the institution, as every tenant table's index is (tests/institutions/test_scoping.py).
            models.UniqueConstraint(fields=["institution", "provider", "subject"], name="sso_identity_unique_subject"),
            models.UniqueConstraint(fields=["provider", "user"], name="sso_identity_one_per_user_and_provider"),
        ]

    def __str__(self) -> str:
        return f"{self.subject} @ {self.provider_id} -> {self.user_id}"


class UserPreference(models.Model):
    """What a person chose for themselves, across every institution they belong to: the language of
    the pages (blank: their institution's default, then their browser's; docs/translating.md)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True,
                                related_name="preference")
    # NULL: no choice of their own (their institution's default applies).
    language = models.CharField(max_length=10, null=True, blank=True, choices=settings.LANGUAGES)  # noqa: DJ001
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.user_id}: {self.language or 'default'}"
