"""Reads of courses, sections, terms, instructors and enrolments, always for one institution."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, Prefetch, Q, QuerySet

from institutions.access import object_for_input_id
from institutions.models import Institution

from .models import (
    AcademicSession,
    ConcernKind,
    ConcernType,
    Course,
    Enrolment,
    Instructor,
    ProgressSurvey,
    RosterImport,
    Section,
    SectionTerm,
    SurveyInvitation,
    SurveyMark,
    TeachingAssignment,
)


def academic_session_list(*, institution: Institution) -> QuerySet[AcademicSession]:
    return AcademicSession.objects.for_institution(institution).order_by("-start_date", "title", "id")


def course_list(*, institution: Institution) -> QuerySet[Course]:
    return Course.objects.for_institution(institution).annotate(section_count=Count("sections")).order_by(
        "course_code", "title", "id")


def section_list(*, institution: Institution) -> QuerySet[Section]:
    """Sections with their course, terms and instructors (a fixed number of queries per page)."""
    return (
        Section.objects.for_institution(institution).select_related("course")
        .prefetch_related(
            Prefetch("section_terms", queryset=SectionTerm.objects.for_institution(institution)
                     .select_related("term").order_by("term__start_date", "term_id")),
            Prefetch("teaching", queryset=TeachingAssignment.objects.for_institution(institution)
                     .select_related("instructor").order_by("-primary", "instructor_id")),
        )
        .annotate(enrolment_count=Count("enrolments", distinct=True))
        .order_by("class_code", "title", "id")
    )


def instructor_list(*, institution: Institution) -> QuerySet[Instructor]:
    return Instructor.objects.for_institution(institution).prefetch_related(
        Prefetch("teaching", queryset=TeachingAssignment.objects.for_institution(institution)
                 .select_related("section").order_by("section__class_code", "section_id")),
    ).order_by("family_name", "given_name", "id")


def enrolment_list(*, institution: Institution) -> QuerySet[Enrolment]:
    return Enrolment.objects.for_institution(institution).select_related("section", "student").order_by("id")


def roster_import_list(*, institution: Institution) -> QuerySet[RosterImport]:
    return RosterImport.objects.for_institution(institution).select_related(
        "uploaded_by", "committed_by", "preview_job", "commit_job").order_by("-created_at", "-id")


def access_course(*, institution: Institution, course_id) -> Course:
    """The institution's course with ``course_id`` from input; another institution's, a missing one
    and a malformed id raise the same Http404 (likewise for the other ``access_*`` here)."""
    return object_for_input_id(course_list(institution=institution), course_id)


def access_section(*, institution: Institution, section_id) -> Section:
    return object_for_input_id(section_list(institution=institution), section_id)


def access_instructor(*, institution: Institution, instructor_id) -> Instructor:
    return object_for_input_id(instructor_list(institution=institution), instructor_id)


def access_enrolment(*, institution: Institution, enrolment_id) -> Enrolment:
    return object_for_input_id(enrolment_list(institution=institution), enrolment_id)


def access_academic_session(*, institution: Institution, academic_session_id) -> AcademicSession:
    return object_for_input_id(academic_session_list(institution=institution), academic_session_id)


def access_roster_import(*, institution: Institution, roster_import_id) -> RosterImport:
    return object_for_input_id(RosterImport.objects.for_institution(institution).select_related(
        "preview_job", "commit_job"), roster_import_id)


# --- Progress surveys ------------------------------------------------------------------------------------------

def concern_type_list(*, institution: Institution, active_only: bool = False) -> QuerySet[ConcernType]:
    types = ConcernType.objects.for_institution(institution).order_by("position", "label", "id")
    return types.filter(is_active=True) if active_only else types


def access_concern_type(*, institution: Institution, concern_type_id) -> ConcernType:
    return object_for_input_id(concern_type_list(institution=institution), concern_type_id)


def survey_list(*, institution: Institution) -> QuerySet[ProgressSurvey]:
    """Surveys with their term and how many instructors were invited and answered (one query)."""
    return (ProgressSurvey.objects.for_institution(institution)
            .select_related("term", "opened_by", "closed_by", "last_reminded_by")
            .annotate(invited_count=Count("invitations", distinct=True),
                      answered_count=Count("invitations", filter=Q(invitations__answered_at__isnull=False),
                                           distinct=True))
            .order_by("-opens_at", "-id"))


def access_survey(*, institution: Institution, survey_id) -> ProgressSurvey:
    return object_for_input_id(survey_list(institution=institution), survey_id)


def survey_concern_types(*, institution: Institution, survey: ProgressSurvey) -> list[ConcernType]:
    """The types the survey offers, in the institution's order (a type deactivated since stays)."""
    return list(ConcernType.objects.for_institution(institution).filter(pk__in=survey.concern_type_ids or [])
                .order_by("position", "label", "id"))


