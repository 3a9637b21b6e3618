"""Composite reads of the advisor's pages: the worklists (flagged list, caseload), the dashboard and the
student profile. They join what the apps below own (students, predictions, interventions) and stay
one SQL query per list (annotations are correlated subqueries), so paging and sorting happen in SQL
and a page's query count never grows with the number of rows it shows."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery, Window
from django.utils import timezone
from django.utils.translation import gettext

from institutions.models import Institution
from interventions.models import Alert, AlertStatus, Flag, Intervention, InterventionStatus, RiskSnapshot
from interventions.selectors import flagged_condition
from predictions.factor_sentences import institution_factors
from predictions.model_store import load_model
from predictions.models import Prediction
from predictions.selectors import latest_predictions, model_version_live, prediction_history
from students.feature_values import FeatureValuesInvalid, clean_feature_values, out_of_range_keys
from students.models import Student
from students.selectors import current_students, feature_definition_list

# --- the worklists --------------------------------------------------------------------------

def annotate_worklist(students: QuerySet[Student], *, institution: Institution,
                      today: datetime.date | None = None) -> QuerySet[Student]:
    """Add what an advisor needs on each row as correlated subqueries: last contact, open
    interventions, the next follow-up and whether it is overdue, and whether a flag or an alert is open."""
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
        has_open_alert=Exists(
            Alert.objects.for_institution(institution).filter(student_id=OuterRef("pk")).exclude(
                status=AlertStatus.CLOSED)
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
            display = gettext("Yes") if value else gettext("No")
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
    """Factors as signed bars, relative to the largest shown: in points of the shown risk, or in
    log-odds for predictions stored before factors carried points (their text says no points)."""
    unit = "points" if factors and all("points" in f for f in factors) else "contribution"
    size = [float(f.get(unit) or 0.0) for f in factors]
    largest = max((abs(value) for value in size), default=0.0) or 1.0
    return [
        {**factor, "width": round(100 * abs(value) / largest, 1),
         "raises": float(factor.get("contribution") or 0.0) > 0, "in_points": unit == "points"}
        for factor, value in zip(factors, size, strict=True)
    ]


def student_risk_breakdown(latest) -> dict | None:
    """Where the shown risk comes from: the model's base risk, the shown factors' points, and all
    the other values together, adding up to the shown risk (None for older predictions, whose
    model or factors carry no points)."""
    if latest is None:
        return None
    base_risk = ((latest.model_version.model_card or {}).get("explanations") or {}).get("base_risk")
    return risk_breakdown(risk=latest.prediction.risk, base_risk=base_risk, factors=latest.prediction.factors or [])


def risk_breakdown(*, risk: float, base_risk: float | None, factors: list[dict]) -> dict | None:
    """The model's base risk, the shown factors' points and all other values' points of ``risk``."""
    if base_risk is None or not factors or not all("points" in f for f in factors):
        return None
    shown = sum(float(f["points"]) for f in factors)
    total = 100 * (float(risk) - float(base_risk))
    return {"base_risk": float(base_risk), "shown_points": shown, "other_points": total - shown, "total_points": total,
            "risk": float(risk)}


class WhatIfError(ValueError):
    """A what-if the platform cannot answer; the message says why in words a person can act on."""


def student_what_if(*, institution: Institution, student: Student, changes: dict) -> dict:
    """The student's risk if actionable values changed, through the live model (nothing is stored)."""
    if not changes:
        raise WhatIfError(gettext("Change at least one value."))
    definitions = {d.key: d for d in feature_definition_list(institution=institution)}
    not_actionable = [key for key in changes if key in definitions and not definitions[key].actionable]
    if not_actionable:
        raise WhatIfError(gettext("Only actionable values can be changed: %(keys)s.") % {
            "keys": ", ".join(sorted(not_actionable))})
    try:
        cleaned = clean_feature_values(definitions.values(), changes)
    except FeatureValuesInvalid as exc:
        raise WhatIfError(str(exc)) from None
    version = model_version_live(institution=institution)
    if version is None:
        raise WhatIfError(gettext("There is no live model yet, so risk cannot be recomputed."))
    model = load_model(version)
    try:
        result = model.what_if(student.features, cleaned)
    except ValueError as exc:  # the model's own check of the change (ml.InvalidChangeError)
        raise WhatIfError(str(exc)) from None
    return {
        "risk_before": result["risk_before"],
        "risk_after": result["risk_after"],
        "factors_after": institution_factors(institution=institution, factors=result["factors_after"]),
        "changes": cleaned,
        "model_version": version.number,
    }
