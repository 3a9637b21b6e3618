"""Institutions (the tenants), who belongs to them, and the jobs that run on their behalf."""

from __future__ import annotations

import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

from .scoping import TenantModel


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not a known time zone (e.g. Europe/Lisbon)")


class Institution(models.Model):
    """A university, college or school district. Everything it owns carries its foreign key."""

    slug = models.SlugField(
        max_length=64,
        unique=True,
        validators=[RegexValidator(r"^[a-z0-9]+(?:-[a-z0-9]+)*$", "Lowercase letters, digits and dashes.")],
        help_text="Appears in every URL of the institution: /i/<slug>/",
    )
    name = models.CharField(max_length=200)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    settings = models.JSONField(
        default=dict,
        blank=True,
        help_text="Institution-level options (flagging rule, advisor capacity, promotion gate...).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    ADMIN = "admin", "Administrator"
    ADVISOR = "advisor", "Advisor"
    VIEWER = "viewer", "Viewer"


# What each role may do, in one place; views and viewsets ask for a capability, not a role.
ROLE_CAPABILITIES: dict[str, frozenset[str]] = {
    Role.ADMIN: frozenset({"view_aggregates", "view_students", "edit_students", "manage_data", "manage_models",
                          "manage_users", "manage_keys", "view_notes", "edit_interventions",
                          "assign_caseloads", "view_confidential_notes", "configure_interventions"}),
    Role.ADVISOR: frozenset({"view_aggregates", "view_students", "edit_interventions", "view_notes",
                            "work_caseload"}),
    Role.VIEWER: frozenset({"view_aggregates"}),
}


class Membership(TenantModel):
    """A user's role in one institution. Superusers get no implicit membership anywhere."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships", db_index=False
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.ADVISOR)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["institution_id", "user_id"]
        constraints = [
            models.UniqueConstraint(fields=["institution", "user"], name="membership_unique_user_per_institution"),
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.get_role_display()}) @ {self.institution_id}"

    def can(self, capability: str) -> bool:
        return capability in ROLE_CAPABILITIES.get(self.role, frozenset())


class JobKind(models.TextChoices):
    IMPORT = "import", "Import"
    RETRAIN = "retrain", "Retrain model"
    RESCORE = "rescore", "Rescore students"
    WEBHOOK = "webhook", "Webhook delivery"
    HEALTH_CHECK = "health_check", "Worker health check"


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_JOB_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)


class Job(TenantModel):
    """One run of long work (an import, a retrain, a rescore): what users watch progress on."""

    kind = models.CharField(max_length=16, choices=JobKind.choices)
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED)
    params = models.JSONField(default=dict, blank=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    stage = models.CharField(max_length=120, blank=True)
    counts = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    triggered_by = models.CharField(max_length=32, default="user", help_text="user, api, schedule, import...")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    dispatched_at = models.DateTimeField(null=True, blank=True)
    dispatch_error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["institution", "kind", "status"], name="job_inst_kind_status"),
            models.Index(fields=["institution", "-created_at"], name="job_inst_created"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.status})"

    @property
    def percent(self) -> int:
        if self.status == JobStatus.SUCCEEDED:
            return 100
        if not self.progress_total:
            return 0
        return min(100, int(100 * self.progress_done / self.progress_total))

    @property
    def is_finished(self) -> bool:
        return self.status not in ACTIVE_JOB_STATUSES

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None
