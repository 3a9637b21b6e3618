"""Routing rules, the survey receiver and the services that work an alert, in both institutions."""

import pytest
from django.core import mail

from institutions.scoping import institution_scope
from interventions import alerts
from interventions.models import (
    Alert,
    AlertEvent,
    AlertEventKind,
    AlertOutcome,
    AlertRule,
    AlertSource,
    AlertStatus,
    RouteTarget,
)
from interventions.services import InterventionRuleError
from interventions.signals import alert_assigned, alert_closed

from .alerts_fixtures import save_marks

pytestmark = pytest.mark.django_db


def rule(t, **data):
    return alerts.alert_rule_save(institution=t.institution, rule=None, data=data)


def raise_one(t, student, concern=None, comment="Missed three classes"):
    (mark,), _ = save_marks(t, create=[(student, concern or t.attendance, comment)])
    return Alert.objects.for_institution(t.institution).get(survey_mark=mark)


def kinds(t, alert):
    return list(AlertEvent.objects.for_institution(t.institution).filter(alert=alert).values_list("kind", flat=True))


# --- routing ----------------------------------------------------------------------------------------

def test_without_rules_an_alert_goes_to_the_students_advisor(alert_world):
    a, b = alert_world
    alert = raise_one(a, a.students[0])
    assert alert.assigned_user == a.advisor and alert.assigned_office is None and alert.rule is None
    assert kinds(a, alert) == [AlertEventKind.RAISED, AlertEventKind.ROUTED]
    routed = AlertEvent.objects.for_institution(a.institution).get(alert=alert, kind=AlertEventKind.ROUTED)
    assert routed.to_user == a.advisor
    assert Alert.objects.for_institution(b.institution).count() == 0


def test_without_rules_or_advisor_it_waits_unassigned(alert_world):
    a, _b = alert_world
    alert = raise_one(a, a.students[1])
    assert alert.assigned_user is None and alert.assigned_office is None
    assert "unassigned" in AlertEvent.objects.for_institution(a.institution).get(
        alert=alert, kind=AlertEventKind.ROUTED).note


def test_the_first_matching_rule_by_concern_type_and_program_decides(alert_world):
    a, _b = alert_world
    by_program = rule(a, program="nursing", target=RouteTarget.USER, user=a.other_advisor.pk)
    by_type = rule(a, concern_type=a.grades.pk, target=RouteTarget.OFFICE, office=a.office.pk)
    # Nursing student, grades concern: the program rule comes first.
    assert raise_one(a, a.students[2], a.grades).assigned_user == a.other_advisor
    # Another student's grades concern: the office.
    other = raise_one(a, a.students[3], a.grades)
    assert other.assigned_office == a.office and other.assigned_user is None and other.rule == by_type
    # Attendance for a non-nursing student: no rule, the advisor.
    assert raise_one(a, a.students[4]).assigned_user == a.advisor
    # Reordered: the type rule now wins for the nursing student too.
    alerts.alert_rule_move(institution=a.institution, rule=by_type, up=True)
    decision = alerts.alert_route_decide(institution=a.institution, student=a.students[2], concern_type=a.grades)
    assert decision.office == a.office and decision.rule == by_type
    by_program.refresh_from_db()
    assert by_program.position == 1


def test_inactive_rules_and_rules_that_cannot_deliver_are_passed_over(alert_world):
    a, _b = alert_world
    rule(a, target=RouteTarget.OFFICE, office=a.office.pk, is_active=False)
    rule(a, target=RouteTarget.ADVISOR)  # students[1] has no advisor: passed over
    rule(a, target=RouteTarget.USER, user=a.tutor.pk)
    assert raise_one(a, a.students[1]).assigned_user == a.tutor
    assert raise_one(a, a.students[0]).assigned_user == a.advisor


def test_rule_targets_must_belong_to_the_institution(alert_world):
    a, b = alert_world
    with pytest.raises(InterventionRuleError) as person:
        rule(a, target=RouteTarget.USER, user=b.advisor.pk)
    assert person.value.errors == {"user": ["no such member in this institution"]}
    with pytest.raises(InterventionRuleError) as office:
        rule(a, target=RouteTarget.OFFICE, office=b.office.pk)
    assert office.value.errors == {"office": ["no such office in this institution"]}
    with pytest.raises(InterventionRuleError) as concern:
        rule(a, concern_type=b.attendance.pk, target=RouteTarget.ADVISOR)
    assert "concern_type" in concern.value.errors
    with pytest.raises(InterventionRuleError) as viewer:
        rule(a, target=RouteTarget.USER, user=a.viewer.pk)
    assert "cannot work alerts" in viewer.value.errors["user"][0]
    with pytest.raises(InterventionRuleError):
        rule(a, target=RouteTarget.USER)
    assert AlertRule.objects.for_institution(a.institution).count() == 0


