"""REST API for courses, sections, terms, instructors and enrolments, and the OneRoster import.

Reads: ``courses/``, ``sections/``, ``terms/``, ``instructors/``, ``enrolments/`` (each with its
detail); progress surveys: ``concern-types/``, ``surveys/`` and ``surveys/<id>/participation/``
(invited, opened, answered, concerns and kudos per instructor and per course). The import:
``POST roster-imports/`` (multipart: the export's zip or its CSV files) stores the files and
answers 202 with the roster import, its preview job and the URL to poll; the job stores the
preview (``status`` becomes ``previewed``) and writes nothing else. ``POST roster-imports/<id>/confirm/``
answers 202 with the commit job, which checks again and applies it all or nothing;
``POST roster-imports/<id>/discard/`` drops it.
"""

from __future__ import annotations

import django_filters
from django.urls import reverse
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, parsers, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from institutions.api.base import InstitutionViewSet
from institutions.api.errors import error_body
from institutions.api.filters import IdFilter
from institutions.api.serializers import JobSerializer
from students.importing.errors import ImportFileError

from .models import AcademicSession, ConcernType, Course, Enrolment, Instructor, ProgressSurvey, RosterImport, Section
from .oneroster import STUDENT_ID_FIELDS
from .roster_import import (
    RosterInvalid,
    roster_import_confirm,
    roster_import_discard,
    roster_import_upload,
)
from .selectors import (
    academic_session_list,
    access_academic_session,
    access_concern_type,
    access_course,
    access_enrolment,
    access_instructor,
    access_roster_import,
    access_section,
    access_survey,
    concern_type_list,
    course_list,
    enrolment_list,
    instructor_list,
    roster_import_list,
    section_list,
    survey_list,
    survey_participation,
)


class AcademicSessionSerializer(serializers.ModelSerializer):
    class Meta:
        model = AcademicSession
        fields = ["id", "source_id", "title", "kind", "start_date", "end_date", "school_year", "updated_at"]


class CourseSerializer(serializers.ModelSerializer):
    section_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Course
        fields = ["id", "source_id", "title", "course_code", "org_name", "section_count", "updated_at"]


class SectionSerializer(serializers.ModelSerializer):
    course = serializers.IntegerField(source="course_id")
    terms = serializers.SerializerMethodField()
    instructors = serializers.SerializerMethodField()
    enrolment_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Section
        fields = ["id", "source_id", "course", "title", "class_code", "class_type", "location", "periods",
                  "school_name", "terms", "instructors", "enrolment_count", "updated_at"]

    def get_terms(self, section) -> list[int]:
        return [link.term_id for link in section.section_terms.all()]

    def get_instructors(self, section) -> list[dict]:
        return [{"id": link.instructor_id, "name": link.instructor.display_name, "primary": link.primary}
                for link in section.teaching.all()]


class InstructorSerializer(serializers.ModelSerializer):
    sections = serializers.SerializerMethodField()

    class Meta:
        model = Instructor
        fields = ["id", "source_id", "given_name", "family_name", "email", "identifier", "sections", "updated_at"]

    def get_sections(self, instructor) -> list[dict]:
        return [{"id": link.section_id, "title": link.section.title, "primary": link.primary}
                for link in instructor.teaching.all()]


class EnrolmentSerializer(serializers.ModelSerializer):
    section = serializers.IntegerField(source="section_id")
    student = serializers.IntegerField(source="student_id")
    student_external_id = serializers.CharField(source="student.external_id")

    class Meta:
        model = Enrolment
        fields = ["id", "source_id", "section", "student", "student_external_id", "begin_date", "end_date",
                  "updated_at"]


