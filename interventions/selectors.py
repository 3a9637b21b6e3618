"""Reads for the advisor workspace. Every list is one SQL query (annotations are subqueries), so a
page's query count never grows with the number of rows it shows, and paging happens in SQL."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import (
    BooleanField,
    Case,
    CharField,
    Count,
    Exists,
    F,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.utils import timezone

from institutions.models import Institution, Membership
from students.models import Student

from .models import Flag, Intervention, InterventionStatus, InterventionType

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


def intervention_counts(*, institution: Institution, today: datetime.date | None = None) -> dict[str, int]:
    today = today or timezone.localdate()
    counts = Intervention.objects.for_institution(institution).aggregate(
        total=Count("id"),
        open=Count("id", filter=Q(status=InterventionStatus.OPEN)),
        overdue=Count("id", filter=Q(status=InterventionStatus.OPEN, follow_up_date__lt=today)),
        closed=Count("id", filter=Q(status=InterventionStatus.CLOSED)),
    )
    return {key: value or 0 for key, value in counts.items()}


def annotate_worklist(students: QuerySet[Student], *, institution: Institution,
                      today: datetime.date | None = None) -> QuerySet[Student]:
    """Add what an advisor needs on each row as correlated subqueries: last contact, open
    interventions, the next follow-up and whether it is overdue, and whether a flag is open."""
    today = today or timezone.localdate()
    interventions = Intervention.objects.for_institution(institution).filter(student_id=OuterRef("pk"))
    open_interventions = interventions.filter(status=InterventionStatus.OPEN)
    return students.annotate(
        last_contact=Subquery(
            interventions.order_by().values("student_id").annotate(latest=Max("date")).values("latest")[:1]
        ),
        next_follow_up=Subquery(
            open_interventions.exclude(follow_up_date=None).order_by().values("student_id")
            .annotate(soonest=Min("follow_up_date")).values("soonest")[:1]
        ),
        has_open_intervention=Exists(open_interventions),
        has_overdue_follow_up=Exists(open_interventions.filter(follow_up_date__lt=today)),
        has_open_flag=Exists(
            Flag.objects.for_institution(institution).filter(student_id=OuterRef("pk"), resolved_at__isnull=True)
        ),
    )


@dataclass(frozen=True)
class WorklistFilters:
    """What the flagged list and caseload can be narrowed by (all optional)."""

    band: str = ""
    program: str = ""
    cohort: str = ""
    advisor_id: int | None = None
    unassigned: bool = False
    open_intervention: str = ""  # "yes", "no" or ""
    no_contact_days: int | None = None
    flagged_only: bool = False
    query: str = ""


def apply_worklist_filters(students: QuerySet[Student], filters: WorklistFilters,
                           today: datetime.date | None = None) -> QuerySet[Student]:
    """Filters over a queryset already passed through :func:`annotate_worklist`."""
    today = today or timezone.localdate()
    if filters.program:
        students = students.filter(program=filters.program)
    if filters.cohort:
        students = students.filter(cohort=filters.cohort)
    if filters.unassigned:
        students = students.filter(advisor__isnull=True)
    elif filters.advisor_id:
        students = students.filter(advisor_id=filters.advisor_id)
    if filters.open_intervention == "yes":
        students = students.filter(has_open_intervention=True)
    elif filters.open_intervention == "no":
        students = students.filter(has_open_intervention=False)
    if filters.no_contact_days is not None:
        cutoff = today - datetime.timedelta(days=filters.no_contact_days)
        students = students.filter(Q(last_contact__isnull=True) | Q(last_contact__lt=cutoff))
    if filters.query:
        q = filters.query.strip()
        students = students.filter(Q(external_id__icontains=q) | Q(name__icontains=q))
    return students


def program_and_cohort_choices(*, institution: Institution) -> tuple[list[str], list[str]]:
    students = Student.objects.for_institution(institution).order_by()
    programs = list(students.exclude(program="").values_list("program", flat=True).distinct().order_by("program"))
    cohorts = list(students.exclude(cohort="").values_list("cohort", flat=True).distinct().order_by("cohort"))
    return programs, cohorts


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
