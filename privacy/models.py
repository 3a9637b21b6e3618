"""What an institution decides about keeping data, and the record every erasure leaves.

An :class:`ErasureRecord` holds no personal data: who erased (a user, or the retention job),
when, in which institution, a random erasure id and how many rows of each kind went. It is what
remains of a student after erasure, so a privacy officer can show that the erasure happened.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from institutions.scoping import TenantModel

MAX_RETENTION_DAYS = 36500  # a hundred years: the form refuses more (a typo, not a rule)


class RetentionPolicy(TenantModel):
    """One per institution: after how long students who left are erased and open flags closed.

    Every rule is off (blank) until an administrator sets it; the daily run (a job with a report,
    privacy.retention) does only what the rules say, and the page previews it first.
    """

    erase_after_days = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(MAX_RETENTION_DAYS)],
        help_text="Erase a student this many days after the date of their outcome (graduated, dropped out, "
                  "transferred or other). Blank: never erase automatically.",
    )
    close_flags_after_days = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(MAX_RETENTION_DAYS)],
        help_text="Close a flag still open this many days after it was raised. Blank: never.",
    )
    term_end_dates = models.JSONField(
        default=list, blank=True,
        help_text='Days a term ends, every year, as "MM-DD" (e.g. ["01-31", "07-15"]): flags still open '
                  "that were raised before the latest of these days are closed.",
    )
    enabled = models.BooleanField(
        default=False, help_text="Run these rules every day (at the hour below, in the institution's time zone).",
    )
    run_hour = models.PositiveSmallIntegerField(default=3, validators=[MaxValueValidator(23)])
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        verbose_name_plural = "retention policies"
        constraints = [
            models.UniqueConstraint(fields=["institution"], name="retentionpolicy_one_per_institution"),
        ]

    def __str__(self) -> str:
        return f"Retention rules of institution {self.institution_id}"

    @property
    def has_rules(self) -> bool:
        return bool(self.erase_after_days or self.close_flags_after_days or self.term_end_dates)


class ErasureVia(models.TextChoices):
    PAGE = "page", _("Erasure page")
    API = "api", "API"
    RETENTION = "retention", _("Retention rule")


class ErasureRecord(TenantModel):
    """That a student was erased, without saying who the student was."""

    erasure_id = models.UUIDField(default=uuid.uuid4, editable=False)
    erased_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    # The username at the time (kept when the account is deleted later); empty for the retention job.
    erased_by_label = models.CharField(max_length=150, blank=True)
    via = models.CharField(max_length=16, choices=ErasureVia.choices)
    job = models.ForeignKey(
        "institutions.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    rule = models.CharField(max_length=200, blank=True, help_text="The retention rule, for an automatic erasure")
    counts = models.JSONField(default=dict, blank=True, help_text="rows deleted or cleaned per kind")
    erased_at = models.DateTimeField(auto_now_add=True)

    class Meta(TenantModel.Meta):
        ordering = ["-erased_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["institution", "erasure_id"], name="erasure_unique_id"),
        ]
        indexes = [models.Index(fields=["institution", "-erased_at"], name="erasure_inst_time")]

    def __str__(self) -> str:
        return f"Erasure {self.erasure_id}"