def test_routing_tells_the_assignees_after_commit(alert_world, django_capture_on_commit_callbacks):
    a, _b = alert_world
    heard = []

    def receiver(sender, *, institution, alert, users, event, **kwargs):
        heard.append((institution.pk, alert.pk, [u.pk for u in users], event.kind))

    alert_assigned.connect(receiver)
    try:
        rule(a, concern_type=a.grades.pk, target=RouteTarget.OFFICE, office=a.office.pk)
        with django_capture_on_commit_callbacks(execute=True):
            alert = raise_one(a, a.students[3], a.grades)
        assert heard == [(a.institution.pk, alert.pk, [a.tutor.pk], AlertEventKind.ROUTED)]
        with django_capture_on_commit_callbacks(execute=True), institution_scope(a.institution):
            alerts.alert_refer(institution=a.institution, alert=alert, user=a.tutor, membership=_m(a, a.tutor),
                               to_user_id=a.other_advisor.pk, note="Needs a study plan")
        assert heard[-1] == (a.institution.pk, alert.pk, [a.other_advisor.pk], AlertEventKind.REFERRED)
    finally:
        alert_assigned.disconnect(receiver)


# --- the survey receiver ------------------------------------------------------------------------------

def test_concerns_become_alerts_and_kudos_do_not(alert_world):
    a, b = alert_world
    created, _ = save_marks(a, create=[(a.students[0], a.attendance, "Absent a lot"),
                                       (a.students[0], a.kudos, "Great lab work")])
    alert = Alert.objects.for_institution(a.institution).get()
    assert alert.survey_mark == created[0] and alert.source == AlertSource.SURVEY
    assert alert.raised_by_instructor == a.instructor and alert.section == a.section
    assert alert.comment == "Absent a lot" and alert.status == AlertStatus.OPEN
    assert Alert.objects.for_institution(b.institution).count() == 0


def test_a_changed_comment_updates_the_open_alert_with_a_note(alert_world):
    a, _b = alert_world
    (mark,), _ = save_marks(a, create=[(a.students[0], a.attendance, "Absent")])
    save_marks(a, update=[(mark, "Absent twice, and late")])
    alert = Alert.objects.for_institution(a.institution).get()
    assert alert.comment == "Absent twice, and late"
    note = AlertEvent.objects.for_institution(a.institution).get(alert=alert, kind=AlertEventKind.NOTE)
    assert "Absent twice, and late" in note.note and note.actor is None


def test_a_mark_taken_back_closes_an_untouched_alert_without_emailing(alert_world):
    a, _b = alert_world
    (mark,), _ = save_marks(a, create=[(a.students[0], a.attendance, "Absent")])
    save_marks(a, remove=[mark])
    alert = Alert.objects.for_institution(a.institution).get()
    assert alert.status == AlertStatus.CLOSED and alert.outcome == AlertOutcome.NO_ACTION
    assert alert.outcome_notes == alerts.WITHDRAWN_NOTE and alert.raiser_told_at is None
    assert mail.outbox == []


def test_a_mark_taken_back_after_someone_worked_it_leaves_the_alert(alert_world):
    a, _b = alert_world
    (mark,), _ = save_marks(a, create=[(a.students[0], a.attendance, "Absent")])
    alert = Alert.objects.for_institution(a.institution).get()
    with institution_scope(a.institution):
        alerts.alert_acknowledge(institution=a.institution, alert=alert, user=a.advisor,
                                 membership=_m(a, a.advisor))
    save_marks(a, remove=[mark])
    alert.refresh_from_db()
    assert alert.status == AlertStatus.ACKNOWLEDGED


# --- working an alert ------------------------------------------------------------------------------

def _m(t, user):
    from institutions.models import Membership

    return Membership.objects.for_institution(t.institution).select_related("institution").get(user=user)


