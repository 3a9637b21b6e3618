"""The demo's closed loop this term: a roster, a progress survey, and the alerts it raised.

Built after the replayed term (``demo.history``), with the product's own services, so that what
the pages show is what the product does: a term with courses and sections per program, synthetic
instructors (names from the institution's name lists, addresses at the institution's demo domain)
teaching them, every current student enrolled in two sections of their program; an office
("Tutoring centre") that a rule sends low-grade concerns to; a progress survey opened six days
ago and open for another eight, which about two thirds of the instructors have answered. An
instructor's answer follows a documented rule (docs/demo.md, "The closed loop"): a flagged
student in their section is marked with a concern with probability 0.3 (its type drawn from the
student's situation), a student at low risk gets kudos with probability 0.04. The concerns become
alerts through the real receivers (routed by the rules, notifications to the assignees); the
advisors have acknowledged about half and closed about a quarter with an outcome (the instructor's
close-the-loop email goes out as it would). Nobody holds a survey link: the invitations' secrets
are thrown away; "Send reminders" on the survey page mails fresh links (to the console in the
demo, see the worker's log).
"""

from __future__ import annotations

import datetime
import secrets
from dataclasses import dataclass

from django.utils import timezone

from courses.models import (
    AcademicSession,
    ConcernKind,
    ConcernType,
    Course,
    Enrolment,
    Instructor,
    ProgressSurvey,
    Section,
    SectionTerm,
    SurveyInvitation,
    TeachingAssignment,
)
from courses.surveys import RosterAnswer, survey_marks_save, survey_token_hash
from institutions.models import Institution, Membership
from interventions.alerts import alert_acknowledge, alert_close, alert_rule_save, office_member_add, office_save
from interventions.models import Alert, AlertOutcome
from predictions.models import LatestPrediction
from students.selectors import current_students

from .names import seeded_random, synthetic_name

SECTIONS_PER_PROGRAM = 2
ANSWER_SHARE = 0.65
CONCERN_CHANCE = 0.3
KUDOS_CHANCE = 0.04
COMMENTS = {
    "attendance": "Has missed most classes since week 3.",
    "low_grades": "Failed the first two assessments.",
    "missing_work": "Two assignments not handed in.",
    "participation": "Rarely takes part; seems disengaged.",
    "kudos": "Excellent work on the project, well done.",
}
OUTCOMES = (AlertOutcome.SUPPORT_ARRANGED, AlertOutcome.RESOLVED, AlertOutcome.UNREACHABLE)


@dataclass
class DemoCare:
    sections: int
    instructors: int
    answered: int
    alerts: int
    acknowledged: int
    closed: int
    kudos: int


def _concern_for(factors: list[dict], rng) -> str:
    """The concern an instructor would see first, from what drives the student's risk."""
    keys = " ".join(str(f.get("feature", "")) for f in factors[:3])
    if "approved" in keys or "grade" in keys:
        return rng.choice(("low_grades", "missing_work"))
    if "evaluations" in keys or "enrolled" in keys:
        return "attendance"
    return rng.choice(("attendance", "low_grades", "missing_work", "participation"))


