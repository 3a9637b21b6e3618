"""What the workspace keeps per person: their in-app notifications and how they want their digest.

Notifications are written by :mod:`workspace.notifications` in reaction to the lower apps' events
(an alert routed to someone, an alert someone raised is closed); the digest
(:mod:`workspace.digests`) is built from the lower apps' tables when it is sent.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from institutions.scoping import TenantModel


class NotificationKind(models.TextChoices):
    ALERT_ROUTED = "alert_routed", _("Alert routed to you")
    ALERT_REFERRED = "alert_referred", _("Alert referred to you")
    ALERT_CLOSED = "alert_closed", _("Alert you raised was closed")
    NEWLY_FLAGGED = "newly_flagged", _("Newly flagged in your caseload")
    FOLLOW_UP_DUE = "follow_up_due", _("Follow-up due")
    MODEL_DEGRADED = "model_degraded", _("The live model's predictions fell below the floor")


class Notification(TenantModel):
    """One thing one member should know about, shown in the bell menu until read.

    ``title`` never carries a student's name (a notification may be read over a shoulder, and
    lives longer than a page view): it names the kind and the student's external id.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False)
    kind = models.CharField(max_length=20, choices=NotificationKind.choices)
    title = models.CharField(max_length=255)
    url = models.CharField(max_length=500, blank=True, help_text="Where it leads, inside this institution")
    student = models.ForeignKey("students.Student", null=True, blank=True, on_delete=models.CASCADE,
                                related_name="+", db_index=False)
    alert = models.ForeignKey("interventions.Alert", null=True, blank=True, on_delete=models.CASCADE,
                              related_name="+", db_index=False)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantModel.Meta):
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["institution", "user", "read_at", "-created_at"], name="notification_inst_user"),
            models.Index(fields=["institution", "student"], name="notification_inst_student"),
            models.Index(fields=["institution", "alert"], name="notification_inst_alert"),
        ]

    def __str__(self) -> str:
        return self.title


class DigestFrequency(models.TextChoices):
    DAILY = "daily", _("Daily")
    WEEKLY = "weekly", _("Weekly (Mondays)")
    OFF = "off", _("Off")


class NotificationPreference(TenantModel):
    """A member's digest choice in one institution (no row: the default, daily) and when the last
    digest went out (what is "new" in the next one)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False)
    digest = models.CharField(max_length=8, choices=DigestFrequency.choices, default=DigestFrequency.DAILY)
    last_digest_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["institution_id", "user_id"]
        constraints = [
            models.UniqueConstraint(fields=["institution", "user"], name="notification_pref_unique"),
        ]
