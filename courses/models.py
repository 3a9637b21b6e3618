"""Courses, their sections (OneRoster "classes"), terms, instructors and who is enrolled where.

Every row carries the ``source_id`` of the student information system's OneRoster export (its
``sourcedId``), the upsert key of the roster import: unique per institution. Instructors are
people without an account on the platform (a survey reaches them by email). A student enrolment
links a section to a :class:`students.models.Student` of the same institution (matched by the
student's ``external_id``); a teaching assignment links a section to an instructor.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from institutions.scoping import TenantModel


class SessionKind(models.TextChoices):
    SCHOOL_YEAR = "schoolYear", _("School year")
    TERM = "term", _("Term")
    SEMESTER = "semester", _("Semester")
    GRADING_PERIOD = "gradingPeriod", _("Grading period")


class AcademicSession(TenantModel):
    """A term, semester, school year or grading period (OneRoster ``academicSessions.csv``)."""

    source_id = models.CharField(max_length=255)
    title = models.CharField(max_length=255)
    kind = models.CharField(max_length=16, choices=SessionKind.choices)
    start_date = models.DateField()
    end_date = models.DateField()
    school_year = models.CharField(max_length=16, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["institution_id", "-start_date", "title"]
        constraints = [
            models.UniqueConstraint(fields=["institution", "source_id"], name="academic_session_unique_source_id"),
        ]

    def __str__(self) -> str:
        return self.title


class Course(TenantModel):
    source_id = models.CharField(max_length=255)
    title = models.CharField(max_length=255)
    course_code = models.CharField(max_length=100, blank=True)
    org_name = models.CharField(max_length=255, blank=True, help_text="The school or department offering it")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["institution_id", "course_code", "title"]
        constraints = [
            models.UniqueConstraint(fields=["institution", "source_id"], name="course_unique_source_id"),
        ]

    def __str__(self) -> str:
        return f"{self.course_code} {self.title}".strip()


class Section(TenantModel):
    """One class of a course in one or more terms (OneRoster ``classes.csv``)."""

    source_id = models.CharField(max_length=255)
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="sections", db_index=False)
    title = models.CharField(max_length=255)
    class_code = models.CharField(max_length=100, blank=True)
    class_type = models.CharField(max_length=32, blank=True, help_text="scheduled or homeroom")
    location = models.CharField(max_length=255, blank=True)
    periods = models.CharField(max_length=255, blank=True)
    school_name = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["institution_id", "class_code", "title"]
        constraints = [
            models.UniqueConstraint(fields=["institution", "source_id"], name="section_unique_source_id"),
        ]
        indexes = [models.Index(fields=["institution", "course"], name="section_inst_course")]

    def __str__(self) -> str:
        return self.title


class SectionTerm(TenantModel):
    """A section runs in a term (``classes.csv`` ``termSourcedIds`` may list several)."""

    section = models.ForeignKey(Section, on_delete=models.CASCADE, related_name="section_terms", db_index=False)
    term = models.ForeignKey(AcademicSession, on_delete=models.CASCADE, related_name="section_terms", db_index=False)

    class Meta(TenantModel.Meta):
        ordering = ["institution_id", "section_id", "term_id"]
        constraints = [
            models.UniqueConstraint(fields=["institution", "section", "term"], name="section_term_unique"),
        ]
        indexes = [models.Index(fields=["institution", "term"], name="section_term_inst_term")]


class Instructor(TenantModel):
    """Someone who teaches sections; needs no account (surveys reach them by email)."""

    source_id = models.CharField(max_length=255)
    given_name = models.CharField(max_length=200, blank=True)
    family_name = models.CharField(max_length=200, blank=True)
    email = models.EmailField(blank=True)
    identifier = models.CharField(max_length=255, blank=True, help_text="The SIS's staff number, if any")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["institution_id", "family_name", "given_name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["institution", "source_id"], name="instructor_unique_source_id"),
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        return f"{self.given_name} {self.family_name}".strip() or f"Instructor {self.source_id}"


class TeachingAssignment(TenantModel):
    """An instructor teaches a section (an ``enrollments.csv`` row with role ``teacher``)."""

    source_id = models.CharField(max_length=255)
    section = models.ForeignKey(Section, on_delete=models.CASCADE, related_name="teaching", db_index=False)
    instructor = models.ForeignKey(Instructor, on_delete=models.CASCADE, related_name="teaching", db_index=False)
    primary = models.BooleanField(default=False)
    begin_date = models.DateField(null=True, blank=True)
    end_date = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["institution_id", "section_id", "-primary", "instructor_id"]
        constraints = [
            models.UniqueConstraint(fields=["institution", "source_id"], name="teaching_unique_source_id"),
        ]
        indexes = [
            models.Index(fields=["institution", "section"], name="teaching_inst_section"),
            models.Index(fields=["institution", "instructor"], name="teaching_inst_instructor"),
        ]


class Enrolment(TenantModel):
    """A student is enrolled in a section (an ``enrollments.csv`` row with role ``student``)."""

    source_id = models.CharField(max_length=255)
    section = models.ForeignKey(Section, on_delete=models.CASCADE, related_name="enrolments", db_index=False)
    student = models.ForeignKey(
        "students.Student", on_delete=models.CASCADE, related_name="section_enrolments", db_index=False
    )
    begin_date = models.DateField(null=True, blank=True)
    end_date = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["institution_id", "section_id", "student_id"]
        constraints = [
            models.UniqueConstraint(fields=["institution", "source_id"], name="enrolment_unique_source_id"),
        ]
        indexes = [
            models.Index(fields=["institution", "section", "student"], name="enrolment_inst_section"),
            models.Index(fields=["institution", "student"], name="enrolment_inst_student"),
        ]


class RosterImportStatus(models.TextChoices):
    CHECKING = "checking", pgettext_lazy("roster import", "Being checked")
    PREVIEWED = "previewed", pgettext_lazy("roster import", "Waiting for confirmation")
    COMMITTING = "committing", pgettext_lazy("roster import", "Being imported")
    FAILED = "failed", pgettext_lazy("roster import", "Refused")
    COMMITTED = "committed", pgettext_lazy("roster import", "Imported")
    DISCARDED = "discarded", pgettext_lazy("roster import", "Discarded")


class RosterImport(TenantModel):
    """A OneRoster file set on its way from preview to commit, and afterwards the record of it.

    The uploaded files are kept under MEDIA_ROOT (``files``: their names and where they are
    stored) between the upload and the commit, and removed once it is committed, discarded or
    refused, so no copy of the roster outlives the import. A preview job (``preview_job``) checks
    them and stores ``preview`` (what the import will change: counts per kind and examples); the
    commit job (``commit_job``) reads them again, checks again and applies them; ``result`` is what
    it did.
    """

    original_name = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField(default=0)
    options = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=RosterImportStatus.choices,
                              default=RosterImportStatus.CHECKING)
    preview = models.JSONField(default=dict, blank=True)
    files = models.JSONField(default=list, blank=True,
                             help_text="[original name, stored name under MEDIA_ROOT] per uploaded file, until it "
                                       "is committed, discarded or refused")
    result = models.JSONField(default=dict, blank=True)
    preview_job = models.ForeignKey("institutions.Job", null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+", db_index=False)
    commit_job = models.ForeignKey("institutions.Job", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", db_index=False)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    committed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    committed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["institution", "-created_at"], name="roster_import_inst_created")]

    def __str__(self) -> str:
        return f"{self.original_name} ({self.status})"


# ---------------------------------------------------------------------------------------------------------------
# Progress surveys: instructors answer, for the students of their own sections, with concerns or kudos.
# ---------------------------------------------------------------------------------------------------------------

DEFAULT_CONCERN_TYPES: tuple[tuple[str, str, str], ...] = (
    ("attendance", "Attendance", "concern"),
    ("low_grades", "Low grades", "concern"),
    ("missing_work", "Missing work", "concern"),
    ("participation", "Participation", "concern"),
    ("kudos", "Kudos: doing well", "kudos"),
)


class ConcernKind(models.TextChoices):
    CONCERN = "concern", _("Concern")
    KUDOS = "kudos", _("Kudos")


class ConcernType(TenantModel):
    """What an instructor can mark a student with in a progress survey: a concern (which becomes
    an alert) or kudos (which goes on the student's timeline); configurable per institution."""

    key = models.SlugField(max_length=60)
    label = models.CharField(max_length=120)
    kind = models.CharField(max_length=8, choices=ConcernKind.choices, default=ConcernKind.CONCERN)
    description = models.CharField(max_length=255, blank=True)
    is_active = models.BooleanField(default=True)
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["institution_id", "position", "label", "id"]
        constraints = [
            models.UniqueConstraint(fields=["institution", "key"], name="concern_type_unique_key"),
        ]

    def __str__(self) -> str:
        return self.label


class SurveyStatus(models.TextChoices):
    OPEN = "open", pgettext_lazy("survey", "Open")
    CLOSED = "closed", pgettext_lazy("survey", "Closed")


class ProgressSurvey(TenantModel):
    """An administrator asks the instructors of one term how their students are doing.

    Open from ``opens_at`` to ``closes_at`` (or until closed by hand): only then do the
    instructors' links work. ``concern_type_ids`` lists the :class:`ConcernType` rows it offers.
    """

    term = models.ForeignKey(AcademicSession, on_delete=models.PROTECT, related_name="surveys", db_index=False)
    title = models.CharField(max_length=200)
    message = models.TextField(blank=True, help_text="Shown to instructors above their roster")
    opens_at = models.DateTimeField()
    closes_at = models.DateTimeField()
    concern_type_ids = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=8, choices=SurveyStatus.choices, default=SurveyStatus.OPEN)
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    auto_remind_at = models.DateTimeField(
        null=True, blank=True, help_text="One reminder goes by itself then to those who have not answered")
    auto_reminded_at = models.DateTimeField(null=True, blank=True)
    last_reminded_at = models.DateTimeField(null=True, blank=True)
    last_reminded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False,
        help_text="Who last sent reminders by hand (empty: the automatic reminder)",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["-opens_at", "-id"]
        indexes = [models.Index(fields=["institution", "-opens_at"], name="survey_inst_opens")]

    def __str__(self) -> str:
        return self.title


