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
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
    Window,
)
from django.utils import timezone

from institutions.models import Institution, Membership
from predictions.model_store import load_model
from predictions.models import Prediction
from predictions.selectors import latest_predictions, model_version_live, prediction_history
from students.feature_values import FeatureValuesInvalid, clean_feature_values, out_of_range_keys
from students.models import Student
from students.selectors import current_students, feature_definition_list

from .models import Flag, FlagSource, Intervention, InterventionStatus, InterventionType, RiskSnapshot

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


def annotate_worklist(students: QuerySet[Student], *, institution: Institution,
                      today: datetime.date | None = None) -> QuerySet[Student]:
    """Add what an advisor needs on each row as correlated subqueries: last contact, open
    interventions, the next follow-up and whether it is overdue, and whether a flag is open."""
    today = today or timezone.localdate()
    interventions = Intervention.objects.for_institution(institution).filter(student_id=OuterRef("pk"))
    open_interventions = interventions.filter(status=InterventionStatus.OPEN)
    return students.annotate(
        last_contact=Subquery(interventions.order_by("-date", "-id").values("date")[:1]),
        next_follow_up=Subquery(
            open_interventions.exclude(follow_up_date=None).order_by("follow_up_date", "id")
            .values("follow_up_date")[:1]
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


# --- risk-aware lists ----------------------------------------------------------------------

WORKLIST_SORTS: dict[str, tuple[str, list]] = {
    "risk": ("Highest risk first", [F("risk").desc(nulls_last=True), "id"]),
    "last_contact": ("Longest without contact first", [F("last_contact").asc(nulls_first=True), "id"]),
    "follow_up": ("Next follow-up first", [F("next_follow_up").asc(nulls_last=True), "id"]),
    "name": ("Name", ["name", "external_id", "id"]),
    "program": ("Program", ["program", F("risk").desc(nulls_last=True), "id"]),
    "cohort": ("Cohort", ["cohort", F("risk").desc(nulls_last=True), "id"]),
}


def worklist_students(*, institution: Institution, today: datetime.date | None = None) -> QuerySet[Student]:
    """Current students with their latest risk (rank, band, percentile, model flag) and contact state.

    Every value is a correlated subquery on an index that starts with the institution, so the
    database pages and sorts; Python only ever sees one page.
    """
    latest = latest_predictions(institution=institution).filter(student_id=OuterRef("pk")).order_by()
    students = current_students(institution=institution).select_related("advisor").annotate(
        risk=Subquery(latest.values("risk")[:1]),
        risk_band=Subquery(latest.values("band")[:1]),
        risk_rank=Subquery(latest.values("rank")[:1]),
        model_flagged=Subquery(latest.values("flagged")[:1]),
    )
    return annotate_worklist(students, institution=institution, today=today)


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


def worklist_filter(students: QuerySet[Student], filters: WorklistFilters, *, institution: Institution,
                    today: datetime.date | None = None) -> QuerySet[Student]:
    if filters.flagged_only:
        students = students.filter(flagged_condition(institution=institution))
    if filters.band:
        students = students.filter(risk_band=filters.band)
    return apply_worklist_filters(students, filters, today=today)


def worklist_sort(students: QuerySet[Student], sort: str) -> QuerySet[Student]:
    return students.order_by(*WORKLIST_SORTS.get(sort, WORKLIST_SORTS["risk"])[1])


def caseload_students(*, institution: Institution, advisor: AbstractBaseUser, filters: WorklistFilters,
                      sort: str = "") -> QuerySet[Student]:
    """An advisor's students; overdue follow-ups come first, then the chosen order (risk by default)."""
    students = worklist_filter(
        worklist_students(institution=institution).filter(advisor=advisor), filters, institution=institution
    )
    order = WORKLIST_SORTS.get(sort, WORKLIST_SORTS["risk"])[1]
    return students.order_by(F("has_overdue_follow_up").desc(), *order)


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


# --- the dashboard --------------------------------------------------------------------------

RISK_HISTOGRAM_BINS = 10


@dataclass(frozen=True)
class DashboardFilters:
    program: str = ""
    cohort: str = ""
    no_contact_days: int = 14
    sharp_rise: float = 0.15


def _student_filter(filters: DashboardFilters, prefix: str = "") -> Q:
    condition = Q()
    if filters.program:
        condition &= Q(**{f"{prefix}program": filters.program})
    if filters.cohort:
        condition &= Q(**{f"{prefix}cohort": filters.cohort})
    return condition


def dashboard_summary(*, institution: Institution, filters: DashboardFilters,
                      today: datetime.date | None = None) -> dict:
    """Every figure of the dashboard in a fixed, small number of queries, whatever the institution's size."""
    today = today or timezone.localdate()
    latest = latest_predictions(institution=institution).order_by().filter(_student_filter(filters, "student__"))
    bins = {
        f"bin{i}": Count("id", filter=Q(risk__gte=i / RISK_HISTOGRAM_BINS)
                         & (Q(risk__lt=(i + 1) / RISK_HISTOGRAM_BINS) if i < RISK_HISTOGRAM_BINS - 1 else Q()))
        for i in range(RISK_HISTOGRAM_BINS)
    }
    figures = latest.aggregate(
        scored=Count("id"), flagged=Count("id", filter=Q(flagged=True)),
        high=Count("id", filter=Q(band="high")), medium=Count("id", filter=Q(band="medium")),
        low=Count("id", filter=Q(band="low")), **bins,
    )
    histogram = [figures.pop(f"bin{i}") or 0 for i in range(RISK_HISTOGRAM_BINS)]
    students = current_students(institution=institution).filter(_student_filter(filters))
    enrolled = students.count()

    interventions = Intervention.objects.for_institution(institution).filter(_student_filter(filters, "student__"))
    intervention_figures = interventions.aggregate(
        open=Count("id", filter=Q(status=InterventionStatus.OPEN)),
        overdue=Count("id", filter=Q(status=InterventionStatus.OPEN, follow_up_date__lt=today)),
    )
    cutoff = today - datetime.timedelta(days=filters.no_contact_days)
    # Lean on purpose: only the semi-joins this count needs, none of the list's annotations.
    no_contact = students.filter(flagged_condition(institution=institution)).exclude(
        Exists(Intervention.objects.for_institution(institution).filter(student_id=OuterRef("pk"), date__gte=cutoff))
    ).count()

    snapshots = list(
        RiskSnapshot.objects.for_institution(institution).defer("flagged_student_ids").order_by("-taken_at", "-id")[:30]
    )
    snapshots.reverse()
    return {
        "enrolled": enrolled,
        "scored": figures["scored"] or 0,
        "flagged": figures["flagged"] or 0,
        "bands": {"high": figures["high"] or 0, "medium": figures["medium"] or 0, "low": figures["low"] or 0},
        "histogram": histogram,
        "histogram_labels": [f"{10 * i}–{10 * (i + 1)}%" for i in range(RISK_HISTOGRAM_BINS)],
        "open_interventions": intervention_figures["open"] or 0,
        "overdue_interventions": intervention_figures["overdue"] or 0,
        "flagged_no_contact": no_contact,
        "flagged_over_time": [{"date": s.taken_at, "flagged": s.flagged, "scored": s.scored} for s in snapshots],
    }


def _page_with_total(queryset, limit: int) -> tuple[list, int]:
    """The first ``limit`` rows and the number of all rows, in one query (COUNT(*) OVER ())."""
    rows = list(queryset.annotate(total_rows=Window(Count("id")))[:limit])
    return rows, (rows[0].total_rows if rows else 0)


def newly_flagged(*, institution: Institution, filters: DashboardFilters, limit: int = 10) -> dict:
    """Students flagged in the latest recorded run but not in the one before it."""
    pair = list(RiskSnapshot.objects.for_institution(institution).order_by("-taken_at", "-id")[:2])
    if len(pair) < 2:
        return {"count": 0, "students": [], "since": None, "known": False}
    new_ids = set(pair[0].flagged_student_ids) - set(pair[1].flagged_student_ids)
    latest = latest_predictions(institution=institution).filter(student_id=OuterRef("pk")).order_by()
    students = (
        current_students(institution=institution).filter(pk__in=new_ids).filter(_student_filter(filters))
        .annotate(risk=Subquery(latest.values("risk")[:1]))
        .order_by(F("risk").desc(nulls_last=True), "id")
    )
    rows, total = _page_with_total(students, limit)
    return {"count": total, "students": rows, "since": pair[1].taken_at, "known": True}


def sharp_rises(*, institution: Institution, filters: DashboardFilters, limit: int = 10) -> dict:
    """Students whose risk in the latest run rose by at least ``filters.sharp_rise`` over their previous score."""
    last_run = latest_predictions(institution=institution).order_by("-scored_at").values("prediction__job_id")[:1]
    # The latest prediction is the student's newest stored one, so the previous score is the second newest.
    previous = Prediction.objects.for_institution(institution).filter(
        student_id=OuterRef("student_id")
    ).order_by("-created_at", "-id").values("risk")[1:2]
    rises = (
        latest_predictions(institution=institution)
        # A rise of x needs a risk of at least x: skip the lookup for everyone below it.
        .filter(prediction__job_id=Subquery(last_run), risk__gte=filters.sharp_rise)
        .filter(_student_filter(filters, "student__"))
        .annotate(previous_risk=Subquery(previous))
        .annotate(rise=F("risk") - F("previous_risk"))
        .filter(rise__gte=filters.sharp_rise)
        .select_related("student")
        .order_by("-rise", "id")
    )
    rows, total = _page_with_total(rises, limit)
    return {"count": total, "rows": rows}


def model_flag_review(*, institution: Institution, student: Student, scored_at) -> Flag | None:
    """Staff's review of the model's current flag on the student (one made since the latest score)."""
    if scored_at is None:
        return None
    return flag_list(institution=institution).filter(
        student=student, source=FlagSource.MODEL, resolved_at__gte=scored_at
    ).order_by("-resolved_at").first()


# --- the student profile --------------------------------------------------------------------

def student_feature_rows(*, institution: Institution, student: Student) -> list[dict]:
    """The student's values in schema order, each marked when it no longer fits its valid range."""
    definitions = list(feature_definition_list(institution=institution))
    bad = out_of_range_keys(definitions, student.features)
    rows = []
    for definition in definitions:
        value = student.features.get(definition.key)
        if definition.categories:
            display = definition.category_labels.get(str(value), value)
        elif isinstance(value, bool):
            display = "Yes" if value else "No"
        else:
            display = value
        rows.append({"definition": definition, "value": value, "display": display,
                     "out_of_range": definition.key in bad})
    return rows


def student_risk_history(*, institution: Institution, student: Student, limit: int = 60) -> list[dict]:
    """Oldest first, for the chart: the latest ``limit`` scores of the student."""
    rows = list(
        prediction_history(institution=institution, student=student)
        .values("created_at", "risk", "band", "model_version__number")[:limit]
    )
    rows.reverse()
    return rows


def student_factor_bars(factors: list[dict]) -> list[dict]:
    """Factors as signed bars: the widths are relative to the largest contribution shown."""
    largest = max((abs(float(f.get("contribution") or 0.0)) for f in factors), default=0.0) or 1.0
    return [
        {**factor, "width": round(100 * abs(float(factor.get("contribution") or 0.0)) / largest, 1),
         "raises": float(factor.get("contribution") or 0.0) > 0}
        for factor in factors
    ]


class WhatIfError(ValueError):
    """A what-if the platform cannot answer; the message says why in words a person can act on."""


def student_what_if(*, institution: Institution, student: Student, changes: dict) -> dict:
    """The student's risk if actionable values changed, through the live model (nothing is stored)."""
    if not changes:
        raise WhatIfError("Change at least one value.")
    definitions = {d.key: d for d in feature_definition_list(institution=institution)}
    not_actionable = [key for key in changes if key in definitions and not definitions[key].actionable]
    if not_actionable:
        raise WhatIfError(f"Only actionable values can be changed: {', '.join(sorted(not_actionable))}.")
    try:
        cleaned = clean_feature_values(definitions.values(), changes)
    except FeatureValuesInvalid as exc:
        raise WhatIfError(str(exc)) from None
    version = model_version_live(institution=institution)
    if version is None:
        raise WhatIfError("There is no live model yet, so risk cannot be recomputed.")
    model = load_model(version)
    try:
        result = model.what_if(student.features, cleaned)
    except ValueError as exc:  # the model's own check of the change (ml.InvalidChangeError)
        raise WhatIfError(str(exc)) from None
    return {
        "risk_before": result["risk_before"],
        "risk_after": result["risk_after"],
        "factors_after": result["factors_after"],
        "changes": cleaned,
        "model_version": version.number,
    }
