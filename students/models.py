"""Students and the per-institution feature schema their values are validated against."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import get_language, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from institutions.scoping import TenantModel


class FeatureKind(models.TextChoices):
    NUMERIC = "numeric", _("Numeric")
    CATEGORICAL = "categorical", _("Categorical")
    BOOLEAN = "boolean", _("Yes/no")


class ChangeSource(models.TextChoices):
    IMPORT = "import", _("File import")
    API = "api", _("API")
    WEB = "web", _("Web page")
    SYSTEM = "system", _("System")
    # Values the platform derives from what instructors mark in progress surveys (the number of
    # concerns this term, predictions.services.concern_feature).
    SURVEYS = "surveys", _("Progress surveys (platform)")


class FeatureStage(TenantModel):
    """A moment of a student's path at which some of their data becomes known (application,
    enrolment, end of term 1...), in the institution's order (``position``, earliest first).

    Each feature says from which stage it is known (``FeatureDefinition.known_from``); a model of a
    stage learns only from the features known at or before it (docs/admin-guide.md, "Stages").
    """

    key = models.SlugField(max_length=40, help_text="Stable machine name, e.g. end_of_term_1")
    label = models.CharField(max_length=100)
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["institution_id", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["institution", "key"], name="stage_unique_key_per_institution"),
        ]

    def __str__(self) -> str:
        return self.label


class FeatureStageChange(TenantModel):
    """One edit of the institution's stages (added, renamed, moved, removed): who, when, what.

    Names the stage by its key (kept after a stage is removed), not by a link to its row."""

    stage_key = models.CharField(max_length=40)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    source = models.CharField(max_length=16, choices=ChangeSource.choices)
    changes = models.JSONField(default=dict, help_text='{"field": [old, new]}')
    changed_at = models.DateTimeField(auto_now_add=True)

    class Meta(TenantModel.Meta):
        ordering = ["-changed_at", "-id"]
        indexes = [models.Index(fields=["institution", "-changed_at"], name="stage_change_inst_time")]


class FeatureDefinition(TenantModel):
    """One column of an institution's data: what it means and which values are valid.

    ``protected`` attributes (gender, age, nationality...) are never model inputs by default and
    feed the fairness audit; ``actionable`` ones are what an advisor can influence (what-if).
    """

    key = models.SlugField(max_length=80, help_text="Stable machine name, e.g. units_1st_sem_approved")
    label = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=FeatureKind.choices)
    min_value = models.FloatField(null=True, blank=True)
    max_value = models.FloatField(null=True, blank=True)
    categories = models.JSONField(
        default=list, blank=True, help_text='Categorical only: [{"value": "33", "label": "Agronomy"}, ...]'
    )
    unit = models.CharField(max_length=40, blank=True)
    description = models.TextField(blank=True)
    # The label and description in the other languages of the pages, as the institution wrote
    # them: {"es": {"label": "...", "description": "..."}, "pt": {...}}; a reader whose language
    # has none sees the default ``label``/``description`` (students/feature_translations.py).
    translations = models.JSONField(default=dict, blank=True)
    protected = models.BooleanField(default=False)
    actionable = models.BooleanField(default=False)
    position = models.PositiveIntegerField(default=0)
    # From which stage of a student's path this value is known; empty means the institution's
    # earliest stage (so an institution that never sets stages keeps one model using every feature).
    known_from = models.ForeignKey(
        FeatureStage, null=True, blank=True, on_delete=models.RESTRICT, related_name="+", db_index=False,
        help_text="The stage from which this value is known (empty: the earliest stage)",
    )
    # A retired feature is no longer a model input (from the next retrain on); its stored values
    # and history are kept, and restoring it makes it an input again.
    retired_at = models.DateTimeField(null=True, blank=True)
    # The range of the values an import saw when it created this (numeric) feature without a
    # range: offered to an administrator to confirm; cleared once a range is confirmed or set.
    seen_min_value = models.FloatField(null=True, blank=True)
    seen_max_value = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["institution_id", "position", "key"]
        constraints = [
            models.UniqueConstraint(fields=["institution", "key"], name="feature_unique_key_per_institution"),
        ]

    def __str__(self) -> str:
        return f"{self.label} ({self.key})"

    @property
    def category_values(self) -> list[str]:
        return [str(item["value"]) for item in self.categories]

    @property
    def category_labels(self) -> dict[str, str]:
        return {str(item["value"]): item.get("label") or str(item["value"]) for item in self.categories}

    def label_in(self, language: str | None) -> str:
        """The label a reader of ``language`` sees: the institution's translation, else the default."""
        return self._translated("label", language) or self.label

    def description_in(self, language: str | None) -> str:
        return self._translated("description", language) or self.description

    def _translated(self, part: str, language: str | None) -> str:
        entries = self.translations or {}
        for code in (language or "", (language or "").split("-")[0]):
            text = (entries.get(code) or {}).get(part) if code else None
            if text:
                return text
        return ""

    @property
    def shown_label(self) -> str:
        """The label in the language of the page being rendered."""
        return self.label_in(get_language())

    @property
    def shown_description(self) -> str:
        return self.description_in(get_language())

    @property
    def is_retired(self) -> bool:
        return self.retired_at is not None

    @property
    def range_unconfirmed(self) -> bool:
        """An import saw this feature's values but nobody has set its valid range yet."""
        return self.seen_min_value is not None and self.min_value is None and self.max_value is None