@dataclass
class RosterSection:
    section: Section
    enrolments: list = field(default_factory=list)
    # {(student_id, concern_type_id): SurveyMark}
    marks: dict = field(default_factory=dict)

    def rows(self, types):
        """Per student: the student, each type with whether it is ticked, and the comment."""
        out = []
        for enrolment in self.enrolments:
            student = enrolment.student
            ticked = [(t, (student.pk, t.pk) in self.marks) for t in types]
            comment = next((self.marks[(student.pk, t.pk)].comment for t in types
                            if (student.pk, t.pk) in self.marks), "")
            out.append({"student": student, "types": ticked, "comment": comment})
        return out


def instructor_survey_roster(*, invitation: SurveyInvitation) -> list[RosterSection]:
    """The instructor's own sections of the survey's term, each with its enrolled students and the
    marks already saved (three queries, whatever the size)."""
    institution = invitation.institution
    term_sections = SectionTerm.objects.for_institution(institution).filter(
        term_id=invitation.survey.term_id).values("section_id")
    sections = list(Section.objects.for_institution(institution).select_related("course").filter(
        pk__in=term_sections, teaching__instructor_id=invitation.instructor_id).distinct()
        .order_by("class_code", "title", "id"))
    by_id = {s.pk: RosterSection(section=s) for s in sections}
    for enrolment in (Enrolment.objects.for_institution(institution).filter(section_id__in=list(by_id))
                      .select_related("student").order_by("student__name", "student__external_id", "id")):
        by_id[enrolment.section_id].enrolments.append(enrolment)
    for mark in SurveyMark.objects.for_institution(institution).filter(invitation=invitation,
                                                                         section_id__in=list(by_id)):
        by_id[mark.section_id].marks[(mark.student_id, mark.concern_type_id)] = mark
    return list(by_id.values())


@dataclass
class Participation:
    instructors: list[dict]
    courses: list[dict]
    totals: dict
    # Instructors of the term who got no invitation (no email address when it opened, or added since).
    not_invited: list[str] = field(default_factory=list)


def survey_participation(*, institution: Institution, survey: ProgressSurvey) -> Participation:
    """Per instructor and per course: invited, opened, answered, concerns and kudos marked.

    Four queries, whatever the number of instructors, sections and marks."""
    invitations = list(SurveyInvitation.objects.for_institution(institution).filter(survey=survey)
                       .select_related("instructor")
                       .annotate(concerns=Count("marks", filter=Q(marks__concern_type__kind=ConcernKind.CONCERN)),
                                 kudos=Count("marks", filter=Q(marks__concern_type__kind=ConcernKind.KUDOS)))
                       .order_by("instructor__family_name", "instructor__given_name", "instructor_id"))
    instructors = [{"invitation": inv, "instructor": inv.instructor, "invited": inv.sent_at is not None,
                    "opened": inv.first_opened_at is not None, "answered": inv.answered_at is not None,
                    "concerns": inv.concerns, "kudos": inv.kudos} for inv in invitations]
    by_instructor = {row["instructor"].pk: row for row in instructors}
    term_sections = SectionTerm.objects.for_institution(institution).filter(term_id=survey.term_id).values(
        "section_id")
    courses: dict[int, dict] = {}
    teaching = (TeachingAssignment.objects.for_institution(institution).filter(section_id__in=term_sections)
                .values("section__course_id", "section__course__title", "section__course__course_code",
                        "instructor_id", "instructor__given_name", "instructor__family_name",
                        "instructor__source_id").distinct())
    uninvited: dict[int, str] = {}
    for row in teaching:
        if row["instructor_id"] not in by_instructor:
            uninvited[row["instructor_id"]] = Instructor(
                given_name=row["instructor__given_name"], family_name=row["instructor__family_name"],
                source_id=row["instructor__source_id"]).display_name
        course = courses.setdefault(row["section__course_id"], {
            "id": row["section__course_id"], "title": row["section__course__title"],
            "course_code": row["section__course__course_code"], "instructors": set(), "invited": 0, "opened": 0,
            "answered": 0, "concerns": 0, "kudos": 0})
        if row["instructor_id"] in course["instructors"]:
            continue
        course["instructors"].add(row["instructor_id"])
        invited = by_instructor.get(row["instructor_id"])
        if invited is not None:
            course["invited"] += 1
            course["opened"] += invited["opened"]
            course["answered"] += invited["answered"]
    marks = (SurveyMark.objects.for_institution(institution).filter(invitation__survey=survey)
             .values("section__course_id", "concern_type__kind").annotate(n=Count("id")))
    for row in marks:
        course = courses.get(row["section__course_id"])
        if course is not None:
            course["concerns" if row["concern_type__kind"] == ConcernKind.CONCERN else "kudos"] += row["n"]
    course_rows = sorted(courses.values(), key=lambda c: (c["course_code"], c["title"], c["id"]))
    for course in course_rows:
        course["instructor_count"] = len(course.pop("instructors"))
    totals = {key: sum(int(row[key]) for row in instructors)
              for key in ("invited", "opened", "answered", "concerns", "kudos")}
    return Participation(instructors=instructors, courses=course_rows, totals=totals,
                         not_invited=sorted(uninvited.values()))
