"""The model registry, the institution's prediction settings, and stored predictions.

``ModelVersion`` holds one trained model per row (artifact bytes as produced by
``ml.Model.to_artifact()``: JSON text, never a pickle) with its sha256, quality figures and the
promotion decision. ``Prediction`` is the history: one row per student per scoring run in which
the student's inputs or the model changed. ``LatestPrediction`` is one row per current student,
rewritten by every run (rank, percentile and flag depend on everyone else's risk), so that a
dashboard of 50,000 students reads one indexed table instead of searching the history.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from institutions.scoping import TenantModel


class ModelStatus(models.TextChoices):
    CANDIDATE = "candidate", _("Candidate (awaiting decision)")
    LIVE = "live", _("Live")
    RETIRED = "retired", _("Retired")
    REJECTED = "rejected", _("Rejected")


class ModelTrigger(models.TextChoices):
    USER = "user", _("An administrator (web)")
    API = "api", _("API")
    SCHEDULE = "schedule", _("Schedule")
    IMPORT = "import", _("After an import")
    DEMO = "demo", _("Demo set-up")


class ModelVersion(TenantModel):
    """One trained model of one institution and the decision taken about it."""

    number = models.PositiveIntegerField(help_text="1, 2, 3... within the institution")
    # The stage of a student's path the model warns at: it learned only from the features known at
    # or before it (students.stages). Empty on rows written without one: the earliest stage.
    stage = models.ForeignKey(
        "students.FeatureStage", null=True, blank=True, on_delete=models.RESTRICT, related_name="+", db_index=False,
        help_text="The stage this model was trained for (empty: the earliest stage)",
    )
    status = models.CharField(max_length=16, choices=ModelStatus.choices, default=ModelStatus.CANDIDATE)
    artifact = models.BinaryField(help_text="ml artifact: one UTF-8 JSON document (no pickle)")
    artifact_sha256 = models.CharField(max_length=64)
    artifact_bytes = models.PositiveIntegerField(default=0)
    training_size = models.PositiveIntegerField(default=0)
    training_counts = models.JSONField(default=dict, blank=True, help_text='{"dropped_out": n, "graduated": n}')
    feature_keys = models.JSONField(default=list, blank=True)
    metrics = models.JSONField(default=dict, blank=True, help_text="cross-validated metrics of the model")
    holdout_metrics = models.JSONField(default=dict, blank=True)
    baselines = models.JSONField(default=dict, blank=True)
    fairness = models.JSONField(default=dict, blank=True)
    model_card = models.JSONField(default=dict, blank=True)
    gate = models.JSONField(default=dict, blank=True, help_text="the promotion gate's checks and verdict")
    # The last check of whether its predictions came true (predictions.services.realised).
    realised = models.JSONField(default=dict, blank=True, help_text="realised performance at the last check")
    threshold = models.FloatField(null=True, blank=True)
    trigger = models.CharField(max_length=16, choices=ModelTrigger.choices, default=ModelTrigger.USER)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    job = models.ForeignKey(
        "institutions.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(max_length=300, blank=True)
    # A version that did not pass the gate goes live only when an admin confirms and says why;
    # the reason, who gave it and when stay with the version (shown on its page).
    gate_override_reason = models.TextField(blank=True)
    gate_overridden_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    gate_overridden_at = models.DateTimeField(null=True, blank=True)
    promoted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(fields=["institution", "number"], name="modelversion_unique_number"),
            # One live model per stage (an institution that never set stages has one stage).
            models.UniqueConstraint(
                fields=["institution", "stage"], condition=Q(status="live"), nulls_distinct=False,
                name="modelversion_one_live_per_stage",
            ),
        ]
        indexes = [models.Index(fields=["institution", "status"], name="modelversion_inst_status")]

    def __str__(self) -> str:
        return f"Model v{self.number} ({self.status})"

    @property
    def auc(self) -> float | None:
        return (self.metrics or {}).get("roc_auc")

    @property
    def gate_passed(self) -> bool:
        """True only for a recorded verdict that passed; no verdict counts as not passed."""
        return (self.gate or {}).get("passed") is True


class FlagRule(models.TextChoices):
    THRESHOLD = "threshold", _("Risk at or above a threshold")
    CAPACITY = "capacity", _("The top k students (advisors' capacity)")


class ScheduleFrequency(models.TextChoices):
    OFF = "off", _("Off")
    DAILY = "daily", _("Every day")
    WEEKLY = "weekly", _("Every week (Monday)")
    MONTHLY = "monthly", _("Every month (1st)")


class OutcomeClass(models.TextChoices):
    """What an outcome means for training: the model learns P(did not complete)."""

    DID_NOT_COMPLETE = "did_not_complete", _("Did not complete (counts as leaving)")
    COMPLETED = "completed", _("Completed")
    NOT_KNOWN = "not_known", _("Not known (not trained on)")


def default_outcome_classes() -> dict[str, str]:
    """The mapping every institution starts with: what training always did (dropped out against
    graduated; every other outcome left out), so adding the setting changed nobody's model."""
    return {"dropped_out": OutcomeClass.DID_NOT_COMPLETE.value, "graduated": OutcomeClass.COMPLETED.value}