class FeatureDefinitionChange(TenantModel):
    """One edit of a feature's definition: who, when, and each changed field as ``[old, new]``."""

    feature = models.ForeignKey(FeatureDefinition, on_delete=models.CASCADE, related_name="changes", db_index=False)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    source = models.CharField(max_length=16, choices=ChangeSource.choices)
    changes = models.JSONField(default=dict, help_text='{"field": [old, new]}')
    changed_at = models.DateTimeField(auto_now_add=True)

    class Meta(TenantModel.Meta):
        ordering = ["-changed_at", "-id"]
        indexes = [
            models.Index(fields=["institution", "-changed_at"], name="feature_change_inst_time"),
            models.Index(fields=["institution", "feature", "-changed_at"], name="feature_change_inst_feature"),
        ]


class Outcome(models.TextChoices):
    """What finally happened; ``enrolled`` means not known yet (the student is still studying).

    Which of the others count as leaving, as completing or as not known for training is each
    institution's choice (``predictions.outcome_mapping``): a failed course or a withdrawal means
    different things in different places, so they are outcomes of their own, not a guess.
    """

    ENROLLED = "enrolled", _("Still enrolled")
    DROPPED_OUT = "dropped_out", _("Dropped out")
    GRADUATED = "graduated", _("Graduated")
    TRANSFERRED = "transferred", _("Transferred")
    FAILED = "failed", pgettext_lazy("student outcome", "Failed")  # not a job's "Failed"
    WITHDRAWN = "withdrawn", _("Withdrew")
    OTHER = "other", _("Other")


class EnrolmentStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    ON_LEAVE = "on_leave", _("On leave")
    INACTIVE = "inactive", _("Inactive")