def test_the_assignee_works_and_closes_and_the_instructor_is_told(alert_world, django_capture_on_commit_callbacks):
    a, _b = alert_world
    alert = raise_one(a, a.students[0], comment="Missed the midterm")
    closed = []

    def receiver(sender, *, institution, alert, event, **kwargs):
        closed.append((alert.pk, event.kind))

    alert_closed.connect(receiver)
    try:
        me = {"institution": a.institution, "user": a.advisor, "membership": _m(a, a.advisor)}
        with institution_scope(a.institution), django_capture_on_commit_callbacks(execute=True):
            alerts.alert_acknowledge(alert=alert, **me)
            alerts.alert_record_contact(alert=alert, note="Phoned; meeting on Monday", **me)
            alerts.alert_add_note(alert=alert, note="Family situation; confidential", **me)
            alerts.alert_close(alert=alert, outcome=AlertOutcome.SUPPORT_ARRANGED,
                               notes="Referred to counselling privately", **me)
    finally:
        alert_closed.disconnect(receiver)
    alert.refresh_from_db()
    assert alert.status == AlertStatus.CLOSED and alert.closed_by == a.advisor and alert.raiser_told_at is not None
    assert kinds(a, alert) == ["raised", "routed", "acknowledged", "contacted", "note", "closed", "raiser_told"]
    actors = dict(AlertEvent.objects.for_institution(a.institution).filter(alert=alert)
                  .values_list("kind", "actor_id"))
    assert actors["acknowledged"] == actors["contacted"] == actors["closed"] == a.advisor.pk
    assert closed == [(alert.pk, "closed")]
    (message,) = mail.outbox
    assert message.to == ["ines@alpha.example.edu"]
    body = message.subject + message.body
    assert a.students[0].display_name in body and "Chemistry alpha" in body and "Support arranged" in body
    for secret in ("counselling", "Family", "Phoned", "Missed the midterm"):
        assert secret not in body
    assert "beta" not in body.lower()


@pytest.mark.parametrize("who", ["other_advisor", "viewer"])
def test_others_cannot_act(alert_world, who):
    a, _b = alert_world
    alert = raise_one(a, a.students[0])
    user = getattr(a, who)
    with institution_scope(a.institution):
        for act in (lambda **c: alerts.alert_acknowledge(**c), lambda **c: alerts.alert_add_note(note="x", **c),
                    lambda **c: alerts.alert_close(outcome="resolved", **c),
                    lambda **c: alerts.alert_refer(to_user_id=user.pk, **c)):
            with pytest.raises(InterventionRuleError):
                act(institution=a.institution, alert=alert, user=user, membership=_m(a, user))
    alert.refresh_from_db()
    assert alert.status == AlertStatus.OPEN and kinds(a, alert) == ["raised", "routed"]


def test_office_members_and_administrators_act_on_office_alerts(alert_world):
    a, _b = alert_world
    rule(a, target=RouteTarget.OFFICE, office=a.office.pk)
    alert = raise_one(a, a.students[0])
    with institution_scope(a.institution):
        with pytest.raises(InterventionRuleError):  # the student's advisor is not in the office
            alerts.alert_acknowledge(institution=a.institution, alert=alert, user=a.advisor,
                                     membership=_m(a, a.advisor))
        alerts.alert_acknowledge(institution=a.institution, alert=alert, user=a.tutor, membership=_m(a, a.tutor))
        alerts.alert_add_note(institution=a.institution, alert=alert, user=a.admin, membership=_m(a, a.admin),
                              note="Checked by the admin")


def test_referral_targets_must_be_of_the_institution_and_closed_alerts_stay_closed(alert_world):
    a, b = alert_world
    alert = raise_one(a, a.students[0])
    me = {"institution": a.institution, "user": a.advisor, "membership": _m(a, a.advisor)}
    with institution_scope(a.institution):
        with pytest.raises(InterventionRuleError) as foreign_office:
            alerts.alert_refer(alert=alert, to_office_id=b.office.pk, **me)
        assert foreign_office.value.errors == {"to_office": ["no such office in this institution"]}
        with pytest.raises(InterventionRuleError):
            alerts.alert_refer(alert=alert, to_user_id=b.advisor.pk, **me)
        with pytest.raises(InterventionRuleError):
            alerts.alert_refer(alert=alert, **me)
        with pytest.raises(InterventionRuleError):
            alerts.alert_close(alert=alert, outcome="nonsense", **me)
        alerts.alert_close(alert=alert, outcome=AlertOutcome.RESOLVED, **me)
        with pytest.raises(InterventionRuleError) as again:
            alerts.alert_close(alert=alert, outcome=AlertOutcome.RESOLVED, **me)
        assert again.value.errors == {"status": ["this alert is already closed"]}
    assert kinds(a, alert)[-1] == "raiser_told"


def test_an_instructor_without_email_is_not_told(alert_world):
    a, _b = alert_world
    a.instructor.email = ""
    a.instructor.save(update_fields=["email"])
    alert = raise_one(a, a.students[0])
    with institution_scope(a.institution):
        alerts.alert_close(institution=a.institution, alert=alert, user=a.advisor, membership=_m(a, a.advisor),
                           outcome=AlertOutcome.RESOLVED)
    alert.refresh_from_db()
    assert alert.raiser_told_at is None and "raiser_told" not in kinds(a, alert) and mail.outbox == []


