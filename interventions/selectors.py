"""Reads of interventions, flags and intervention types. Every list is one SQL query (annotations are
subqueries), so a page's query count never grows with the number of rows it shows.

The composite reads of the advisor's pages (worklists, dashboard, student profile) live in
:mod:`workspace.selectors`, above this app."""

from __future__ import annotations

import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import (
    BooleanField,
    Case,
    CharField,
    Count,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.utils import timezone

from courses.models import ConcernKind, ConcernType, SurveyMark
from institutions.access import object_for_input_id
from institutions.models import Institution, Membership
from predictions.selectors import latest_predictions
from students.models import Student
from students.selectors import current_students

from .models import (
    Alert,
    AlertEvent,
    AlertRule,
    AlertStatus,
    Flag,
    FlagSource,
    Intervention,
    InterventionStatus,
    InterventionType,
    Office,
    OfficeMember,
    StudentAccessGrant,
)

CONFIDENTIAL_PLACEHOLDER = "Confidential note: visible to its author and administrators."


def intervention_type_list(*, institution: Institution, active_only: bool = False) -> QuerySet[InterventionType]:
    types = InterventionType.objects.for_institution(institution)
    if active_only:
        types = types.filter(is_active=True)
    return types.order_by("position", "label", "id")


def notes_visible_condition(*, user: AbstractBaseUser, membership: Membership | None) -> Q:
    """Who may read an intervention's notes: anyone for ordinary notes; author and admins for confidential.

    ``membership`` is None for API keys, which never read confidential notes."""
    if membership is not None and membership.can("view_confidential_notes"):
        return Q(pk__isnull=False)
    return Q(confidential=False) | Q(author_id=user.pk)


def intervention_list(
    *, institution: Institution, user: AbstractBaseUser, membership: Membership | None
) -> QuerySet[Intervention]:
    """Interventions with ``visible_notes``/``visible_outcome_notes`` already blanked where the reader may not see
    them: confidential text never leaves the database for someone who may not read it."""
    condition = notes_visible_condition(user=user, membership=membership)
    return (
        Intervention.objects.for_institution(institution)
        .select_related("student", "intervention_type", "author")
        .defer("notes", "outcome_notes")
        .annotate(
            notes_visible=Case(When(condition, then=Value(True)), default=Value(False), output_field=BooleanField()),
            visible_notes=Case(When(condition, then=F("notes")), default=Value(CONFIDENTIAL_PLACEHOLDER),
                               output_field=CharField()),
            visible_outcome_notes=Case(When(condition, then=F("outcome_notes")), default=Value(""),
                                       output_field=CharField()),
        )
        .order_by("-date", "-id")
    )


def intervention_filter(
    interventions: QuerySet[Intervention],
    *,
    status: str = "",
    overdue: bool = False,
    student_id: int | None = None,
    type_id: int | None = None,
    author_id: int | None = None,
    today: datetime.date | None = None,
) -> QuerySet[Intervention]:
    today = today or timezone.localdate()
    if status:
        interventions = interventions.filter(status=status)
    if overdue:
        interventions = interventions.filter(status=InterventionStatus.OPEN, follow_up_date__lt=today)
    if student_id:
        interventions = interventions.filter(student_id=student_id)
    if type_id:
        interventions = interventions.filter(intervention_type_id=type_id)
    if author_id:
        interventions = interventions.filter(author_id=author_id)
    return interventions


def student_timeline(
    *, institution: Institution, student: Student, user: AbstractBaseUser, membership: Membership
) -> QuerySet[Intervention]:
    return intervention_list(institution=institution, user=user, membership=membership).filter(student=student)


def flag_list(*, institution: Institution) -> QuerySet[Flag]:
    return Flag.objects.for_institution(institution).select_related("student", "raised_by", "resolved_by")


def flags_raised_by_resolved(*, institution: Institution, user: AbstractBaseUser, days: int = 30) -> QuerySet[Flag]:
    """Flags this person raised that someone has resolved lately: the raiser sees how it ended."""
    since = timezone.now() - datetime.timedelta(days=days)
    return flag_list(institution=institution).filter(raised_by=user, resolved_at__gte=since).order_by("-resolved_at")


def overdue_follow_ups(
    *, institution: Institution, user: AbstractBaseUser | None = None, today: datetime.date | None = None
) -> QuerySet[Intervention]:
    """Open interventions whose follow-up date has passed (for one advisor's students, when given)."""
    today = today or timezone.localdate()
    interventions = Intervention.objects.for_institution(institution).filter(
        status=InterventionStatus.OPEN, follow_up_date__lt=today
    )
    if user is not None:
        interventions = interventions.filter(Q(student__advisor=user) | Q(author=user))
    return interventions.select_related("student", "intervention_type").order_by("follow_up_date", "id")


def advisor_choices(*, institution: Institution) -> list[tuple[int, str]]:
    """Members who can work a caseload (advisors and administrators), for assignment and filters."""
    memberships = Membership.objects.for_institution(institution).select_related("user").order_by(
        "user__last_name", "user__username"
    )
    return [
        (m.user_id, m.user.get_full_name() or m.user.username)
        for m in memberships
        if m.can("edit_interventions") and m.user.is_active
    ]


def flagged_condition(*, institution: Institution) -> Q:
    """Flagged by the model in its latest run (and not reviewed by staff since that score), or by staff
    with a flag still open.

    Written as two ``IN (subquery)`` tests so PostgreSQL hashes each set once instead of probing
    both tables for every student of the institution.
    """
    reviewed = Flag.objects.for_institution(institution).filter(
        student_id=OuterRef("student_id"), source=FlagSource.MODEL, resolved_at__gte=OuterRef("scored_at")
    )
    model_flagged = latest_predictions(institution=institution).filter(flagged=True).exclude(Exists(reviewed)) \
        .order_by().values("student_id")
    staff_flagged = Flag.objects.for_institution(institution).filter(resolved_at__isnull=True).order_by() \
        .values("student_id")
    return Q(pk__in=model_flagged) | Q(pk__in=staff_flagged)


def caseload_summary(*, institution: Institution, today: datetime.date | None = None) -> list[dict]:
    """Per advisor (and "nobody"): current students, how many are flagged, overdue follow-ups. One query."""
    today = today or timezone.localdate()
    overdue = Intervention.objects.for_institution(institution).filter(
        student_id=OuterRef("pk"), status=InterventionStatus.OPEN, follow_up_date__lt=today
    )
    rows = (
        current_students(institution=institution)
        .annotate(is_flagged=Case(When(flagged_condition(institution=institution), then=Value(1)), default=Value(0)),
                  is_overdue=Exists(overdue))
        .order_by().values("advisor_id")
        .annotate(students=Count("id"), flagged=Count("id", filter=Q(is_flagged=1)),
                  overdue_follow_ups=Count("id", filter=Q(is_overdue=True)))
        .order_by(F("advisor_id").asc(nulls_last=True))
    )
    return [{"advisor": row["advisor_id"], "students": row["students"], "flagged": row["flagged"],
             "overdue_follow_ups": row["overdue_follow_ups"]} for row in rows]


def model_flag_review(*, institution: Institution, student: Student, scored_at) -> Flag | None:
    """Staff's review of the model's current flag on the student (one made since the latest score)."""
    if scored_at is None:
        return None
    return flag_list(institution=institution).filter(
        student=student, source=FlagSource.MODEL, resolved_at__gte=scored_at
    ).order_by("-resolved_at").first()


def access_intervention_type(*, institution: Institution, intervention_type_id: int | str) -> InterventionType:
    """The institution's intervention type with ``intervention_type_id`` from input; another
    institution's, a missing one and a malformed id raise the same Http404."""
    return object_for_input_id(InterventionType.objects.for_institution(institution), intervention_type_id)


def access_intervention(
    *, institution: Institution, intervention_id: int | str, user: AbstractBaseUser, membership: Membership | None
) -> Intervention:
    """The institution's intervention with ``intervention_id`` from input, its notes blanked as
    :func:`intervention_list` blanks them for this reader; Http404 alike for any other id."""
    return object_for_input_id(
        intervention_list(institution=institution, user=user, membership=membership), intervention_id
    )


def access_flag(*, institution: Institution, flag_id: int | str) -> Flag:
    """The institution's flag with ``flag_id`` from input (Http404 alike for any other id)."""
    return object_for_input_id(flag_list(institution=institution), flag_id)


def access_grant_list(*, institution: Institution) -> QuerySet[StudentAccessGrant]:
    """Every need-to-know grant of the institution, current ones first, newest first."""
    return StudentAccessGrant.objects.for_institution(institution).select_related(
        "student", "user", "granted_by", "revoked_by"
    ).order_by(F("revoked_at").desc(nulls_first=True), "-granted_at", "-id")


def access_student_access_grant(*, institution: Institution, grant_id: int | str) -> StudentAccessGrant:
    return object_for_input_id(StudentAccessGrant.objects.for_institution(institution), grant_id)


# --- alerts -------------------------------------------------------------------------------------

ALERT_STATUS_FILTERS = ("open", "closed", "all", *(s for s in AlertStatus.values if s != AlertStatus.CLOSED))


def alert_list(*, institution: Institution) -> QuerySet[Alert]:
    """Alerts with what their rows show (under need-to-know, only those of students the reader sees)."""
    return Alert.objects.for_institution(institution).select_related(
        "student", "concern_type", "assigned_user", "assigned_office", "raised_by_user", "raised_by_instructor",
        "section", "section__course", "closed_by",
    )


def alert_filter(alerts: QuerySet[Alert], *, status: str = "", concern_type_id: int | None = None,
                 student_id: int | None = None) -> QuerySet[Alert]:
    """``status``: "open" (not closed; the default of the worklists), "closed", "all", or one status.
    Open alerts come first (new, then the oldest waiting longest), closed ones newest first."""
    if status in ("", "open"):
        alerts = alerts.exclude(status=AlertStatus.CLOSED)
    elif status in AlertStatus.values:
        alerts = alerts.filter(status=status)
    if concern_type_id:
        alerts = alerts.filter(concern_type_id=concern_type_id)
    if student_id:
        alerts = alerts.filter(student_id=student_id)
    order = Case(When(status=AlertStatus.OPEN, then=Value(0)), When(status=AlertStatus.CLOSED, then=Value(2)),
                 default=Value(1))
    return alerts.annotate(status_order=order).order_by("status_order", F("closed_at").desc(nulls_first=True),
                                                        "created_at", "id")


def my_alerts(*, institution: Institution, user: AbstractBaseUser) -> QuerySet[Alert]:
    """Alerts assigned to ``user`` or to an office they are a member of."""
    offices = OfficeMember.objects.for_institution(institution).filter(user_id=user.pk).values("office_id")
    return alert_list(institution=institution).filter(Q(assigned_user_id=user.pk) | Q(
        assigned_user__isnull=True, assigned_office_id__in=offices))


def office_alerts(*, institution: Institution, office: Office) -> QuerySet[Alert]:
    return alert_list(institution=institution).filter(assigned_office=office, assigned_user__isnull=True)


def unassigned_alerts(*, institution: Institution) -> QuerySet[Alert]:
    return alert_list(institution=institution).filter(assigned_user__isnull=True, assigned_office__isnull=True)


def open_alert_count(*, institution: Institution, user: AbstractBaseUser) -> int:
    return my_alerts(institution=institution, user=user).exclude(status=AlertStatus.CLOSED).count()


def access_alert(*, institution: Institution, alert_id: int | str) -> Alert:
    """The institution's alert with ``alert_id`` from input (Http404 alike for any other id, and for an
    alert of a student the reader may not see under need-to-know access)."""
    return object_for_input_id(alert_list(institution=institution), alert_id)


def alert_events(*, institution: Institution, alert: Alert) -> QuerySet[AlertEvent]:
    return AlertEvent.objects.for_institution(institution).filter(alert=alert).select_related(
        "actor", "to_user", "to_office").order_by("at", "id")


def student_alerts(*, institution: Institution, student: Student) -> QuerySet[Alert]:
    return alert_list(institution=institution).filter(student=student).order_by("-created_at", "-id")


def student_kudos(*, institution: Institution, student: Student) -> QuerySet[SurveyMark]:
    """Kudos instructors gave the student in progress surveys (they raise no alert)."""
    return SurveyMark.objects.for_institution(institution).filter(
        student=student, concern_type__kind=ConcernKind.KUDOS,
    ).select_related("concern_type", "section", "section__course", "invitation__instructor").order_by("-created_at")


def office_list(*, institution: Institution, active_only: bool = False) -> QuerySet[Office]:
    offices = Office.objects.for_institution(institution)
    if active_only:
        offices = offices.filter(is_active=True)
    open_alerts = Alert.objects.for_institution(institution).filter(
        assigned_office=OuterRef("pk"), assigned_user__isnull=True).exclude(status=AlertStatus.CLOSED) \
        .order_by().values("assigned_office").annotate(n=Count("id")).values("n")
    return offices.annotate(member_count=Count("members", distinct=True),
                            open_alerts=Subquery(open_alerts)).order_by("name", "id")


def access_office(*, institution: Institution, office_id: int | str) -> Office:
    return object_for_input_id(Office.objects.for_institution(institution), office_id)


def office_members(*, institution: Institution, office: Office) -> QuerySet[OfficeMember]:
    return OfficeMember.objects.for_institution(institution).filter(office=office).select_related("user") \
        .order_by("user__last_name", "user__username")


def my_offices(*, institution: Institution, user: AbstractBaseUser) -> QuerySet[Office]:
    return Office.objects.for_institution(institution).filter(
        pk__in=OfficeMember.objects.for_institution(institution).filter(user_id=user.pk).values("office_id")
    ).order_by("name")


def alert_rule_list(*, institution: Institution) -> QuerySet[AlertRule]:
    return AlertRule.objects.for_institution(institution).select_related("concern_type", "user", "office") \
        .order_by("position", "id")


def access_alert_rule(*, institution: Institution, rule_id: int | str) -> AlertRule:
    return object_for_input_id(AlertRule.objects.for_institution(institution), rule_id)


def concern_type_choices(*, institution: Institution, active_only: bool = True) -> list[tuple[int, str]]:
    types = ConcernType.objects.for_institution(institution).filter(kind=ConcernKind.CONCERN)
    if active_only:
        types = types.filter(is_active=True)
    return [(t.pk, t.label) for t in types.order_by("position", "label", "id")]


def alert_counts_by_student(*, institution: Institution, student_ids) -> dict[int, int]:
    """Open alerts per student, for the worklists' badges (one query)."""
    rows = Alert.objects.for_institution(institution).filter(student_id__in=list(student_ids)).exclude(
        status=AlertStatus.CLOSED).order_by().values("student_id").annotate(n=Count("id"))
    return {row["student_id"]: row["n"] for row in rows}
