"""What advisors do about risk: flags, interventions with follow-ups and outcomes, and their types.

Caseloads are ``Student.advisor`` (owned by the students app); this app owns assigning them in bulk.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from institutions.scoping import TenantModel

DEFAULT_INTERVENTION_TYPES: tuple[tuple[str, str], ...] = (
    ("meeting", "Meeting"),
    ("call", "Phone call"),
    ("email", "Email"),
    ("referral_tutoring", "Referral to tutoring"),
    ("referral_financial_aid", "Referral to financial aid"),
    ("referral_counselling", "Referral to counselling"),
    ("other", "Other"),
)


class InterventionType(TenantModel):
    """A kind of intervention an institution offers; configurable per institution."""

    key = models.SlugField(max_length=60)
    label = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    is_active = models.BooleanField(default=True, help_text="Inactive types stay on old records but cannot be logged.")
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["institution_id", "position", "label", "id"]
        constraints = [
            models.UniqueConstraint(fields=["institution", "key"], name="intervention_type_unique_key"),
        ]

    def __str__(self) -> str:
        return self.label


class InterventionStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"


class InterventionOutcome(models.TextChoices):
    RESOLVED = "resolved", "Issue resolved"
    IMPROVED = "improved", "Improved"
    NO_CHANGE = "no_change", "No change"
    UNREACHABLE = "unreachable", "Could not reach the student"
    DECLINED = "declined", "Student declined help"
    REFERRED_ON = "referred_on", "Referred on elsewhere"
    OTHER = "other", "Other"


class Intervention(TenantModel):
    """One thing someone did for a student: when, what, notes, a follow-up, and how it ended."""

    student = models.ForeignKey(
        "students.Student", on_delete=models.CASCADE, related_name="interventions",
        db_index=False,  # covered by (institution, student, date)
    )
    intervention_type = models.ForeignKey(
        InterventionType, on_delete=models.PROTECT, related_name="interventions",
        db_index=False,  # covered by (institution, intervention_type)
    )
    date = models.DateField(help_text="When it happened")
    notes = models.TextField(blank=True)
    confidential = models.BooleanField(
        default=False, help_text="Only the author and the institution's administrators can read the notes."
    )
    follow_up_date = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=8, choices=InterventionStatus.choices, default=InterventionStatus.OPEN)
    outcome = models.CharField(max_length=16, choices=InterventionOutcome.choices, blank=True)
    outcome_notes = models.TextField(blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        db_index=False,  # covered by (institution, author)
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["-date", "-id"]
        indexes = [
            models.Index(fields=["institution", "student", "-date"], name="intervention_inst_student"),
            models.Index(fields=["institution", "status", "follow_up_date"], name="intervention_inst_followup"),
            models.Index(fields=["institution", "intervention_type"], name="intervention_inst_type"),
            models.Index(fields=["institution", "author"], name="intervention_inst_author"),
        ]

    def __str__(self) -> str:
        return f"{self.intervention_type_id} for student {self.student_id} on {self.date}"


class FlagSource(models.TextChoices):
    MODEL = "model", "Model"
    MANUAL = "manual", "Staff"


class Flag(TenantModel):
    """A student marked for attention, by a person (with a reason) or by the model; resolved with a reason."""

    student = models.ForeignKey(
        "students.Student", on_delete=models.CASCADE, related_name="flags",
        db_index=False,  # covered by (institution, student, resolved_at)
    )
    source = models.CharField(max_length=8, choices=FlagSource.choices, default=FlagSource.MANUAL)
    reason = models.TextField()
    raised_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        db_index=False,  # covered by (institution, raised_by)
    )
    raised_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    resolution = models.TextField(blank=True)
    # Routed to this member: while the flag is open they may see the student under need-to-know.
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        db_index=False,  # covered by (institution, assigned_to, resolved_at)
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["-raised_at", "-id"]
        indexes = [
            models.Index(fields=["institution", "student", "resolved_at"], name="flag_inst_student"),
            models.Index(fields=["institution", "raised_by", "resolved_at"], name="flag_inst_raised_by"),
            models.Index(fields=["institution", "assigned_to", "resolved_at"], name="flag_inst_assigned_to"),
        ]
        constraints = [
            # The model keeps at most one open flag per student; people may raise several, each with a reason.
            models.UniqueConstraint(
                fields=["institution", "student"], condition=models.Q(resolved_at__isnull=True, source="model"),
                name="flag_one_open_model_flag_per_student",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_source_display()} flag on student {self.student_id}"

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None


class StudentAccessGrant(TenantModel):
    """An administrator lets one member see one student under need-to-know access (beyond their
    caseload), optionally with a reason and an end; revoking keeps the record."""

    student = models.ForeignKey(
        "students.Student", on_delete=models.CASCADE, related_name="+",
        db_index=False,  # covered by (institution, student)
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+",
        db_index=False,  # covered by (institution, user, student)
    )
    reason = models.TextField(blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: until revoked")
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    granted_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )

    class Meta(TenantModel.Meta):
        ordering = ["-granted_at", "-id"]
        indexes = [
            models.Index(fields=["institution", "user", "student"], name="grant_inst_user_student"),
            models.Index(fields=["institution", "student"], name="grant_inst_student"),
        ]

    def __str__(self) -> str:
        return f"student {self.student_id} for user {self.user_id}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > timezone.now())


class RiskSnapshot(TenantModel):
    """How many students were flagged (and who) after one scoring run: the dashboard's history.

    The predictions app keeps only the latest ranking; this app records, after each run, what the
    advisors' workload looked like, to chart it over time and to tell who was newly flagged.
    """

    job = models.ForeignKey("institutions.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                            db_index=False)
    taken_at = models.DateTimeField()
    scored = models.PositiveIntegerField(default=0)
    flagged = models.PositiveIntegerField(default=0)
    high = models.PositiveIntegerField(default=0)
    medium = models.PositiveIntegerField(default=0)
    low = models.PositiveIntegerField(default=0)
    flagged_student_ids = models.JSONField(default=list, blank=True)

    class Meta(TenantModel.Meta):
        ordering = ["-taken_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["institution", "job"], name="risksnapshot_one_per_run"),
        ]
        indexes = [models.Index(fields=["institution", "-taken_at"], name="risksnapshot_inst_taken")]

    def __str__(self) -> str:
        return f"{self.flagged} flagged at {self.taken_at:%Y-%m-%d %H:%M}"


# ---------------------------------------------------------------------------------------------------------------
# Alerts: a concern about a student (from an instructor's progress survey, or raised by staff), routed by the
# institution's rules to a person or an office, worked by the assignee and closed with an outcome; whoever
# raised it is told when it is closed.
# ---------------------------------------------------------------------------------------------------------------


class Office(TenantModel):
    """A team that takes alerts (tutoring, financial aid, counselling...): its members share its queue."""

    name = models.CharField(max_length=120)
    email = models.EmailField(blank=True, help_text="The office's shared address, if it has one")
    description = models.CharField(max_length=255, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["institution_id", "name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["institution", "name"], name="office_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name


class OfficeMember(TenantModel):
    office = models.ForeignKey(Office, on_delete=models.CASCADE, related_name="members", db_index=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(TenantModel.Meta):
        ordering = ["institution_id", "office_id", "user_id"]
        constraints = [
            models.UniqueConstraint(fields=["institution", "office", "user"], name="office_member_unique"),
        ]
        indexes = [models.Index(fields=["institution", "user"], name="office_member_inst_user")]


class RouteTarget(models.TextChoices):
    ADVISOR = "advisor", _("The student's advisor")
    USER = "user", _("A person")
    OFFICE = "office", _("An office")


class AlertRule(TenantModel):
    """Where alerts go: the first active rule (by position) whose conditions all match decides.

    Empty conditions match everything; ``target`` says which of ``user`` and ``office`` counts
    (the forms and services keep the other empty). With no matching rule an alert goes to the student's
    advisor, and with no advisor to the institution's administrators' queue (unassigned).
    """

    position = models.PositiveIntegerField(default=0)
    concern_type = models.ForeignKey(
        "courses.ConcernType", null=True, blank=True, on_delete=models.CASCADE, related_name="+", db_index=False,
        help_text="Empty: any concern type",
    )
    program = models.CharField(max_length=200, blank=True, help_text="Empty: any program")
    target = models.CharField(max_length=8, choices=RouteTarget.choices, default=RouteTarget.ADVISOR)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                             related_name="+", db_index=False)
    office = models.ForeignKey(Office, null=True, blank=True, on_delete=models.CASCADE, related_name="rules",
                               db_index=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["institution_id", "position", "id"]
        indexes = [models.Index(fields=["institution", "position"], name="alert_rule_inst_position")]


class AlertStatus(models.TextChoices):
    OPEN = "open", pgettext_lazy("alert", "New")
    ACKNOWLEDGED = "acknowledged", pgettext_lazy("alert", "Acknowledged")
    CONTACTED = "contacted", pgettext_lazy("alert", "Student contacted")
    CLOSED = "closed", pgettext_lazy("alert", "Closed")


class AlertOutcome(models.TextChoices):
    RESOLVED = "resolved", pgettext_lazy("alert", "Resolved")
    SUPPORT_ARRANGED = "support_arranged", pgettext_lazy("alert", "Support arranged")
    UNREACHABLE = "unreachable", pgettext_lazy("alert", "Could not reach the student")
    DECLINED = "declined", pgettext_lazy("alert", "Student declined help")
    NO_ACTION = "no_action", pgettext_lazy("alert", "No action needed")
    WITHDRAWN = "withdrawn", pgettext_lazy("alert", "Student withdrew")


class AlertSource(models.TextChoices):
    SURVEY = "survey", pgettext_lazy("alert", "Progress survey")
    STAFF = "staff", pgettext_lazy("alert", "Staff")


class Alert(TenantModel):
    """One concern about one student, on its way from whoever raised it to whoever works it."""

    student = models.ForeignKey("students.Student", on_delete=models.CASCADE, related_name="alerts", db_index=False)
    concern_type = models.ForeignKey("courses.ConcernType", on_delete=models.PROTECT, related_name="+",
                                     db_index=False)
    source = models.CharField(max_length=8, choices=AlertSource.choices)
    survey_mark = models.ForeignKey("courses.SurveyMark", null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="alerts", db_index=False)
    # The mark's id, kept when the instructor takes the mark back (the courses app deletes the row, which
    # empties ``survey_mark``): the alert raised from it is still found and closed if nobody worked it.
    survey_mark_ref = models.BigIntegerField(null=True, blank=True, editable=False)
    raised_by_instructor = models.ForeignKey("courses.Instructor", null=True, blank=True,
                                             on_delete=models.SET_NULL, related_name="+", db_index=False)
    raised_by_user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="+", db_index=False)
    section = models.ForeignKey("courses.Section", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+", db_index=False)
    comment = models.TextField(blank=True)
    rule = models.ForeignKey(AlertRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                             db_index=False, help_text="The rule that routed it (empty: the fallback)")
    assigned_user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="+", db_index=False)
    assigned_office = models.ForeignKey(Office, null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="alerts", db_index=False)
    status = models.CharField(max_length=16, choices=AlertStatus.choices, default=AlertStatus.OPEN)
    outcome = models.CharField(max_length=20, choices=AlertOutcome.choices, blank=True)
    outcome_notes = models.TextField(blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+", db_index=False)
    raiser_told_at = models.DateTimeField(null=True, blank=True, help_text="When whoever raised it was told it closed")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["institution", "student", "-created_at"], name="alert_inst_student"),
            models.Index(fields=["institution", "assigned_user", "status"], name="alert_inst_user_status"),
            models.Index(fields=["institution", "assigned_office", "status"], name="alert_inst_office_status"),
            models.Index(fields=["institution", "status", "-created_at"], name="alert_inst_status"),
        ]
        constraints = [
            # A survey mark raises one alert, however often the instructor saves the page.
            models.UniqueConstraint(fields=["institution", "survey_mark"], name="alert_one_per_survey_mark"),
        ]

    def __str__(self) -> str:
        return f"alert {self.pk} on student {self.student_id}"

    @property
    def is_open(self) -> bool:
        return self.status != AlertStatus.CLOSED


class AlertEventKind(models.TextChoices):
    RAISED = "raised", pgettext_lazy("alert", "Raised")
    ROUTED = "routed", pgettext_lazy("alert", "Routed")
    ACKNOWLEDGED = "acknowledged", pgettext_lazy("alert", "Acknowledged")
    CONTACTED = "contacted", pgettext_lazy("alert", "Student contacted")
    REFERRED = "referred", pgettext_lazy("alert", "Referred")
    NOTE = "note", pgettext_lazy("alert", "Note")
    CLOSED = "closed", pgettext_lazy("alert", "Closed")
    RAISER_TOLD = "raiser_told", pgettext_lazy("alert", "Raiser told")


class AlertEvent(TenantModel):
    """What happened to an alert, in order: its history on the alert page and the student's timeline."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="events", db_index=False)
    kind = models.CharField(max_length=16, choices=AlertEventKind.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+", db_index=False)
    note = models.TextField(blank=True)
    to_user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+", db_index=False)
    to_office = models.ForeignKey(Office, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                  db_index=False)
    at = models.DateTimeField(auto_now_add=True)

    class Meta(TenantModel.Meta):
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["institution", "alert", "at"], name="alert_event_inst_alert")]