class PredictionSettings(TenantModel):
    """What an institution's administrators decide: flagging, bands, the promotion gate, schedules."""

    flag_rule = models.CharField(max_length=16, choices=FlagRule.choices, default=FlagRule.THRESHOLD)
    flag_threshold = models.FloatField(
        default=0.5, validators=[MinValueValidator(0.01), MaxValueValidator(0.99)],
        help_text=_("Flag students whose risk is at least this (threshold rule)."),
    )
    flag_capacity = models.PositiveIntegerField(
        default=100, validators=[MinValueValidator(1)],
        help_text=_("How many students the advisors can contact in a term (top-k rule)."),
    )
    flag_capacity_per_advisor = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(10_000)],
        help_text=_("If set, the capacity is the number of advisors times this many students each (top-k rule); "
                    "the number above is used only while the institution has no advisor."),
    )
    flag_min_risk = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.01), MaxValueValidator(0.99)],
        help_text=_("Optional (top-k rule): never flag a student whose risk is below this, even within capacity."),
    )
    band_medium_from = models.FloatField(default=0.3, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    band_high_from = models.FloatField(default=0.6, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    auto_promote = models.BooleanField(
        default=True, help_text=_("Promote a new model that passes every gate check without waiting for an admin.")
    )
    min_training_size = models.PositiveIntegerField(
        default=200, help_text=_("Students with a known outcome a model must learn from.")
    )
    realised_auc_floor = models.FloatField(
        default=0.7, validators=[MinValueValidator(0.5), MaxValueValidator(1.0)],
        verbose_name=_("Realised ROC-AUC floor"),
        help_text=_("When the live model's predictions, checked against the outcomes that came in since, rank "
                    "leavers above stayers less well than this, administrators are alerted (and model.degraded sent)."),
    )
    max_auc_drop = models.FloatField(
        default=0.01, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text=_("How much lower a candidate's ROC-AUC may be than the live model's configuration refitted on "
                    "the candidate's training rows, both measured on the candidate's holdout."),
    )
    max_brier_increase = models.FloatField(
        default=0.01, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text=_("How much higher (worse) a candidate's Brier score, the error of its risks as probabilities, may "
                    "be than the live model's configuration refitted on the candidate's training rows, both measured "
                    "on the candidate's holdout."),
    )
    min_fairness_group_size = models.PositiveIntegerField(
        default=30, validators=[MinValueValidator(2), MaxValueValidator(100_000)],
        help_text=_("Groups of a protected attribute with fewer students are shown on the model card with "
                    "their figures but do not count in the fairness gaps the gate checks."),
    )
    max_fairness_gap = models.FloatField(
        default=0.2, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text=_("Largest allowed gap between groups of a protected attribute in leavers caught (TPR) "
                    "or stayers flagged (FPR)."),
    )
    search_iterations = models.PositiveIntegerField(
        default=8, validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text=_("Hyper-parameter candidates tried per training (more is slower and rarely much better)."),
    )
    rescore_schedule = models.CharField(
        max_length=16, choices=ScheduleFrequency.choices, default=ScheduleFrequency.DAILY
    )
    retrain_schedule = models.CharField(
        max_length=16, choices=ScheduleFrequency.choices, default=ScheduleFrequency.WEEKLY
    )
    schedule_hour = models.PositiveSmallIntegerField(
        default=2, validators=[MaxValueValidator(23)], help_text=_("Hour of day, in the institution's time zone.")
    )
    rescore_after_import = models.BooleanField(default=True)
    # The number of concerns instructors marked this term (progress surveys) as the feature
    # ``concerns_this_term``: switched on and off on its own form (services.concern_feature),
    # which records who did it and when.
    concerns_feature = models.BooleanField(
        default=False, verbose_name=_("Use the number of instructor concerns this term as a model feature"),
        help_text=_("Adds the feature concerns_this_term to the data schema; the next retrain learns from it."),
    )
    concerns_feature_changed_at = models.DateTimeField(null=True, blank=True)
    concerns_feature_changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    # How long the prediction history is kept (services.history_retention): every run for
    # ``history_keep_all_days`` days, then the last run of each calendar month for
    # ``history_keep_monthly_months`` months (None: forever). Set on its own form, which shows what
    # the next clean-up removes before a shorter setting is saved and records who changed it.
    history_keep_all_days = models.PositiveIntegerField(
        default=90, validators=[MinValueValidator(1), MaxValueValidator(3650)],
        verbose_name=_("Keep every scoring run for (days)"),
    )
    history_keep_monthly_months = models.PositiveIntegerField(
        null=True, blank=True, default=24, validators=[MaxValueValidator(1200)],
        verbose_name=_("Then keep the last run of each month for (months)"),
        help_text=_("Empty: keep one run per month forever."),
    )
    history_retention_changed_at = models.DateTimeField(null=True, blank=True)
    history_retention_changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    # Which recorded outcomes count as not completing (1), completing (0) or not known (left out
    # of training), by ``students.Outcome`` value; a value absent here is not known. Set on its own
    # form (services.outcome_mapping), which shows who moves into or out of training first.
    outcome_classes = models.JSONField(default=default_outcome_classes, blank=True)
    outcome_classes_changed_at = models.DateTimeField(null=True, blank=True)
    outcome_classes_changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        verbose_name_plural = "prediction settings"
        constraints = [
            models.UniqueConstraint(fields=["institution"], name="predictionsettings_one_per_institution"),
        ]

    def __str__(self) -> str:
        return f"Prediction settings of institution {self.institution_id}"

    def clean(self) -> None:
        if self.band_medium_from >= self.band_high_from:
            raise ValidationError({"band_high_from": _("The high band must start above the medium band.")})


class RiskBand(models.TextChoices):
    LOW = "low", _("Low")
    MEDIUM = "medium", _("Medium")
    HIGH = "high", _("High")


class Prediction(TenantModel):
    """A student's risk as scored by one run: kept forever as the student's risk history."""

    student = models.ForeignKey("students.Student", on_delete=models.CASCADE, related_name="+", db_index=False)
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+", db_index=False)
    job = models.ForeignKey("institutions.Job", on_delete=models.PROTECT, related_name="+", db_index=False)
    risk = models.FloatField()
    band = models.CharField(max_length=8, choices=RiskBand.choices)
    base_value = models.FloatField(help_text="the model's average output (log-odds) the factors start from")
    factors = models.JSONField(default=list, help_text="top factors from ml's explanation, largest first")
    input_fingerprint = models.CharField(max_length=40, help_text="hash of the feature values scored")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(TenantModel.Meta):
        ordering = ["-created_at", "-id"]
        constraints = [
            # A retried chunk of a run can never store a student twice. The table is partitioned by
            # month of created_at (migration 0013), and a partitioned table's unique keys must hold
            # its partition key: created_at is the run's time (the job's), one value per run, so
            # this is still one row per student and run. The primary key is (id, created_at) in the
            # database for the same reason; id alone stays unique (one sequence).
            models.UniqueConstraint(fields=["institution", "job", "student", "created_at"],
                                    name="prediction_unique_per_run"),
        ]
        indexes = [models.Index(fields=["institution", "student", "-created_at"], name="prediction_inst_student")]

    def __str__(self) -> str:
        return f"{self.student_id}: {self.risk:.2f} (run {self.job_id})"


class LatestPrediction(TenantModel):
    """Each current student's most recent prediction plus where it stands in the institution now."""

    student = models.ForeignKey("students.Student", on_delete=models.CASCADE, related_name="+", db_index=False)
    # No database-level constraint: with one, every deleted history row would make PostgreSQL scan
    # this table for references (an index leading with prediction_id would break the rule that
    # indexes start with institution). Django still cascades deletes; scoring re-points the row in
    # the same transaction that replaces a prediction.
    prediction = models.ForeignKey(Prediction, on_delete=models.CASCADE, related_name="+", db_index=False,
                                   db_constraint=False)
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+", db_index=False)
    risk = models.FloatField()
    band = models.CharField(max_length=8, choices=RiskBand.choices)
    input_fingerprint = models.CharField(max_length=40)
    rank = models.PositiveIntegerField(default=0, help_text="1 = highest risk in the institution")
    percentile = models.FloatField(default=0.0, help_text="share of current students with lower risk, 0-100")
    flagged = models.BooleanField(default=False)
    scored_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        # Rank order: rank is the position in exactly this order (see services.ranking.latest_predictions_rank).
        ordering = ["-risk", "student_id"]
        constraints = [
            models.UniqueConstraint(fields=["institution", "student"], name="latestprediction_one_per_student"),
        ]
        # Indexed by risk, not rank: a run rewrites many rows' rank and percentile, and keeping those
        # columns out of every index lets PostgreSQL update them in place (HOT, with fillfactor 70).
        indexes = [
            models.Index(fields=["institution", "-risk", "student"], name="latest_inst_risk"),
            models.Index(fields=["institution", "flagged", "-risk", "student"], name="latest_inst_flagged_risk"),
            models.Index(fields=["institution", "band", "-risk", "student"], name="latest_inst_band_risk"),
        ]

    def __str__(self) -> str:
        return f"{self.student_id}: {self.risk:.2f} (#{self.rank})"


class FeedbackReason(models.TextChoices):
    ALREADY_KNOWN = "already_known", _("Already known: we are working with this student")
    DATA_WRONG = "data_wrong", _("The data behind it is wrong")
    FACTOR_NOT_RELEVANT = "factor_not_relevant", _("A factor shown is not relevant for this student")
    OTHER = "other", _("Other (say what in the note)")


class RiskFeedback(TenantModel):
    """An advisor's "this risk looks wrong" about one stored prediction, kept with the model version
    that made it. Read by people (the model page counts it per version); it never changes a score."""

    student = models.ForeignKey("students.Student", on_delete=models.CASCADE, related_name="+", db_index=False)
    # No database-level key: the history is partitioned by time, and a key to it would have to
    # carry the prediction's created_at. SameInstitutionLink's triggers check the institution;
    # Django cascades deletes, and the history clean-up never removes a prediction with feedback.
    prediction = models.ForeignKey(Prediction, on_delete=models.CASCADE, related_name="+", db_index=False,
                                   db_constraint=False)
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+", db_index=False)
    risk = models.FloatField(help_text="the risk the advisor saw")
    reason = models.CharField(max_length=32, choices=FeedbackReason.choices)
    note = models.TextField(blank=True, max_length=2000)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(TenantModel.Meta):
        ordering = ["-created_at", "-id"]
        verbose_name = "risk feedback"
        verbose_name_plural = "risk feedback"
        indexes = [
            models.Index(fields=["institution", "model_version", "reason"], name="feedback_inst_version"),
            models.Index(fields=["institution", "student", "-created_at"], name="feedback_inst_student"),
        ]

    def __str__(self) -> str:
        return f"{self.student_id}: {self.reason} on v{self.model_version_id}"


class RescoreChunk(TenantModel):
    """One slice of a large rescore, fanned out over the scoring workers (services.fanout).

    The run's current students, in id order, cut into ranges of ``chunk_size``: fixed when the job
    is planned, reused by every later attempt of the job. A worker claims a chunk (``claim_token``
    plus a lease, as a job's), scores it, and stores its predictions and ``done_at`` in one
    transaction that succeeds only while its claim holds: a chunk is stored once, and a chunk
    whose worker died is claimed again once its lease runs out. Deleted when the job succeeds.
    """

    job = models.ForeignKey("institutions.Job", on_delete=models.CASCADE, related_name="+", db_index=False)
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="+", db_index=False)
    number = models.PositiveIntegerField(help_text="0, 1, 2... in student id order")
    first_student_id = models.BigIntegerField()
    last_student_id = models.BigIntegerField()
    planned = models.PositiveIntegerField(help_text="students to score in the range when planned")
    full = models.BooleanField(default=False, help_text="every current student in the range, not only changed ones")
    claim_token = models.CharField(max_length=32, blank=True)
    claim_expires_at = models.DateTimeField(null=True, blank=True)
    claims = models.PositiveIntegerField(default=0, help_text="how many times a worker took it")
    stored = models.PositiveIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True, help_text="host:pid of the process that stored it")
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantModel.Meta):
        ordering = ["job", "number"]
        constraints = [
            models.UniqueConstraint(fields=["institution", "job", "number"], name="rescorechunk_one_per_number"),
        ]

    def __str__(self) -> str:
        return f"job {self.job_id} chunk {self.number} ({self.first_student_id}-{self.last_student_id})"
