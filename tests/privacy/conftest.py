"""A student with data in every table that can hold something about them, in institution A."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from audit.models import AccessAction
from audit.services import Accessor, access_record
from institutions.models import WebhookDelivery
from institutions.scoping import institution_scope
from institutions.webhooks import webhook_endpoint_create
from interventions.models import RiskSnapshot
from interventions.services import (
    access_grant_create,
    flag_raise,
    intervention_create,
    intervention_type_create_defaults,
    risk_snapshot_record,
)
from predictions.models import PredictionSettings
from students.models import ActivityEvent, Student
from tests.predictions.conftest import add_population, fast_settings, rescore
from tests.students.test_import_pages import import_through_pages

EXTERNAL_ID = "ZQX-ERASE-7731"
NAME = "Quillon Vexmarrow"
EMAIL = "quillon.vexmarrow@example.org"
NEEDLES = (EXTERNAL_ID, NAME, EMAIL)

IMPORT_CSV = (
    "student_id,name,email,units_approved,tuition_up_to_date,gender,outcome\r\n"
    f"{EXTERNAL_ID},{NAME},{EMAIL},4,no,m,Enrolled\r\n"
    "KEEP-0001,Ann Keeper,ann.keeper@example.edu,20,yes,f,Enrolled\r\n"
)


@dataclass
class Subject:
    student: Student
    other: Student


def build_subject(tenant, client, capture) -> Subject:
    """Everything a student leaves behind, made the way the platform makes it: a real import
    (report, change list, data-change history), a trained model's scoring (predictions,
    explanations, the latest standing, risk snapshot, webhooks), interventions and flags through
    their services, LMS activity, an access log entry and a staff admin log entry."""
    institution = tenant.institution
    add_population(institution, known=200, current=20)
    fast_settings(institution)
    import_through_pages(client, tenant, "subject.csv", IMPORT_CSV.encode(), capture)
    student = Student.objects.for_institution(institution).get(external_id=EXTERNAL_ID)
    other = Student.objects.for_institution(institution).get(external_id="KEEP-0001")
    webhook_endpoint_create(institution=institution, url="http://127.0.0.1:9/hook",
                            events=["student.flagged", "job.finished"])
    PredictionSettings.objects.for_institution(institution).update(flag_rule="threshold", flag_threshold=0.01)
    with institution_scope(institution):
        from predictions.services.training import model_version_train

        model_version_train(institution=institution)
        job, _outcome = rescore(tenant, full=True)
        risk_snapshot_record(institution=institution, job=job)  # what the rescore task does after scoring
        intervention_type_create_defaults(institution=institution)
        from interventions.models import InterventionType

        meeting = InterventionType.objects.for_institution(institution).get(key="meeting")
        intervention_create(institution=institution, student=student, intervention_type=meeting,
                            date=datetime.date.today(), author=tenant.advisor,
                            notes=f"{NAME} ({EMAIL}) asked about fees.", confidential=True)
        # Another student's record mentions them: cleaned, not deleted.
        intervention_create(institution=institution, student=other, intervention_type=meeting,
                            date=datetime.date.today(), author=tenant.advisor,
                            notes=f"Came with {NAME} to the meeting; discussed the timetable.")
        flag_raise(institution=institution, student=student, reason=f"{NAME} missed three tutorials",
                   raised_by=tenant.advisor)
        access_grant_create(institution=institution, student=student, user_id=tenant.advisor.pk,
                            reason=f"Covering for {NAME}'s advisor", granted_by=tenant.admin)
        ActivityEvent.objects.for_institution(institution).create(
            student=student, occurred_at=timezone.now(), kind="view", course="MATH101", count=3, event_id="lms-1")
        access_record(institution=institution, accessor=Accessor(name=tenant.admin.username, user_id=tenant.admin.pk),
                      action=AccessAction.PROFILE_VIEW, student_id=student.pk)
        _survey_mark(tenant, student)
    LogEntry.objects.create(user=tenant.admin, content_type=ContentType.objects.get_for_model(Student),
                            object_id=str(student.pk), object_repr=NAME, action_flag=CHANGE, change_message="[]")
    assert WebhookDelivery.objects.for_institution(institution).filter(payload__student_id=student.pk).exists()
    assert RiskSnapshot.objects.for_institution(institution).filter(flagged_student_ids__contains=[student.pk]).exists()
    return Subject(student=student, other=other)


def _survey_mark(tenant, student) -> None:
    """An instructor marks the student in a progress survey, with a comment naming them."""
    from courses.models import AcademicSession, Course, Enrolment, Instructor, Section, SectionTerm, TeachingAssignment
    from courses.surveys import RosterAnswer, concern_type_create_defaults, survey_marks_save
    from tests.courses.survey_helpers import open_survey

    institution = tenant.institution
    concern_type_create_defaults(institution=institution)
    term = AcademicSession.objects.create(source_id="t-1", title="Term", kind="term",
                                          start_date=datetime.date(2026, 9, 1), end_date=datetime.date(2027, 1, 31))
    section = Section.objects.create(source_id="s-1", title="Algebra", course=Course.objects.create(
        source_id="c-1", title="Algebra"))
    SectionTerm.objects.create(section=section, term=term)
    instructor = Instructor.objects.create(source_id="u-1", given_name="Ida", email="ida@example.edu")
    TeachingAssignment.objects.create(source_id="ta-1", section=section, instructor=instructor)
    Enrolment.objects.create(source_id="e-1", section=section, student=student)
    from courses.models import ConcernType

    world = type("World", (), {"institution": institution, "tenant": tenant, "term": term,
                               "types": list(ConcernType.objects.order_by("position"))})
    survey = open_survey(world)
    invitation = survey.invitations.get()
    survey_marks_save(invitation=invitation, section=section, answers={
        student.pk: RosterAnswer(type_ids={world.types[0].pk}, comment=f"{NAME} has missed three labs")})


@pytest.fixture
def subject(tenants, client, django_capture_on_commit_callbacks):
    a, _b = tenants
    return build_subject(a, client, django_capture_on_commit_callbacks)
