"""Reads of courses, sections, terms, instructors and enrolments, always for one institution."""

from __future__ import annotations

from django.db.models import Count, Prefetch, QuerySet

from institutions.access import object_for_input_id
from institutions.models import Institution

from .models import (
    AcademicSession,
    Course,
    Enrolment,
    Instructor,
    RosterImport,
    Section,
    SectionTerm,
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
    return RosterImport.objects.for_institution(institution).select_related("uploaded_by", "committed_by").defer(
        "pending").order_by("-created_at", "-id")


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
    return object_for_input_id(RosterImport.objects.for_institution(institution), roster_import_id)
