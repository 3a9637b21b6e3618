"""Invitations: how a person joins an institution (docs/accounts.md)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

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