class Student(TenantModel):
    external_id = models.CharField(max_length=100, help_text="The student information system's id")
    name = models.CharField(max_length=200, blank=True)
    email = models.EmailField(blank=True)
    program = models.CharField(max_length=200, blank=True)
    cohort = models.CharField(max_length=40, blank=True, help_text="Entry term, e.g. 2024-autumn")
    status = models.CharField(max_length=16, choices=EnrolmentStatus.choices, default=EnrolmentStatus.ACTIVE)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.ENROLLED)
    outcome_date = models.DateField(null=True, blank=True)
    features = models.JSONField(default=dict, blank=True)
    advisor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="advisees",
        db_index=False,  # covered by (institution, advisor)
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["institution_id", "external_id"]
        constraints = [
            models.UniqueConstraint(fields=["institution", "external_id"], name="student_unique_external_id"),
        ]
        indexes = [
            # Pages of one institution's students in id order (the API's list and its default
            # order): the page's ids come from this index alone, however many students the other
            # institutions have.
            models.Index(fields=["institution", "id"], name="student_inst_id"),
            models.Index(fields=["institution", "outcome", "status"], name="student_inst_outcome"),
            models.Index(fields=["institution", "updated_at", "id"], name="student_inst_updated"),
            models.Index(fields=["institution", "advisor"], name="student_inst_advisor"),
            models.Index(fields=["institution", "program"], name="student_inst_program"),
            models.Index(fields=["institution", "cohort"], name="student_inst_cohort"),
        ]

    def __str__(self) -> str:
        return self.name or self.external_id

    @property
    def display_name(self) -> str:
        return self.name or f"Student {self.external_id}"

    @property
    def is_current(self) -> bool:
        return self.outcome == Outcome.ENROLLED and self.status != EnrolmentStatus.INACTIVE