def test_staff_raise_alerts_routed_the_same_way(alert_world):
    a, b = alert_world
    rule(a, concern_type=a.grades.pk, target=RouteTarget.OFFICE, office=a.office.pk)
    with institution_scope(a.institution):
        alert = alerts.alert_raise_by_staff(institution=a.institution, student=a.students[0],
                                            concern_type_id=a.grades.pk, comment="Failing quizzes", user=a.advisor)
        assert alert.source == AlertSource.STAFF and alert.raised_by_user == a.advisor
        assert alert.assigned_office == a.office
        with pytest.raises(InterventionRuleError):
            alerts.alert_raise_by_staff(institution=a.institution, student=a.students[0],
                                        concern_type_id=b.grades.pk, comment="x", user=a.advisor)
        with pytest.raises(InterventionRuleError):
            alerts.alert_raise_by_staff(institution=a.institution, student=a.students[0],
                                        concern_type_id=a.kudos.pk, comment="x", user=a.advisor)
        with pytest.raises(InterventionRuleError):
            alerts.alert_raise_by_staff(institution=a.institution, student=a.students[0],
                                        concern_type_id=a.grades.pk, comment="  ", user=a.advisor)


# --- through the courses app's own save ----------------------------------------------------------------

def test_the_courses_apps_roster_save_raises_updates_and_withdraws_alerts(alert_world):
    from courses.surveys import RosterAnswer, survey_marks_save

    a, b = alert_world
    student = a.students[0]

    def save(answers):
        with institution_scope(a.institution):
            return survey_marks_save(invitation=a.invitation, section=a.section, answers=answers)

    save({student.pk: RosterAnswer(type_ids={a.attendance.pk, a.kudos.pk}, comment="Often absent"),
          a.students[3].pk: RosterAnswer(type_ids={a.grades.pk}, comment="Failing")})
    found = Alert.objects.for_institution(a.institution)
    assert sorted(found.values_list("student_id", "concern_type_id")) == sorted(
        [(student.pk, a.attendance.pk), (a.students[3].pk, a.grades.pk)])
    save({student.pk: RosterAnswer(type_ids={a.attendance.pk}, comment="Absent every Monday"),
          a.students[3].pk: RosterAnswer(type_ids={a.grades.pk}, comment="Failing")})
    attendance = found.get(student=student)
    assert attendance.comment == "Absent every Monday" and attendance.status == AlertStatus.OPEN
    grades = found.get(student=a.students[3])
    with institution_scope(a.institution):
        alerts.alert_acknowledge(institution=a.institution, alert=grades, user=a.advisor,
                                 membership=_m(a, a.advisor))
    # Both marks taken back (the courses app deletes them before telling us).
    save({student.pk: RosterAnswer(), a.students[3].pk: RosterAnswer()})
    attendance.refresh_from_db()
    grades.refresh_from_db()
    assert attendance.status == AlertStatus.CLOSED and attendance.outcome == AlertOutcome.NO_ACTION
    assert attendance.survey_mark is None and attendance.outcome_notes == alerts.WITHDRAWN_NOTE
    assert grades.status == AlertStatus.ACKNOWLEDGED
    assert mail.outbox == []
    assert Alert.objects.for_institution(b.institution).count() == 0


def test_alert_webhooks_go_to_the_institutions_own_subscribers_without_comments_or_notes(alert_world):
    from institutions.models import WebhookDelivery
    from institutions.webhooks import webhook_endpoint_create

    a, b = alert_world
    for t in (a, b):
        webhook_endpoint_create(institution=t.institution, url=f"https://hooks.{t.institution.slug}.example.edu/x",
                                events=["alert.created", "alert.closed"])
    alert = raise_one(a, a.students[0], comment="Private remark")
    with institution_scope(a.institution):
        alerts.alert_close(institution=a.institution, alert=alert, user=a.advisor, membership=_m(a, a.advisor),
                           outcome=AlertOutcome.RESOLVED, notes="Private notes")
    deliveries = list(WebhookDelivery.objects.for_institution(a.institution).order_by("id"))
    assert [d.event for d in deliveries] == ["alert.created", "alert.closed"]
    assert deliveries[1].payload["alert"]["outcome"] == "resolved"
    assert deliveries[0].payload["external_id"] == a.students[0].external_id
    assert deliveries[0].payload["student_id"] == a.students[0].pk
    assert "Private" not in str([d.payload for d in deliveries])
    assert WebhookDelivery.objects.for_institution(b.institution).count() == 0
