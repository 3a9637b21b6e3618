"""Institutions (the tenants), who belongs to them, and the jobs that run on their behalf."""

from __future__ import annotations

import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

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
    # Need-to-know access: when on, a member who does not see every student (advisors) sees only
    # those in their caseload, granted to them, or with an open flag routed to them (the rule is
    # interventions.need_to_know; every tenant queryset of a request passes through it).
    need_to_know_access = models.BooleanField(
        default=False, help_text="Advisors see only their caseload, students granted to them, and flags routed to them."
    )
    need_to_know_changed_at = models.DateTimeField(null=True, blank=True)
    need_to_know_changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    notice = models.CharField(
        max_length=300, blank=True,
        help_text="Shown at the top of every page of the institution, e.g. that its data is a demo's.",
    )
    # The language of its members' pages unless a member chose their own (docs/translating.md).
    default_language = models.CharField(
        max_length=10, choices=settings.LANGUAGES, default="en",
        help_text="The language of the pages for members who did not choose their own.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    ADMIN = "admin", _("Administrator")
    ADVISOR = "advisor", _("Advisor")
    VIEWER = "viewer", _("Viewer")


# What each role may do, in one place; views and viewsets ask for a capability, not a role.
# ``view_all_students``: need-to-know access (Institution.need_to_know_access) never narrows what
# this member sees; a member with ``view_students`` but without it sees only their relationship.
ROLE_CAPABILITIES: dict[str, frozenset[str]] = {
    Role.ADMIN: frozenset({"view_aggregates", "view_students", "edit_students", "manage_data", "manage_models",
                          "manage_users", "manage_keys", "manage_webhooks", "view_notes", "edit_interventions",
                          "view_access_log",
                          "assign_caseloads", "view_confidential_notes", "configure_interventions",
                          "view_all_students", "score_applicants"}),
    Role.ADVISOR: frozenset({"view_aggregates", "view_students", "edit_interventions", "view_notes",
                            "work_caseload", "score_applicants"}),
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
    IMPORT = "import", _("Import")
    RETRAIN = "retrain", _("Retrain model")
    RESCORE = "rescore", _("Rescore students")
    WEBHOOK = "webhook", _("Webhook delivery")
    ACTIVITY_FEATURES = "activity", _("Activity features")
    HEALTH_CHECK = "health_check", _("Worker health check")
    AUDIT_RETENTION = "audit_retention", _("Access log retention")
    RETENTION = "retention", _("Retention rules")
    HISTORY_RETENTION = "history_cleanup", _("Prediction history clean-up")
    ROSTER_IMPORT = "roster_import", _("OneRoster import")


class JobStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


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
    # The running attempt holds the job until this time; its heartbeat and every progress call
    # push it on. Past it, the sweeper (institutions.jobs.job_sweep) re-queues or fails the job.
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # How often the sweeper found this job's lease run out (a worker died or hung): for /metrics.
    lease_expiries = models.PositiveIntegerField(default=0)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    # A follow-up: queued behind this job of the same kind, sent when it finishes (see job_create).
    waits_for = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="followers", db_index=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["institution", "kind", "status"], name="job_inst_kind_status"),
            models.Index(fields=["institution", "-created_at"], name="job_inst_created"),
            # The sweeper's and the dispatcher's look at unfinished jobs: small, whatever the history.
            models.Index(fields=["institution", "status", "lease_expires_at"], name="job_inst_active",
                         condition=models.Q(status__in=["queued", "running"])),
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


class ApiKey(TenantModel):
    """A credential for an external system, bound to exactly one institution.

    The secret is shown once at creation; only its sha256 is stored. The full key reads
    ``dpk_<institution id>_<prefix>_<secret>`` so that the lookup goes through the
    ``(institution, prefix)`` index, like every other tenant query. ``scopes`` holds
    ``<family>:read`` / ``<family>:write`` strings (see :mod:`institutions.api_keys`).
    """

    name = models.CharField(max_length=120, help_text="Which system uses it, e.g. 'Nightly SIS sync'")
    prefix = models.CharField(max_length=16, help_text="Public part of the key, shown in lists and logs")
    key_hash = models.CharField(max_length=64, help_text="sha256 of the full key (hex)")
    scopes = models.JSONField(default=list, blank=True)
    rate_per_minute = models.PositiveIntegerField(default=600, help_text="Requests per minute before 429")
    service_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", db_index=False,
        help_text="The principal that changes made with this key are recorded under",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # Duck-typed marker read by institutions.api.base.resolve_institution_access.
    is_api_key = True

    class Meta(TenantModel.Meta):
        ordering = ["institution_id", "-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["institution", "prefix"], name="apikey_unique_prefix"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.display_prefix})"

    @property
    def display_prefix(self) -> str:
        return f"dpk_{self.institution_id}_{self.prefix}"

    @property
    def is_active(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= timezone.now():
            return "expired"
        return "active"

    def allows(self, capability: str, *, write: bool, family: str | None = None) -> bool:
        from .api_keys import api_key_allows

        return api_key_allows(self, capability=capability, write=write, family=family)


class WebhookEndpoint(TenantModel):
    """An institution's receiver for events; every payload is signed with ``secret``."""

    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    events = models.JSONField(default=list, help_text="Event names this endpoint receives")
    secret = models.CharField(max_length=64, help_text="HMAC-SHA256 signing secret")
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["institution_id", "-created_at", "-id"]
        indexes = [models.Index(fields=["institution", "is_active"], name="webhook_inst_active")]

    def __str__(self) -> str:
        return self.url


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    RETRYING = "retrying", _("Retrying")
    SUCCEEDED = "succeeded", _("Delivered")
    FAILED = "failed", _("Failed")


class WebhookDelivery(TenantModel):
    """One event sent (or being sent) to one endpoint: the visible delivery log."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    event_id = models.UUIDField(help_text="Same for every endpoint that receives the event; receivers dedupe on it")
    event = models.CharField(max_length=64)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    response_status = models.PositiveIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)
    error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["institution", "endpoint", "-created_at"], name="delivery_inst_endpoint"),
            models.Index(fields=["institution", "status"], name="delivery_inst_status"),
        ]

    def __str__(self) -> str:
        return f"{self.event} -> {self.endpoint_id} ({self.status})"


class WorkerHeartbeat(models.Model):
    """A Celery worker's last sign of life: ``institutions.tasks.record_worker_heartbeat`` runs on
    the beat every WORKER_HEARTBEAT_SECONDS and whichever worker takes it writes its name and the
    time. Readiness (``/readyz``) and ``/metrics`` read it. Platform-level: no institution."""

    worker = models.CharField(max_length=200, unique=True)
    seen_at = models.DateTimeField()

    class Meta:
        ordering = ["-seen_at"]

    def __str__(self) -> str:
        return f"{self.worker} at {self.seen_at:%Y-%m-%d %H:%M:%S}"