class StudentChange(TenantModel):
    """What changed on a student, when, and through which import/request: the audit trail.

    Append-only, and written in bulk (an institution's first import writes one row per student),
    so its keys are not enforced by the database (``db_constraint=False``, as django-simple-history
    does for its history tables): a per-row foreign-key check was a third of a 100,000-student
    import's time. The rows are written only with ids the same statement or transaction has just
    read or returned, and deletes go through Django, which still cascades (a student's or an
    institution's changes go with it) and sets a deleted job or user to NULL.
    """

    institution = models.ForeignKey(
        "institutions.Institution", on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    student = models.ForeignKey(
        Student, on_delete=models.CASCADE, related_name="changes", db_index=False, db_constraint=False
    )
    source = models.CharField(max_length=16, choices=ChangeSource.choices)
    job = models.ForeignKey(
        "institutions.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False,
        db_constraint=False,
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False,
        db_constraint=False,
    )
    created = models.BooleanField(default=False)
    changes = models.JSONField(default=dict, help_text='{"field": [old, new], "features.key": [old, new]}')
    changed_at = models.DateTimeField(auto_now_add=True)

    class Meta(TenantModel.Meta):
        ordering = ["-changed_at", "-id"]
        indexes = [models.Index(fields=["institution", "student", "-changed_at"], name="change_inst_student")]


class ImportMapping(TenantModel):
    """The column mapping an institution last used, remembered to suggest it for the next upload.

    ``columns`` maps a header (as written in the file) to its target spec; it grows as new
    exports are mapped, so several export formats of one institution are all remembered.
    """

    columns = models.JSONField(default=dict, blank=True)
    outcome_values = models.JSONField(default=dict, blank=True, help_text='{"Dropout": "dropped_out", ...}')
    options = models.JSONField(default=dict, blank=True, help_text="id_columns, id_row_prefix, delimiter")
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["institution_id"]
        constraints = [
            models.UniqueConstraint(fields=["institution"], name="import_mapping_one_per_institution"),
        ]


class ImportUploadStatus(models.TextChoices):
    UPLOADED = "uploaded", _("Uploaded")
    VALIDATING = "validating", _("Validating")
    VALIDATED = "validated", _("Ready to import")
    INVALID = "invalid", _("Has errors")
    COMMITTING = "committing", _("Importing")
    COMMITTED = "committed", _("Imported")
    FAILED = "failed", pgettext_lazy("student outcome", "Failed")  # not a job's "Failed"
    DISCARDED = "discarded", _("Discarded")


class ImportChannel(models.TextChoices):
    """Where a file came in; it decides the largest size accepted (page: IMPORT_MAX_FILE_BYTES;
    the API and the CLI: IMPORT_MAX_BULK_FILE_BYTES), checked again by the upload's jobs."""

    PAGE = "page", "Upload page"
    API = "api", "API"
    CLI = "cli", "Command line"


class ImportUpload(TenantModel):
    """An uploaded file on its way through preview, mapping, validation and commit.

    The file itself lives under ``MEDIA_ROOT/imports/<institution id>/`` until the commit job
    ends or the upload is discarded; the reports stay on the jobs. The preview job (read in the
    worker) stores ``preview``; the mapping page is drawn from it.
    """

    original_name = models.CharField(max_length=255)
    stored_name = models.CharField(max_length=255, help_text="Path relative to MEDIA_ROOT")
    size = models.PositiveBigIntegerField(default=0)
    channel = models.CharField(max_length=8, choices=ImportChannel.choices, default=ImportChannel.PAGE,
                               help_text="Where the file came in: decides the largest size accepted")
    status = models.CharField(max_length=16, choices=ImportUploadStatus.choices, default=ImportUploadStatus.UPLOADED)
    mapping = models.JSONField(default=dict, blank=True, help_text="The mapping chosen for this file")
    preview = models.JSONField(
        default=dict, blank=True,
        help_text="What the mapping page shows (format, header, first rows, suggested mapping, each column's first "
                  "values), stored by the preview job so the page never reads the file",
    )
    preview_job = models.ForeignKey(
        "institutions.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    validation_job = models.ForeignKey(
        "institutions.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    commit_job = models.ForeignKey(
        "institutions.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["institution", "-created_at"], name="import_upload_inst_created")]

    def __str__(self) -> str:
        return f"{self.original_name} ({self.status})"


class ImportUploadSession(TenantModel):
    """A file being sent to the API in chunks (docs/api.md, "Large files in chunks").

    Chunks are appended at ``offset`` to ``stored_name`` (a ``.partial`` file beside the uploads);
    once ``offset`` reaches ``size`` the client completes the session: the size (and the sha256,
    if one was given) is checked and the file becomes an ordinary :class:`ImportUpload`
    (``upload``), previewed, mapped, validated and committed as any other. A session never
    completed is removed with the uploads never committed (IMPORT_UPLOAD_RETENTION_DAYS).
    """

    original_name = models.CharField(max_length=255)
    stored_name = models.CharField(max_length=255, help_text="Path relative to MEDIA_ROOT of the partial file")
    size = models.PositiveBigIntegerField(help_text="The whole file's size in bytes, declared at creation")
    sha256 = models.CharField(max_length=64, blank=True, help_text="The whole file's SHA-256 (hex), if declared")
    offset = models.PositiveBigIntegerField(default=0, help_text="Bytes received so far")
    upload = models.ForeignKey(ImportUpload, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                               db_index=False, help_text="The upload it became once completed")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["institution", "-created_at"], name="import_session_inst_created")]

    def __str__(self) -> str:
        return f"{self.original_name} ({self.offset}/{self.size})"


class ActivityEvent(TenantModel):
    """One learning-platform interaction (or a day's clicks on one item) reported by an LMS.

    Per-student features (total activity, active days, activity by third of the term...) are
    derived from these by ``students.activity.activity_features_recompute``.
    """

    student = models.ForeignKey(Student, on_delete=models.CASCADE, related_name="+", db_index=False)
    occurred_at = models.DateTimeField()
    kind = models.CharField(max_length=32, help_text="view, submit, forum, login, quiz, ...")
    course = models.CharField(max_length=100, blank=True)
    count = models.PositiveIntegerField(default=1, help_text="Interactions this row stands for (e.g. clicks)")
    event_id = models.CharField(
        max_length=100, blank=True, help_text="The LMS's id; when given, re-sending the event is a no-op"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(TenantModel.Meta):
        ordering = ["institution_id", "occurred_at", "id"]
        indexes = [
            models.Index(fields=["institution", "student", "occurred_at"], name="activity_inst_student_time"),
            models.Index(fields=["institution", "occurred_at"], name="activity_inst_time"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["institution", "event_id"], condition=~models.Q(event_id=""), name="activity_unique_event_id"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} x{self.count} @ {self.occurred_at:%Y-%m-%d}"