class SurveyInvitation(TenantModel):
    """One instructor's invitation to a survey: the emailed link's secret (only its keyed hash is
    kept), when it was sent, reminded, first opened and last answered, and whether it was revoked."""

    survey = models.ForeignKey(ProgressSurvey, on_delete=models.CASCADE, related_name="invitations", db_index=False)
    instructor = models.ForeignKey(Instructor, on_delete=models.CASCADE, related_name="survey_invitations",
                                   db_index=False)
    token_hash = models.CharField(max_length=64, help_text="HMAC-SHA256 of the link's secret (hex)")
    sent_at = models.DateTimeField(null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    reminders_sent = models.PositiveIntegerField(default=0)
    first_opened_at = models.DateTimeField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(TenantModel.Meta):
        ordering = ["institution_id", "survey_id", "instructor_id"]
        constraints = [
            models.UniqueConstraint(fields=["institution", "survey", "instructor"], name="survey_invitation_unique"),
            models.UniqueConstraint(fields=["token_hash"], name="survey_invitation_unique_token"),
        ]
        indexes = [models.Index(fields=["institution", "instructor"], name="survey_inv_inst_instructor")]


class SurveyMark(TenantModel):
    """One instructor marks one student of one of their sections with one concern type or kudos,
    with an optional comment. Unmarking deletes the row (until the alert it raised exists)."""

    invitation = models.ForeignKey(SurveyInvitation, on_delete=models.CASCADE, related_name="marks", db_index=False)
    section = models.ForeignKey(Section, on_delete=models.CASCADE, related_name="+", db_index=False)
    student = models.ForeignKey("students.Student", on_delete=models.CASCADE, related_name="survey_marks",
                                db_index=False)
    concern_type = models.ForeignKey(ConcernType, on_delete=models.PROTECT, related_name="marks", db_index=False)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["institution", "invitation", "section", "student", "concern_type"],
                                    name="survey_mark_unique"),
        ]
        indexes = [
            models.Index(fields=["institution", "student", "-created_at"], name="survey_mark_inst_student"),
            models.Index(fields=["institution", "concern_type"], name="survey_mark_inst_type"),
        ]