class RosterImportSerializer(serializers.ModelSerializer):
    uploaded_by = serializers.CharField(source="uploaded_by.get_username", default=None, allow_null=True)
    committed_by = serializers.CharField(source="committed_by.get_username", default=None, allow_null=True)
    url = serializers.SerializerMethodField()
    preview_job = JobSerializer(read_only=True, allow_null=True)
    commit_job = JobSerializer(read_only=True, allow_null=True)

    class Meta:
        model = RosterImport
        fields = ["id", "url", "original_name", "sha256", "size", "options", "status", "preview", "result",
                  "preview_job", "commit_job", "uploaded_by", "committed_by", "committed_at", "created_at"]

    def get_url(self, roster: RosterImport) -> str:
        path = reverse("api-roster-import-detail",
                       kwargs={"institution_slug": roster.institution.slug, "pk": roster.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path


class RosterUploadSerializer(serializers.Serializer):
    files = serializers.ListField(child=serializers.FileField(allow_empty_file=True), allow_empty=False, min_length=1,
                                  help_text="The export's zip, or orgs.csv, academicSessions.csv, courses.csv, "
                                            "classes.csv, users.csv and enrollments.csv (as repeated 'files' parts)")
    student_id_field = serializers.ChoiceField(choices=STUDENT_ID_FIELDS, default="sourcedId",
                                               help_text="The users.csv column that holds the student's external_id")


class _ReadViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, InstitutionViewSet):
    read_capability = "view_students"
    write_capability = "manage_data"
    keyset_pagination = False
    selector = None
    accessor = None

    def filter_scoped_queryset(self, queryset):
        return type(self).selector(institution=self.institution)

    def access_object(self, object_id):
        return type(self).accessor(institution=self.institution, **{self.accessor_argument: object_id})


class AcademicSessionViewSet(_ReadViewSet):
    """Terms, semesters, school years and grading periods (OneRoster academicSessions)."""

    model = AcademicSession
    serializer_class = AcademicSessionSerializer
    selector, accessor, accessor_argument = academic_session_list, access_academic_session, "academic_session_id"


class CourseViewSet(_ReadViewSet):
    model = Course
    serializer_class = CourseSerializer
    selector, accessor, accessor_argument = course_list, access_course, "course_id"


class SectionFilter(django_filters.FilterSet):
    course = IdFilter(field_name="course_id")
    term = IdFilter(field_name="section_terms__term_id", distinct=True)
    instructor = IdFilter(field_name="teaching__instructor_id", distinct=True)


class SectionViewSet(_ReadViewSet):
    """Sections (OneRoster classes) with their course, terms, instructors and number of students."""

    model = Section
    serializer_class = SectionSerializer
    filterset_class = SectionFilter
    selector, accessor, accessor_argument = section_list, access_section, "section_id"


class InstructorViewSet(_ReadViewSet):
    """Instructors (no account on the platform) and the sections they teach."""

    model = Instructor
    serializer_class = InstructorSerializer
    selector, accessor, accessor_argument = instructor_list, access_instructor, "instructor_id"


class EnrolmentFilter(django_filters.FilterSet):
    section = IdFilter(field_name="section_id")
    student = IdFilter(field_name="student_id")


class EnrolmentViewSet(_ReadViewSet):
    """Students enrolled in sections."""

    model = Enrolment
    serializer_class = EnrolmentSerializer
    filterset_class = EnrolmentFilter
    selector, accessor, accessor_argument = enrolment_list, access_enrolment, "enrolment_id"


def _refusal(exc) -> Response:
    if isinstance(exc, RosterInvalid):
        return Response(error_body(code="roster_invalid", message=_(
            "The roster has %(count)s problem(s); nothing was imported. Each is listed with its file, "
            "row and column.") % {"count": exc.errors.total}, errors={"rows": exc.errors.items}),
            status=status.HTTP_400_BAD_REQUEST)
    code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE if exc.code == "file_too_large" else status.HTTP_400_BAD_REQUEST
    return Response(error_body(code=exc.code, message=exc.message, errors={"files": [exc.message]}), status=code)


class RosterImportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, InstitutionViewSet):
    """OneRoster imports: upload for a preview (201, nothing imported), then confirm or discard."""

    model = RosterImport
    serializer_class = RosterImportSerializer
    read_capability = "manage_data"
    write_capability = "manage_data"
    api_scope = "imports"
    keyset_pagination = False
    parser_classes = [parsers.MultiPartParser, parsers.FormParser]

    def filter_scoped_queryset(self, queryset):
        return roster_import_list(institution=self.institution)

    def access_object(self, object_id):
        return access_roster_import(institution=self.institution, roster_import_id=object_id)

    def _body(self, roster: RosterImport) -> dict:
        roster = access_roster_import(institution=self.institution, roster_import_id=roster.pk)  # jobs as now
        return RosterImportSerializer(roster, context=self.get_serializer_context()).data

    @extend_schema(request={"multipart/form-data": RosterUploadSerializer}, responses={202: RosterImportSerializer})
    def create(self, request, *args, **kwargs):
        """Store the files and queue their check: 202 with the roster import to poll (``url``)."""
        upload = RosterUploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        try:
            roster = roster_import_upload(
                institution=self.institution, uploaded_files=upload.validated_data["files"], user=request.user,
                student_id_field=upload.validated_data["student_id_field"])
        except ImportFileError as exc:
            return _refusal(exc)
        body = self._body(roster)
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["url"]})

    @extend_schema(request=None, responses={202: RosterImportSerializer})
    @action(detail=True, methods=["post"])
    def confirm(self, request, *args, **kwargs):
        """Queue the commit job: 202. It fails with ``result.code`` ``roster_preview_changed`` (and the
        roster import waits for confirmation again, with the new preview) if the data changed."""
        roster = self.get_object()
        try:
            roster = roster_import_confirm(institution=self.institution, roster_import=roster, user=request.user)
        except ImportFileError as exc:
            return _refusal(exc)
        body = self._body(roster)
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["url"]})

    @extend_schema(request=None, responses={200: RosterImportSerializer})
    @action(detail=True, methods=["post"])
    def discard(self, request, *args, **kwargs):
        roster = roster_import_discard(institution=self.institution, roster_import=self.get_object())
        return Response(self._body(roster))


