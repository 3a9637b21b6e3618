"""Alerts and referrals: writes (routing, raising, working, closing, telling the raiser), and the
offices and routing rules administrators keep.

An alert is one concern about one student. It is raised by an instructor's progress survey (the
receiver of ``courses.signals.survey_marks_saved`` below) or by staff on a student's profile, and
routed at once by :func:`alert_route`: the first active :class:`AlertRule` (by position) whose
concern type and program match decides where it goes (the student's advisor, a person, or an
office); with no matching rule it goes to the student's advisor, and with no advisor it waits,
unassigned, in the administrators' queue.

Whoever it is assigned to (the person, any member of the office) and administrators work it:
acknowledge, record contact, refer, add a note, close with an outcome. Every step is an
:class:`AlertEvent` with its actor. ``alert_assigned``/``alert_closed`` are sent once the change
commits (the workspace makes in-app notifications of them); an instructor who raised it is
emailed that it was handled, with the outcome's category only (never the notes).

Every function takes the institution explicitly and resolves ids from input inside it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Max, Q
from django.http import Http404
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext

from accounts.language import recipient_language
from courses.models import ConcernKind, ConcernType, SurveyMark
from institutions.access import access_member_user, id_from_input
from institutions.models import Institution, Membership
from institutions.webhooks import webhook_emit
from students.models import Student

from .models import (
    Alert,
    AlertEvent,
    AlertEventKind,
    AlertOutcome,
    AlertRule,
    AlertSource,
    AlertStatus,
    Office,
    OfficeMember,
    RouteTarget,
)
from .services import InterventionRuleError
from .signals import alert_assigned, alert_closed

User = get_user_model()

WITHDRAWN_NOTE = "Withdrawn by the instructor"
COMMENT_UPDATED_NOTE = "The instructor changed the comment"
# Who may work any alert and keep offices and rules: the institution's administrators.
ADMIN_CAPABILITY = "configure_interventions"


# --- offices ----------------------------------------------------------------------------------

def _alert_worker(institution: Institution, user_id, *, field: str):
    """A member of ``institution`` whose role works alerts (advisors, administrators), else a rule
    error naming ``field`` (another institution's user reads as "no such member")."""
    try:
        user = access_member_user(institution=institution, user_id=user_id)
    except Http404:
        raise InterventionRuleError({field: "no such member in this institution"}) from None
    if user is None:
        raise InterventionRuleError({field: "choose a member"})
    membership = Membership.objects.for_institution(institution).get(user=user)
    if not membership.can("edit_interventions"):
        raise InterventionRuleError({field: "this member's role cannot work alerts (viewers only read figures)"})
    return user


def _resolve_office(institution: Institution, office_id, *, field: str = "office", active: bool = True) -> Office:
    number = id_from_input(getattr(office_id, "pk", office_id))
    office = None if number is None else Office.objects.for_institution(institution).filter(pk=number).first()
    if office is None:
        raise InterventionRuleError({field: "no such office in this institution"})
    if active and not office.is_active:
        raise InterventionRuleError({field: "this office is inactive"})
    return office


def office_save(*, institution: Institution, office: Office | None, data: Mapping[str, Any]) -> Office:
    name = (data.get("name", office.name if office else "") or "").strip()
    if not name:
        raise InterventionRuleError({"name": "give the office a name"})
    clash = Office.objects.for_institution(institution).filter(name__iexact=name)
    if office is not None:
        if office.institution_id != institution.pk:
            raise Http404("Not found.")
        clash = clash.exclude(pk=office.pk)
    if clash.exists():
        raise InterventionRuleError({"name": "an office with this name already exists"})
    if office is None:
        office = Office(institution=institution)
    office.name = name
    for field in ("email", "description", "is_active"):
        if field in data:
            value = data[field]
            setattr(office, field, value.strip() if isinstance(value, str) else value)
    office.save()
    return office


def office_member_add(*, institution: Institution, office: Office, user_id) -> OfficeMember:
    if office.institution_id != institution.pk:
        raise Http404("Not found.")
    user = _alert_worker(institution, user_id, field="user")
    members = OfficeMember.objects.for_institution(institution)
    if members.filter(office=office, user=user).exists():
        raise InterventionRuleError({"user": "already a member of this office"})
    return members.create(office=office, user=user)


def office_member_remove(*, institution: Institution, office: Office, user_id) -> None:
    if office.institution_id != institution.pk:
        raise Http404("Not found.")
    number = id_from_input(user_id)
    deleted, _ = OfficeMember.objects.for_institution(institution).filter(office=office, user_id=number).delete() \
        if number is not None else (0, None)
    if not deleted:
        raise InterventionRuleError({"user": "not a member of this office"})


# --- routing rules ----------------------------------------------------------------------------

def _clean_rule(institution: Institution, data: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a rule from ``data``, checked: ids resolved inside the institution, the target's
    person or office set and the other one empty."""
    target = data.get("target") or RouteTarget.ADVISOR
    if target not in RouteTarget.values:
        raise InterventionRuleError({"target": "choose the advisor, a person or an office"})
    concern_type = None
    if data.get("concern_type") not in (None, ""):
        number = id_from_input(getattr(data["concern_type"], "pk", data["concern_type"]))
        concern_type = None if number is None else ConcernType.objects.for_institution(institution).filter(
            pk=number, kind=ConcernKind.CONCERN).first()
        if concern_type is None:
            raise InterventionRuleError({"concern_type": "no such concern type in this institution"})
    cleaned = {"target": target, "concern_type": concern_type, "program": (data.get("program") or "").strip(),
               "user": None, "office": None, "is_active": bool(data.get("is_active", True))}
    if target == RouteTarget.USER:
        if data.get("user") in (None, ""):
            raise InterventionRuleError({"user": "choose the person who takes these alerts"})
        cleaned["user"] = _alert_worker(institution, getattr(data["user"], "pk", data["user"]), field="user")
    elif target == RouteTarget.OFFICE:
        if data.get("office") in (None, ""):
            raise InterventionRuleError({"office": "choose the office that takes these alerts"})
        cleaned["office"] = _resolve_office(institution, data["office"])
    return cleaned


def alert_rule_save(*, institution: Institution, rule: AlertRule | None, data: Mapping[str, Any]) -> AlertRule:
    """Create (at the end of the order) or change a routing rule."""
    cleaned = _clean_rule(institution, data)
    rules = AlertRule.objects.for_institution(institution)
    if rule is None:
        last = rules.aggregate(last=Max("position"))["last"]
        rule = AlertRule(institution=institution, position=0 if last is None else last + 1)
    elif rule.institution_id != institution.pk:
        raise Http404("Not found.")
    for field, value in cleaned.items():
        setattr(rule, field, value)
    rule.save()
    return rule


@transaction.atomic
def alert_rule_move(*, institution: Institution, rule: AlertRule, up: bool) -> None:
    """Swap the rule with its neighbour above (``up``) or below; positions are renumbered 0..n-1."""
    if rule.institution_id != institution.pk:
        raise Http404("Not found.")
    ordered = list(AlertRule.objects.for_institution(institution).select_for_update().order_by("position", "id"))
    index = next(i for i, r in enumerate(ordered) if r.pk == rule.pk)
    other = index - 1 if up else index + 1
    if 0 <= other < len(ordered):
        ordered[index], ordered[other] = ordered[other], ordered[index]
    for position, item in enumerate(ordered):
        if item.position != position:
            AlertRule.objects.for_institution(institution).filter(pk=item.pk).update(position=position)


def alert_rule_delete(*, institution: Institution, rule: AlertRule) -> None:
    if rule.institution_id != institution.pk:
        raise Http404("Not found.")
    rule.delete()


# --- routing ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class RouteDecision:
    rule: AlertRule | None
    user: Any | None
    office: Office | None
    reason: str

    @property
    def unassigned(self) -> bool:
        return self.user is None and self.office is None


def _advisor_of(institution: Institution, student: Student):
    """The student's advisor when they can still take an alert here (an active member)."""
    if student.advisor_id is None:
        return None
    return User.objects.filter(pk=student.advisor_id, is_active=True,
                               memberships__institution=institution).first()


def alert_route_decide(*, institution: Institution, student: Student, concern_type: ConcernType | None
                       ) -> RouteDecision:
    """Where an alert of ``concern_type`` about ``student`` goes (nothing is written: the rule preview
    uses this too).

    The first active rule by position whose concern type (empty: any) and program (empty: any;
    compared ignoring case) match decides. A rule whose target cannot take it now (the student has
    no advisor, the person left, the office was deactivated) is passed over for the next one.
    """
    rules = (
        AlertRule.objects.for_institution(institution).filter(is_active=True)
        .filter(Q(concern_type__isnull=True) | Q(concern_type=concern_type))
        .select_related("user", "office", "concern_type").order_by("position", "id")
    )
    program = (student.program or "").strip().lower()
    for rule in rules:
        if rule.program and rule.program.strip().lower() != program:
            continue
        if rule.target == RouteTarget.ADVISOR:
            advisor = _advisor_of(institution, student)
            if advisor is not None:
                return RouteDecision(rule, advisor, None, "the student's advisor, by a routing rule")
        elif rule.target == RouteTarget.USER:
            if rule.user is not None and rule.user.is_active and Membership.objects.for_institution(
                    institution).filter(user=rule.user).exists():
                return RouteDecision(rule, rule.user, None, "a person named by a routing rule")
        elif rule.office is not None and rule.office.is_active:
            return RouteDecision(rule, None, rule.office, "an office named by a routing rule")
    advisor = _advisor_of(institution, student)
    if advisor is not None:
        return RouteDecision(None, advisor, None, "the student's advisor (no routing rule matched)")
    return RouteDecision(None, None, None, "nobody yet: no routing rule matched and the student has no advisor; "
                                           "administrators see it in the unassigned queue")


def office_member_ids(*, institution: Institution, office_id: int | None) -> list[int]:
    if office_id is None:
        return []
    # Still active members of the institution (someone who left keeps no queue).
    members = Membership.objects.for_institution(institution).values("user_id")
    return list(OfficeMember.objects.for_institution(institution).filter(
        office_id=office_id, user__is_active=True, user_id__in=members).values_list("user_id", flat=True)
        .order_by("user_id"))


def my_office_ids(*, institution: Institution, user) -> list[int]:
    """The offices ``user`` is a member of, in ``institution``."""
    return list(OfficeMember.objects.for_institution(institution).filter(user_id=user.pk)
                .values_list("office_id", flat=True))


def _assignees(institution: Institution, alert: Alert) -> list:
    if alert.assigned_user_id is not None:
        return [alert.assigned_user]
    ids = office_member_ids(institution=institution, office_id=alert.assigned_office_id)
    return list(User.objects.filter(pk__in=ids).order_by("pk"))


def _send_assigned_on_commit(institution: Institution, alert: Alert, event: AlertEvent) -> None:
    def send() -> None:
        from institutions.scoping import institution_scope

        with institution_scope(institution):
            users = _assignees(institution, alert)
            if users:
                alert_assigned.send(sender=Alert, institution=institution, alert=alert, users=users, event=event)

    transaction.on_commit(send)


def _event(institution: Institution, alert: Alert, kind: str, *, actor=None, note: str = "", to_user=None,
           to_office=None) -> AlertEvent:
    return AlertEvent.objects.for_institution(institution).create(
        alert=alert, kind=kind, actor=actor, note=note, to_user=to_user, to_office=to_office,
    )


@transaction.atomic
def alert_route(*, institution: Institution, alert: Alert, actor=None) -> AlertEvent:
    """Route ``alert`` by the institution's rules, record a ``routed`` event and tell the assignees."""
    if alert.institution_id != institution.pk:
        raise Http404("Not found.")
    decision = alert_route_decide(institution=institution, student=alert.student, concern_type=alert.concern_type)
    alert.rule, alert.assigned_user, alert.assigned_office = decision.rule, decision.user, decision.office
    alert.save(update_fields=["rule", "assigned_user", "assigned_office", "updated_at"])
    event = _event(institution, alert, AlertEventKind.ROUTED, actor=actor, note=f"To {decision.reason}.",
                   to_user=decision.user, to_office=decision.office)
    _send_assigned_on_commit(institution, alert, event)
    return event


def _webhook_payload(alert: Alert) -> dict:
    """The student at the top as in every student event (``student_id``, ``external_id``: the subject
    access export and erasure find deliveries by it); no comment, no notes."""
    return {"student_id": alert.student_id, "external_id": alert.student.external_id, "alert": {
        "id": alert.pk, "concern_type": alert.concern_type.key, "source": alert.source, "status": alert.status,
        "outcome": alert.outcome, "assigned_user": alert.assigned_user_id,
        "assigned_office": alert.assigned_office_id, "created_at": alert.created_at.isoformat(),
        "closed_at": alert.closed_at.isoformat() if alert.closed_at else None,
    }}


@transaction.atomic
def alert_raise(
    *,
    institution: Institution,
    student: Student,
    concern_type: ConcernType,
    source: str,
    comment: str = "",
    raised_by_user=None,
    raised_by_instructor=None,
    survey_mark: SurveyMark | None = None,
    section=None,
) -> Alert:
    """Create an alert, record ``raised``, and route it at once."""
    if student.institution_id != institution.pk or concern_type.institution_id != institution.pk:
        raise Http404("Not found.")
    if concern_type.kind != ConcernKind.CONCERN:
        raise InterventionRuleError({"concern_type": "kudos raise no alert; choose a concern"})
    alert = Alert.objects.for_institution(institution).create(
        student=student, concern_type=concern_type, source=source, comment=(comment or "").strip(),
        raised_by_user=raised_by_user, raised_by_instructor=raised_by_instructor, survey_mark=survey_mark,
        survey_mark_ref=survey_mark.pk if survey_mark is not None else None, section=section,
    )
    _event(institution, alert, AlertEventKind.RAISED, actor=raised_by_user)
    alert_route(institution=institution, alert=alert)
    webhook_emit(institution=institution, event="alert.created", payload=_webhook_payload(alert))
    return alert


def alert_raise_by_staff(*, institution: Institution, student: Student | int, concern_type_id, comment: str,
                         user: AbstractBaseUser) -> Alert:
    """A member raises an alert on a student's profile (routed as a survey's would be)."""
    pk = getattr(student, "pk", student)
    student = Student.objects.for_institution(institution).filter(pk=id_from_input(pk)).first() \
        if id_from_input(pk) is not None else None
    if student is None:
        raise Http404("Not found.")
    number = id_from_input(concern_type_id)
    concern_type = None if number is None else ConcernType.objects.for_institution(institution).filter(
        pk=number, kind=ConcernKind.CONCERN, is_active=True).first()
    if concern_type is None:
        raise InterventionRuleError({"concern_type": "choose one of this institution's concern types"})
    comment = (comment or "").strip()
    if not comment:
        raise InterventionRuleError({"comment": "say what you noticed, so whoever takes it knows where to start"})
    return alert_raise(institution=institution, student=student, concern_type=concern_type,
                       source=AlertSource.STAFF, comment=comment, raised_by_user=user)


# --- working an alert -------------------------------------------------------------------------

def alert_can_act(*, alert: Alert, user: AbstractBaseUser, membership: Membership | None,
                  office_ids: Iterable[int] | None = None) -> bool:
    """The assigned person, the members of the assigned office, and administrators work an alert.
    (``membership`` None: an API key, which acts when it holds the interventions write scope.)"""
    if membership is None:
        return True
    if not membership.can("edit_interventions"):
        return False
    if membership.can(ADMIN_CAPABILITY):
        return True
    if alert.assigned_user_id is not None:
        return alert.assigned_user_id == user.pk
    if alert.assigned_office_id is not None:
        if office_ids is None:
            office_ids = my_office_ids(institution=membership.institution, user=user)
        return alert.assigned_office_id in set(office_ids)
    return False


def _check_can_act(institution: Institution, alert: Alert, user, membership, *, open_only: bool = True) -> None:
    if alert.institution_id != institution.pk:
        raise Http404("Not found.")
    if not alert_can_act(alert=alert, user=user, membership=membership):
        raise InterventionRuleError({"non_field_errors": "only whoever it is assigned to (the person, or a member "
                                                         "of the office) and administrators can work this alert"})
    if open_only and alert.status == AlertStatus.CLOSED:
        raise InterventionRuleError({"status": "this alert is closed"})


def _locked(institution: Institution, alert: Alert) -> Alert:
    """The alert's current row, locked for this transaction (two people acting at once do not both win)."""
    return Alert.objects.for_institution(institution).select_for_update(of=("self",)).select_related(
        "student", "concern_type", "raised_by_instructor", "section", "section__course").get(pk=alert.pk)


@transaction.atomic
def alert_acknowledge(*, institution: Institution, alert: Alert, user, membership, note: str = "") -> Alert:
    """"I have it": the raiser's concern is in hand."""
    _check_can_act(institution, alert, user, membership)
    alert = _locked(institution, alert)
    if alert.status != AlertStatus.OPEN:
        raise InterventionRuleError({"status": "this alert is already acknowledged"})
    alert.status = AlertStatus.ACKNOWLEDGED
    alert.save(update_fields=["status", "updated_at"])
    _event(institution, alert, AlertEventKind.ACKNOWLEDGED, actor=user, note=(note or "").strip())
    return alert


@transaction.atomic
def alert_record_contact(*, institution: Institution, alert: Alert, user, membership, note: str) -> Alert:
    """The student was reached (or tried): the note says how."""
    _check_can_act(institution, alert, user, membership)
    note = (note or "").strip()
    if not note:
        raise InterventionRuleError({"note": "say how you contacted the student (call, email, meeting)"})
    alert = _locked(institution, alert)
    if alert.status == AlertStatus.CLOSED:
        raise InterventionRuleError({"status": "this alert is closed"})
    alert.status = AlertStatus.CONTACTED
    alert.save(update_fields=["status", "updated_at"])
    _event(institution, alert, AlertEventKind.CONTACTED, actor=user, note=note)
    return alert


@transaction.atomic
def alert_refer(*, institution: Institution, alert: Alert, user, membership, to_user_id=None, to_office_id=None,
                note: str = "") -> Alert:
    """Hand the alert to another office or person: they are told, and it is new for them."""
    _check_can_act(institution, alert, user, membership)
    if (to_user_id in (None, "")) == (to_office_id in (None, "")):
        raise InterventionRuleError({"non_field_errors": "refer to either a person or an office"})
    to_user = _alert_worker(institution, to_user_id, field="to_user") if to_user_id not in (None, "") else None
    to_office = _resolve_office(institution, to_office_id, field="to_office") \
        if to_office_id not in (None, "") else None
    alert = _locked(institution, alert)
    if alert.status == AlertStatus.CLOSED:
        raise InterventionRuleError({"status": "this alert is closed"})
    if (to_user is not None and alert.assigned_user_id == to_user.pk) or (
            to_office is not None and alert.assigned_user_id is None and alert.assigned_office_id == to_office.pk):
        raise InterventionRuleError({"non_field_errors": "the alert is already assigned there"})
    alert.assigned_user, alert.assigned_office = to_user, to_office
    alert.status = AlertStatus.OPEN
    alert.save(update_fields=["assigned_user", "assigned_office", "status", "updated_at"])
    event = _event(institution, alert, AlertEventKind.REFERRED, actor=user, note=(note or "").strip(),
                   to_user=to_user, to_office=to_office)
    _send_assigned_on_commit(institution, alert, event)
    return alert


@transaction.atomic
def alert_add_note(*, institution: Institution, alert: Alert, user, membership, note: str) -> AlertEvent:
    _check_can_act(institution, alert, user, membership, open_only=False)
    note = (note or "").strip()
    if not note:
        raise InterventionRuleError({"note": "write the note"})
    alert = _locked(institution, alert)
    alert.save(update_fields=["updated_at"])
    return _event(institution, alert, AlertEventKind.NOTE, actor=user, note=note)


def _instructor_email(institution: Institution, alert: Alert) -> tuple[str, str] | None:
    """(subject, body) of the close-the-loop email to the instructor who raised ``alert``: the student
    they marked, the course, that it was handled and the outcome's category. Never the notes. In the
    institution's language (instructors have no account)."""
    with translation.override(recipient_language(institution=institution)):
        return _instructor_email_written(institution, alert)


def _instructor_email_written(institution: Institution, alert: Alert) -> tuple[str, str]:
    section = alert.section
    context = {
        "institution": institution, "alert": alert, "student_name": alert.student.display_name,
        "course": (section.course.title if section is not None else ""),
        "section": (section.title if section is not None else ""),
        "concern": alert.concern_type.label, "outcome": alert.get_outcome_display(),
        "instructor": alert.raised_by_instructor,
    }
    subject = gettext("%(institution)s: the concern you raised about %(student)s was followed up") % {
        "institution": institution.name, "student": alert.student.display_name}
    return subject, render_to_string("interventions/alert_closed_email.txt", context)


def _tell_instructor(institution: Institution, alert: Alert) -> bool:
    instructor = alert.raised_by_instructor
    if instructor is None or not (instructor.email or "").strip():
        return False
    subject, body = _instructor_email(institution, alert)
    address = instructor.email.strip()
    now = timezone.now()
    alert.raiser_told_at = now
    alert.save(update_fields=["raiser_told_at"])
    _event(institution, alert, AlertEventKind.RAISER_TOLD, note="The instructor was emailed that it was handled "
                                                               "and the outcome's category (not the notes).")

    def send() -> None:
        # Queued for the worker (accounts/mail.py): a mail server that is down never fails this.
        send_mail(subject=subject, message=body, from_email=None, recipient_list=[address])

    transaction.on_commit(send)
    return True


@transaction.atomic
def alert_close(*, institution: Institution, alert: Alert, user, membership, outcome: str, notes: str = "",
                actor_checked: bool = False, tell_instructor: bool = True) -> Alert:
    """Close with an outcome; the raiser is told (in-app by the workspace, an instructor by email)."""
    if not actor_checked:
        _check_can_act(institution, alert, user, membership)
    if outcome not in AlertOutcome.values:
        raise InterventionRuleError({"outcome": "choose how it ended"})
    alert = _locked(institution, alert)
    if alert.status == AlertStatus.CLOSED:
        raise InterventionRuleError({"status": "this alert is already closed"})
    alert.status = AlertStatus.CLOSED
    alert.outcome = outcome
    alert.outcome_notes = (notes or "").strip()
    alert.closed_at = timezone.now()
    alert.closed_by = user
    alert.save(update_fields=["status", "outcome", "outcome_notes", "closed_at", "closed_by", "updated_at"])
    event = _event(institution, alert, AlertEventKind.CLOSED, actor=user,
                   note=f"{alert.get_outcome_display()}." + (f" {alert.outcome_notes}" if alert.outcome_notes else ""))
    if tell_instructor:
        _tell_instructor(institution, alert)
    webhook_emit(institution=institution, event="alert.closed", payload=_webhook_payload(alert))

    def send() -> None:
        from institutions.scoping import institution_scope

        with institution_scope(institution):
            alert_closed.send(sender=Alert, institution=institution, alert=alert, event=event)

    transaction.on_commit(send)
    return alert


# --- progress surveys ---------------------------------------------------------------------------

def _untouched(alert: Alert) -> bool:
    """Nobody has worked it yet: still new, and no event but raised, routed and the instructor's edits."""
    if alert.status != AlertStatus.OPEN:
        return False
    return not alert.events.exclude(kind__in=[AlertEventKind.RAISED, AlertEventKind.ROUTED]).exclude(
        kind=AlertEventKind.NOTE, actor__isnull=True).exists()


def alerts_from_survey_marks(*, institution: Institution, invitation, created: Iterable[SurveyMark],
                             updated: Iterable[SurveyMark], removed: Iterable[int]) -> list[Alert]:
    """An instructor saved their roster: each new concern becomes a routed alert; a changed comment
    updates its alert's; a mark taken back closes an alert nobody has touched (no action needed)."""
    raised = []
    instructor = invitation.instructor
    alerts = Alert.objects.for_institution(institution)
    for mark in created:
        concern_type = mark.concern_type
        if concern_type.kind != ConcernKind.CONCERN or alerts.filter(survey_mark=mark).exists():
            continue
        raised.append(alert_raise(
            institution=institution, student=mark.student, concern_type=concern_type, source=AlertSource.SURVEY,
            comment=mark.comment, raised_by_instructor=instructor, survey_mark=mark, section=mark.section,
        ))
    for mark in updated:
        alert = alerts.filter(survey_mark=mark).first()
        if alert is None or alert.status == AlertStatus.CLOSED:
            continue
        comment = (mark.comment or "").strip()
        if comment != alert.comment:
            alert.comment = comment
            alert.save(update_fields=["comment", "updated_at"])
            _event(institution, alert, AlertEventKind.NOTE, note=f"{COMMENT_UPDATED_NOTE}: {comment or '(none)'}")
    removed_ids = [number for number in (id_from_input(pk) for pk in removed) if number is not None]
    # The courses app deletes the marks before it tells us: found by the id they were raised from.
    withdrawn = alerts.filter(source=AlertSource.SURVEY, raised_by_instructor=instructor,
                              survey_mark_ref__in=removed_ids) if removed_ids else alerts.none()
    for alert in withdrawn.select_related("student", "concern_type"):
        if _untouched(alert):
            alert_close(institution=institution, alert=alert, user=None, membership=None,
                        outcome=AlertOutcome.NO_ACTION, notes=WITHDRAWN_NOTE, actor_checked=True,
                        tell_instructor=False)
    return raised


def survey_marks_saved_receiver(sender, *, institution: Institution, invitation, created=(), updated=(), removed=(),
                                **kwargs) -> None:
    """``courses.signals.survey_marks_saved`` receiver: runs inside the marks' transaction."""
    alerts_from_survey_marks(institution=institution, invitation=invitation, created=created or (),
                             updated=updated or (), removed=removed or ())


