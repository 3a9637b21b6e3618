"""Two institutions, each with concern types, a course section taught by an instructor who has an email
address, an open progress survey inviting them, an office with a member, and extra advisors.

Marks are saved the way the courses app saves them: rows written and ``survey_marks_saved`` sent inside
the same transaction (:func:`save_marks`), so the real receiver of interventions raises the alerts.
"""

from __future__ import annotations

import datetime
import hashlib

import pytest
from django.db import transaction
from django.utils import timezone

from courses.models import (
    AcademicSession,
    ConcernKind,
    ConcernType,
    Course,
    Instructor,
    ProgressSurvey,
    Section,
    SurveyInvitation,
    SurveyMark,
    TeachingAssignment,
)
from courses.signals import survey_marks_saved
from institutions.models import Role
from institutions.scoping import institution_scope
from interventions.models import Office, OfficeMember
from tests.factories import MembershipFactory, UserFactory


def _concern(institution, key, label, kind=ConcernKind.CONCERN) -> ConcernType:
    concern, _ = ConcernType.objects.for_institution(institution).get_or_create(
        key=key, defaults={"label": label, "kind": kind})
    return concern


def build_alert_world(t) -> None:
    inst = t.institution
    slug = inst.slug
    t.attendance = _concern(inst, "attendance", "Attendance")
    t.grades = _concern(inst, "low_grades", "Low grades")
    t.kudos = _concern(inst, "kudos", "Kudos: doing well", ConcernKind.KUDOS)
    today = datetime.date.today()
    term = AcademicSession.objects.for_institution(inst).create(
        source_id=f"{slug}-term", title="Spring", kind="term", start_date=today - datetime.timedelta(days=30),
        end_date=today + datetime.timedelta(days=60))
    t.course = Course.objects.for_institution(inst).create(source_id=f"{slug}-c1", title=f"Chemistry {slug}",
                                                           course_code="CHEM101")
    t.section = Section.objects.for_institution(inst).create(source_id=f"{slug}-s1", course=t.course,
                                                             title="Section A")
    t.instructor = Instructor.objects.for_institution(inst).create(
        source_id=f"{slug}-i1", given_name="Ines", family_name=f"Teacher{slug}", email=f"ines@{slug}.example.edu")
    TeachingAssignment.objects.for_institution(inst).create(source_id=f"{slug}-ta1", section=t.section,
                                                            instructor=t.instructor, primary=True)
    t.survey = ProgressSurvey.objects.for_institution(inst).create(
        term=term, title="Week 4 check-in", opens_at=timezone.now() - datetime.timedelta(days=1),
        closes_at=timezone.now() + datetime.timedelta(days=6),
        concern_type_ids=[t.attendance.pk, t.grades.pk, t.kudos.pk], opened_by=t.admin)
    t.invitation = SurveyInvitation.objects.for_institution(inst).create(
        survey=t.survey, instructor=t.instructor, token_hash=hashlib.sha256(f"{slug}-token".encode()).hexdigest())
    t.tutor = UserFactory(username=f"{slug}-tutor", first_name="Tess", last_name=f"Tutor{slug}")
    MembershipFactory(institution=inst, user=t.tutor, role=Role.ADVISOR)
    t.other_advisor = UserFactory(username=f"{slug}-other", first_name="Otto", last_name=f"Other{slug}")
    MembershipFactory(institution=inst, user=t.other_advisor, role=Role.ADVISOR)
    t.office = Office.objects.for_institution(inst).create(name="Tutoring centre", email=f"tutoring@{slug}.example.edu")
    OfficeMember.objects.for_institution(inst).create(office=t.office, user=t.tutor)
    # students[1] has no advisor; students[2] studies nursing, the others engineering.
    s = t.students
    for student in s:
        student.program = "Engineering"
        student.save(update_fields=["program"])
    s[1].advisor = None
    s[1].save(update_fields=["advisor"])
    s[2].program = "Nursing"
    s[2].save(update_fields=["program"])


def save_marks(t, *, create=(), update=(), remove=()) -> tuple[list[SurveyMark], list[SurveyMark]]:
    """As the courses app saves an instructor's roster: ``create`` is (student, concern_type, comment)
    triples, ``update`` (mark, new comment) pairs, ``remove`` marks to delete."""
    inst = t.institution
    with institution_scope(inst), transaction.atomic():
        created = [SurveyMark.objects.for_institution(inst).create(
            invitation=t.invitation, section=t.section, student=student, concern_type=concern, comment=comment)
            for student, concern, comment in create]
        updated = []
        for mark, comment in update:
            mark.comment = comment
            mark.save(update_fields=["comment", "updated_at"])
            updated.append(mark)
        removed = [mark.pk for mark in remove]
        survey_marks_saved.send(sender=SurveyMark, institution=inst, invitation=t.invitation, created=created,
                                updated=updated, removed=removed)
        SurveyMark.objects.for_institution(inst).filter(pk__in=removed).delete()
    return created, updated


@pytest.fixture
def alert_world(tenants):
    for t in tenants:
        build_alert_world(t)
    return tenants