# --- Progress surveys (read-only) ------------------------------------------------------------------------------

class ConcernTypeSerializer(serializers.ModelSerializer):
    class Meta:
        model = ConcernType
        fields = ["id", "key", "label", "kind", "description", "is_active", "position", "updated_at"]


class ConcernTypeViewSet(_ReadViewSet):
    """What instructors can mark a student with in a progress survey (concerns and kudos)."""

    model = ConcernType
    serializer_class = ConcernTypeSerializer
    selector, accessor, accessor_argument = concern_type_list, access_concern_type, "concern_type_id"


class SurveySerializer(serializers.ModelSerializer):
    term = serializers.IntegerField(source="term_id")
    concern_types = serializers.ListField(source="concern_type_ids", child=serializers.IntegerField(),
                                          help_text="Ids of the concern types (and kudos) the survey offers")
    opened_by = serializers.CharField(source="opened_by.get_username", default=None, allow_null=True)
    closed_by = serializers.CharField(source="closed_by.get_username", default=None, allow_null=True)
    invited_count = serializers.IntegerField(read_only=True)
    answered_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = ProgressSurvey
        fields = ["id", "term", "title", "message", "opens_at", "closes_at", "status", "concern_types",
                  "opened_by", "closed_at", "closed_by", "auto_remind_at", "auto_reminded_at", "last_reminded_at",
                  "invited_count", "answered_count", "created_at"]


class _Counts(serializers.Serializer):
    invited = serializers.IntegerField()
    opened = serializers.IntegerField()
    answered = serializers.IntegerField()
    concerns = serializers.IntegerField()
    kudos = serializers.IntegerField()


class InstructorParticipationSerializer(_Counts):
    instructor = serializers.IntegerField(source="instructor.pk")
    name = serializers.CharField(source="instructor.display_name")
    first_opened_at = serializers.DateTimeField(source="invitation.first_opened_at", allow_null=True)
    answered_at = serializers.DateTimeField(source="invitation.answered_at", allow_null=True)
    reminders_sent = serializers.IntegerField(source="invitation.reminders_sent")
    invited = serializers.BooleanField()
    opened = serializers.BooleanField()
    answered = serializers.BooleanField()


class CourseParticipationSerializer(_Counts):
    course = serializers.IntegerField(source="id")
    title = serializers.CharField()
    course_code = serializers.CharField()
    instructor_count = serializers.IntegerField()


class ParticipationSerializer(serializers.Serializer):
    survey = serializers.IntegerField()
    totals = _Counts()
    instructors = InstructorParticipationSerializer(many=True)
    courses = CourseParticipationSerializer(many=True)
    not_invited = serializers.ListField(child=serializers.CharField(), help_text=(
        "Names of the term's instructors who got no invitation (no email address when it opened, or added since)"))


class SurveyViewSet(_ReadViewSet):
    """Progress surveys (read-only; administrators open and close them on their pages)."""

    model = ProgressSurvey
    serializer_class = SurveySerializer
    read_capability = "manage_data"
    selector, accessor, accessor_argument = survey_list, access_survey, "survey_id"

    @extend_schema(responses={200: ParticipationSerializer})
    @action(detail=True, methods=["get"])
    def participation(self, request, *args, **kwargs):
        """Invited, opened, answered, concerns and kudos per instructor and per course."""
        survey = self.get_object()
        participation = survey_participation(institution=self.institution, survey=survey)
        return Response(ParticipationSerializer({
            "survey": survey.pk, "totals": participation.totals, "instructors": participation.instructors,
            "courses": participation.courses, "not_invited": participation.not_invited}).data)