def build_closing_the_loop(*, institution: Institution, language: str, email_domain: str, advisors: list, admin,
                           today: datetime.date) -> DemoCare:
    """Call inside the institution's scope, after its current students are scored."""
    now = timezone.now()
    term = AcademicSession.objects.create(
        source_id="demo-term-now", title=f"Semester {today:%Y}-{(today.month - 1) // 6 + 1}", kind="semester",
        start_date=today - datetime.timedelta(days=14 + 35), end_date=today + datetime.timedelta(days=90),
    )
    current = list(current_students(institution=institution).order_by("pk"))
    programs = sorted({student.program for student in current if student.program})
    sections, instructors, teaching = [], [], []
    for p, program in enumerate(programs):
        course = Course.objects.create(source_id=f"demo-course-{p}", title=program, course_code=f"P{p + 1:02d}",
                                       org_name=institution.name)
        for s in range(SECTIONS_PER_PROGRAM):
            number = len(sections)
            rng = seeded_random("instructor", institution.slug, number)
            name = synthetic_name(language=language, seed=f"{institution.slug}-instructor-{number}",
                                  female=rng.random() < 0.5)
            first, last = name.split()[0], name.split()[-1]
            instructors.append(Instructor(institution=institution, source_id=f"demo-instructor-{number}",
                                          given_name=first, family_name=" ".join(name.split()[1:]),
                                          email=f"{first.lower()}.{last.lower()}.{number}@staff.{email_domain}"))
            sections.append(Section(institution=institution, source_id=f"demo-section-{number}", course=course,
                                    title=f"{program}, group {chr(65 + s)}", class_code=f"P{p + 1:02d}-{chr(65 + s)}",
                                    class_type="scheduled"))
    Instructor.objects.bulk_create(instructors)
    Section.objects.bulk_create(sections)
    SectionTerm.objects.bulk_create([SectionTerm(institution=institution, section=section, term=term)
                                     for section in sections])
    for number, (section, instructor) in enumerate(zip(sections, instructors, strict=True)):
        teaching.append(TeachingAssignment(institution=institution, source_id=f"demo-teaching-{number}",
                                           section=section, instructor=instructor, primary=True))
    TeachingAssignment.objects.bulk_create(teaching)
    by_program = {program: sections[i * SECTIONS_PER_PROGRAM:(i + 1) * SECTIONS_PER_PROGRAM]
                  for i, program in enumerate(programs)}
    enrolments = [Enrolment(institution=institution, source_id=f"demo-enrolment-{student.pk}-{section.pk}",
                            section=section, student=student)
                  for student in current if student.program for section in by_program[student.program]]
    Enrolment.objects.bulk_create(enrolments, batch_size=2000)

    # Low grades go to the tutoring centre, whose members are the advisors; the rest to the advisor.
    types = {t.key: t for t in ConcernType.objects.all()}
    office = office_save(institution=institution, office=None,
                         data={"name": "Tutoring centre", "email": f"tutoring@{email_domain}",
                               "description": "Peer tutoring and study skills"})
    for advisor in advisors:
        office_member_add(institution=institution, office=office, user_id=advisor.pk)
    if "low_grades" in types:
        alert_rule_save(institution=institution, rule=None,
                        data={"concern_type": types["low_grades"].pk, "program": "", "target": "office",
                              "office": office.pk, "is_active": True})

    offered = [t.pk for t in types.values() if t.is_active]
    survey = ProgressSurvey.objects.create(
        term=term, title="Mid-semester progress check", opens_at=now - datetime.timedelta(days=6),
        closes_at=now + datetime.timedelta(days=8), concern_type_ids=offered, opened_by=admin,
        message="Please mark any student you are worried about, and any who deserve a word of praise.",
    )
    invitations = SurveyInvitation.objects.bulk_create([
        SurveyInvitation(institution=institution, survey=survey, instructor=instructor,
                         token_hash=survey_token_hash(f"{institution.pk}.{secrets.token_urlsafe(32)}"),
                         sent_at=survey.opens_at)
        for instructor in instructors])
    risk = {row.student_id: row for row in LatestPrediction.objects.select_related("prediction")}
    roster: dict[int, list[int]] = {}
    for enrolment in enrolments:
        roster.setdefault(enrolment.section_id, []).append(enrolment.student_id)
    answered = kudos = 0
    for invitation, section in zip(invitations, sections, strict=True):
        rng = seeded_random("survey", institution.slug, section.source_id)
        if rng.random() >= ANSWER_SHARE:
            continue
        answers = {}
        for student_id in roster.get(section.pk, []):
            row = risk.get(student_id)
            if row is None:
                continue
            if row.flagged and rng.random() < CONCERN_CHANCE:
                key = _concern_for(row.prediction.factors or [], rng)
                answers[student_id] = RosterAnswer(type_ids={types[key].pk}, comment=COMMENTS[key])
            elif row.risk < 0.1 and rng.random() < KUDOS_CHANCE and "kudos" in types:
                answers[student_id] = RosterAnswer(type_ids={types["kudos"].pk}, comment=COMMENTS["kudos"])
                kudos += 1
        survey_marks_save(invitation=invitation, section=section, answers=answers)
        answered += 1

    members = {m.user_id: m for m in Membership.objects.select_related("institution")}
    alerts = list(Alert.objects.filter(concern_type__kind=ConcernKind.CONCERN).order_by("pk"))
    acknowledged = closed = 0
    for alert in alerts:
        rng = seeded_random("alert", institution.slug, alert.student_id, alert.concern_type_id)
        worker = alert.assigned_user or (advisors[0] if alert.assigned_office_id else None)
        membership = members.get(worker.pk) if worker else None
        if membership is None or rng.random() >= 0.5:
            continue
        alert = alert_acknowledge(institution=institution, alert=alert, user=worker, membership=membership)
        acknowledged += 1
        if rng.random() < 0.5:
            alert_close(institution=institution, alert=alert, user=worker, membership=membership,
                        outcome=rng.choice(OUTCOMES), notes="Met the student and agreed a plan.")
            closed += 1
    return DemoCare(sections=len(sections), instructors=len(instructors), answered=answered, alerts=len(alerts),
                    acknowledged=acknowledged, closed=closed, kudos=kudos)

