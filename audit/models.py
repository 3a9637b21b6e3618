"""The access audit trail: one append-only entry per read of student-level data.

An entry names who read (a member or an API key), in which institution, what (:class:`AccessAction`),
which student (a plain id, no foreign key: erasure unlinks it and retention removes old entries
without touching students) or, for a list, its filter and size, when and from which address. It
holds nothing personal about the student: no name, no external id, no search text.

PostgreSQL refuses ``UPDATE``, ``DELETE`` and ``TRUNCATE`` on the table (a trigger, see
``migrations/0001_initial.py``) except through the two maintenance functions of :mod:`audit.sql`,
which :mod:`audit.services` calls: removing entries past the retention period and unlinking an
erased student.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from institutions.scoping import TenantModel


class AccessAction(models.TextChoices):
    # Pages
    PROFILE_VIEW = "profile_view", _("Viewed the student profile")
    WHAT_IF = "what_if", _("Ran a what-if on the student")
    STUDENT_SEARCH = "student_search", _("Listed or searched students")
    FLAGGED_LIST = "flagged_list", _("Viewed the flagged list")
    CASELOAD = "caseload", _("Viewed a caseload")
    WORKLIST_EXPORT = "worklist_export", _("Exported a student list (CSV)")
    INTERVENTION_LIST = "intervention_list", _("Listed interventions")
    INTERVENTION_VIEW = "intervention_view", _("Opened an intervention")
    ALERT_LIST = "alert_list", _("Listed alerts")
    ALERT_VIEW = "alert_view", _("Opened an alert")
    SURVEY_ROSTER = "survey_roster", _("An instructor opened their progress survey roster (emailed link)")
    # Scoring applicants: records typed in, uploaded or sent, scored and not kept (no student)
    APPLICANT_SCORE = "applicant_score", _("Scored applicants on the page (values not kept)")
    APPLICANT_BATCH_SCORE = "applicant_batch_score", _("Scored a file of applicants (values not kept)")
    API_APPLICANT_SCORE = "api_applicant_score", _("Scored applicants (API; values not kept)")
    # Imports (reports hold the file's cell values)
    IMPORT_PREVIEW = "import_preview", _("Viewed an import's preview rows")
    IMPORT_REPORT = "import_report", _("Viewed an import report")
    IMPORT_ERRORS_EXPORT = "import_errors_csv", _("Exported an import's problems (CSV)")
    IMPORT_CHANGES_EXPORT = "import_changes_csv", _("Exported an import's changes (CSV)")
    IMPORT_JOB_RESULT = "import_job_result", _("Read an import job's report (API)")
    # API
    API_STUDENT_READ = "api_student_read", _("Read a student (API)")
    API_STUDENT_LIST = "api_student_list", _("Listed students (API)")
    API_PREDICTION_READ = "api_prediction_read", _("Read a student's risk (API)")
    API_PREDICTION_HISTORY = "api_prediction_history", _("Read a student's risk history (API)")
    API_PREDICTION_LIST = "api_prediction_list", _("Listed risks (API)")
    API_INTERVENTION_READ = "api_intervention_read", _("Read an intervention (API)")
    API_INTERVENTION_LIST = "api_intervention_list", _("Listed interventions (API)")
    API_FLAG_READ = "api_flag_read", _("Read a flag (API)")
    API_FLAG_LIST = "api_flag_list", _("Listed flags (API)")
    API_ALERT_READ = "api_alert_read", _("Read an alert (API)")
    API_ALERT_LIST = "api_alert_list", _("Listed alerts (API)")
    API_ACTIVITY_LIST = "api_activity_list", _("Listed learning activity (API)")
    # Subject access and erasure (privacy app)
    SUBJECT_EXPORT = "subject_export", _("Viewed or downloaded everything held about the student")
    ERASURE_REVIEW = "erasure_review", _("Reviewed what erasing the student would remove")
    # The trail itself
    ACCESS_LOG_SEARCH = "access_log_search", _("Searched the access log")
    ACCESS_LOG_EXPORT = "access_log_export", _("Exported the access log (CSV)")
    STUDENT_ERASED = "student_erased", _("Erased a student (entries unlinked)")


class AccessEntry(TenantModel):
    """One read. Written once (:func:`audit.services.access_record`), never changed."""

    # No foreign key on the institution's side either: removing an institution removes its
    # entries through the maintenance function (receivers.py), not through Django's cascade.
    institution = models.ForeignKey(
        "institutions.Institution", on_delete=models.DO_NOTHING, related_name="+", db_index=False
    )
    created_at = models.DateTimeField(default=timezone.now)
    action = models.CharField(max_length=32, choices=AccessAction.choices)
    # Who: the member (a user id and the username at the time), or the API key (its id and label;
    # the key's service user is not a person). Plain ids: a deleted user or key keeps its entries.
    actor_user_id = models.BigIntegerField(null=True, blank=True)
    actor_name = models.CharField(max_length=200)
    api_key_id = models.BigIntegerField(null=True, blank=True)
    # The student read, if one: a plain id (erasure sets it to null, see services.redact_student).
    student_id = models.BigIntegerField(null=True, blank=True)
    # The object read beside the student (an intervention, a flag, an import upload), if any.
    object_id = models.BigIntegerField(null=True, blank=True)
    # A list's filter (query parameters; search text replaced by a marker) and how many rows it handed out.
    filters = models.JSONField(default=dict, blank=True)
    result_count = models.PositiveIntegerField(null=True, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)

    class Meta(TenantModel.Meta):
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["institution", "-created_at"], name="accessentry_inst_created"),
            models.Index(fields=["institution", "student_id", "-created_at"], name="accessentry_inst_student"),
            models.Index(fields=["institution", "actor_user_id", "-created_at"], name="accessentry_inst_actor"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_name} {self.action} @ {self.created_at:%Y-%m-%d %H:%M}"

