"""Survey worlds: each institution gets a term, courses, sections, instructors and enrolments of its
own students (the same source ids in both, so isolation never rests on distinct ids)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

import pytest
from django.utils import timezone

from courses.models import (
    AcademicSession,
    ConcernType,
    Course,
    Enrolment,
    Instructor,
    Section,
    SectionTerm,
    TeachingAssignment,
)
from courses.surveys import concern_type_create_defaults


@dataclass
class SurveyWorld:
    tenant: object
    term: AcademicSession
    other_term: AcademicSession
    courses: list = field(default_factory=list)
    sections: list = field(default_factory=list)
    instructors: list = field(default_factory=list)
    types: list = field(default_factory=list)

    @property
    def institution(self):
        return self.tenant.institution


def build_survey_world(tenant, *, sections_per_instructor: int = 1, instructors: int = 2,
                       students_per_section: int = 3, extra_students: int = 0) -> SurveyWorld:
    """Instructors 0..n-1 teach in ``term`` (all with an email but the last, who has none when
    there are three or more); one more instructor teaches only in ``other_term``."""
    from tests.factories import StudentFactory

    institution = tenant.institution
    concern_type_create_defaults(institution=institution)
    term = AcademicSession.objects.for_institution(institution).create(
        source_id="t-2026", title="Autumn 2026", kind="term", start_date=datetime.date(2026, 9, 1),
        end_date=datetime.date(2027, 1, 31))
    other = AcademicSession.objects.for_institution(institution).create(
        source_id="t-2025", title="Spring 2026", kind="term", start_date=datetime.date(2026, 2, 1),
        end_date=datetime.date(2026, 6, 30))
    world = SurveyWorld(tenant=tenant, term=term, other_term=other)
    world.types = list(ConcernType.objects.for_institution(institution).order_by("position"))
    students = list(tenant.students)
    for n in range(extra_students):
        students.append(StudentFactory(institution=institution, external_id=f"X{n:04d}", name=f"Extra {n}"))
    slug = institution.slug
    for i in range(instructors + 1):
        email = "" if (instructors >= 3 and i == instructors - 1) else f"teacher{i}@{slug}.example.edu"
        instructor = Instructor.objects.for_institution(institution).create(
            source_id=f"u-{i}", given_name=f"Teacher{i}", family_name=slug.capitalize(), email=email)
        world.instructors.append(instructor)
        course = Course.objects.for_institution(institution).create(source_id=f"c-{i}", title=f"Course {i}",
                                                                    course_code=f"C{i}")
        world.courses.append(course)
        for j in range(sections_per_instructor):
            section = Section.objects.for_institution(institution).create(
                source_id=f"s-{i}-{j}", course=course, title=f"Course {i}, section {j + 1}")
            world.sections.append(section)
            SectionTerm.objects.for_institution(institution).create(
                section=section, term=other if i == instructors else term)
            TeachingAssignment.objects.for_institution(institution).create(
                source_id=f"ta-{i}-{j}", section=section, instructor=instructor, primary=True)
            for k in range(students_per_section):
                student = students[(i * 2 + j + k) % len(students)]
                Enrolment.objects.for_institution(institution).create(
                    source_id=f"e-{i}-{j}-{k}", section=section, student=student)
    return world


@pytest.fixture
def worlds(tenants):
    a, b = tenants
    return build_survey_world(a, instructors=3), build_survey_world(b, instructors=3)


def window(days_before: float = 1, days_after: float = 7):
    now = timezone.now()
    return now - datetime.timedelta(days=days_before), now + datetime.timedelta(days=days_after)
