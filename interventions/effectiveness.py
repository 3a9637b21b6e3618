"""The effectiveness report: did students who received an intervention fare better than comparable
students who did not? Observational, so it compares like with like on predicted risk and shows
its uncertainty; below a minimum sample it declines to conclude.

Method, per intervention type:
- *Reached*: students with at least one intervention of the type. Their *risk before* is the latest
  stored prediction on or before their first such intervention; *risk after* the first one after it.
- *Outcome*: among reached students whose outcome is known (dropped out vs. graduated or
  transferred), the share who dropped out, with a Wilson 95% interval.
- *Comparison*: students with a known outcome who never received the type, with their predicted
  risk at the same point in time (the latest prediction on or before the median date of the type's
  interventions, else their first). Both groups are cut into risk strata; the comparison dropout
  rate of each stratum is weighted by how many reached students fall in it (direct
  standardisation), so a type given mostly to high-risk students is compared with high-risk
  students. Strata without students on both sides are left out and counted.
Everything is counted in SQL, grouped by stratum; Python only combines a handful of numbers.
"""

from __future__ import annotations

import datetime
import itertools
import math
from dataclasses import dataclass, field

from django.db.models import Avg, Case, Count, Exists, IntegerField, OuterRef, Q, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from institutions.models import Institution
from predictions.models import Prediction
from students.models import Outcome, Student

from .models import Intervention, InterventionType

MIN_SAMPLE = 30
STRATA = (0.0, 0.2, 0.4, 0.6, 0.8, 1.000001)
Z95 = 1.959964
KNOWN = (Outcome.DROPPED_OUT, Outcome.GRADUATED, Outcome.TRANSFERRED)


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval for a proportion; None when there is nothing to estimate."""
    if n <= 0:
        return None
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def _stratum(expression: str) -> Case:
    return Case(
        *[When(**{f"{expression}__gte": low, f"{expression}__lt": high}, then=Value(i))
          for i, (low, high) in enumerate(itertools.pairwise(STRATA))],
        default=Value(None), output_field=IntegerField(),
    )


@dataclass
class TypeEffect:
    intervention_type: InterventionType
    interventions: int = 0
    reached: int = 0
    risk_before: float | None = None
    risk_after: float | None = None
    with_before_and_after: int = 0
    known_outcome: int = 0
    dropped_out: int = 0
    dropout_rate: float | None = None
    dropout_interval: tuple[float, float] | None = None
    matched_reached: int = 0
    comparison_students: int = 0
    comparison_rate: float | None = None
    comparison_interval: tuple[float, float] | None = None
    unmatched_reached: int = 0
    enough: bool = False
    verdict: str = ""
    strata: list[dict] = field(default_factory=list)


def _verdict(effect: TypeEffect) -> str:
    if not effect.enough:
        return ngettext("Not enough students to conclude: %(count)s reached student with a known outcome and a "
                        "comparable group, and at least %(minimum)s are needed on each side.",
                        "Not enough students to conclude: %(count)s reached students with a known outcome and a "
                        "comparable group, and at least %(minimum)s are needed on each side.",
                        effect.matched_reached) % {"count": effect.matched_reached, "minimum": MIN_SAMPLE}
    low, high = effect.dropout_interval
    c_low, c_high = effect.comparison_interval
    if high < c_low:
        return _("Reached students dropped out less often than comparable students (the intervals do not overlap).")
    if low > c_high:
        return _("Reached students dropped out more often than comparable students (the intervals do not overlap).")
    return _("No clear difference from comparable students: the intervals overlap.")


def effectiveness_report(*, institution: Institution, today: datetime.date | None = None) -> list[TypeEffect]:
    students = Student.objects.for_institution(institution)
    predictions = Prediction.objects.for_institution(institution)
    effects: list[TypeEffect] = []
    types = InterventionType.objects.for_institution(institution).order_by("position", "label", "id")
    interventions = Intervention.objects.for_institution(institution)
    for intervention_type in types:
        effect = TypeEffect(intervention_type=intervention_type)
        of_type = interventions.filter(intervention_type=intervention_type)
        effect.interventions = of_type.count()
        if not effect.interventions:
            effect.verdict = _("Not used yet.")
            effects.append(effect)
            continue
        first_date = of_type.filter(student_id=OuterRef("pk")).order_by("date", "id").values("date")[:1]
        reached = students.filter(Exists(of_type.filter(student_id=OuterRef("pk")))).annotate(first_date=Subquery(
            first_date))
        before = predictions.filter(student_id=OuterRef("pk"), created_at__date__lte=OuterRef("first_date")) \
            .order_by("-created_at", "-id").values("risk")[:1]
        after = predictions.filter(student_id=OuterRef("pk"), created_at__date__gt=OuterRef("first_date")) \
            .order_by("created_at", "id").values("risk")[:1]
        reached = reached.annotate(risk_before=Subquery(before), risk_after=Subquery(after))
        figures = reached.aggregate(
            reached_count=Count("id"), avg_before=Avg("risk_before"),
            avg_after=Avg("risk_after", filter=Q(risk_before__isnull=False)),
            with_both=Count("id", filter=Q(risk_before__isnull=False, risk_after__isnull=False)),
            known=Count("id", filter=Q(outcome__in=KNOWN)),
            dropped=Count("id", filter=Q(outcome=Outcome.DROPPED_OUT)),
            known_unscored=Count("id", filter=Q(outcome__in=KNOWN, risk_before__isnull=True)),
        )
        # Reached students with a known outcome but no score before the intervention cannot be matched.
        effect.unmatched_reached = figures["known_unscored"]
        effect.reached = figures["reached_count"]
        effect.risk_before, effect.risk_after = figures["avg_before"], figures["avg_after"]
        effect.with_before_and_after = figures["with_both"]
        effect.known_outcome, effect.dropped_out = figures["known"], figures["dropped"]
        if effect.known_outcome:
            effect.dropout_rate = effect.dropped_out / effect.known_outcome
            effect.dropout_interval = wilson_interval(effect.dropped_out, effect.known_outcome)

        treated_strata = {
            row["stratum"]: row for row in reached.filter(outcome__in=KNOWN, risk_before__isnull=False)
            .annotate(stratum=_stratum("risk_before")).order_by().values("stratum")
            .annotate(n=Count("id"), dropped=Count("id", filter=Q(outcome=Outcome.DROPPED_OUT)))
        }
        dates = sorted(of_type.values_list("date", flat=True))
        reference = dates[len(dates) // 2]
        at_reference = predictions.filter(student_id=OuterRef("pk"), created_at__date__lte=reference) \
            .order_by("-created_at", "-id").values("risk")[:1]
        earliest = predictions.filter(student_id=OuterRef("pk")).order_by("created_at", "id").values("risk")[:1]
        comparison = (
            students.filter(outcome__in=KNOWN).exclude(Exists(of_type.filter(student_id=OuterRef("pk"))))
            .annotate(reference_risk=Coalesce(Subquery(at_reference), Subquery(earliest)))
            .filter(reference_risk__isnull=False)
            .annotate(stratum=_stratum("reference_risk")).order_by().values("stratum")
            .annotate(n=Count("id"), dropped=Count("id", filter=Q(outcome=Outcome.DROPPED_OUT)))
        )
        comparison_strata = {row["stratum"]: row for row in comparison}
        matched_n = matched_dropped = 0
        expected = variance = 0.0
        comparison_total = 0
        for stratum, treated in sorted(treated_strata.items(), key=lambda item: (item[0] is None, item[0])):
            control = comparison_strata.get(stratum)
            row = {"stratum": stratum, "range": _stratum_label(stratum), "reached": treated["n"],
                   "reached_dropped": treated["dropped"], "comparison": control["n"] if control else 0,
                   "comparison_dropped": control["dropped"] if control else 0}
            effect.strata.append(row)
            if stratum is None or not control:
                effect.unmatched_reached += treated["n"]
                continue
            rate = control["dropped"] / control["n"]
            matched_n += treated["n"]
            matched_dropped += treated["dropped"]
            comparison_total += control["n"]
            expected += treated["n"] * rate
            variance += treated["n"] ** 2 * rate * (1 - rate) / control["n"]
        effect.matched_reached = matched_n
        effect.comparison_students = comparison_total
        if matched_n:
            effect.comparison_rate = expected / matched_n
            half = Z95 * math.sqrt(variance) / matched_n
            effect.comparison_interval = (max(0.0, effect.comparison_rate - half),
                                          min(1.0, effect.comparison_rate + half))
            # The reached side of the comparison uses the matched students only.
            effect.dropout_rate = matched_dropped / matched_n
            effect.dropout_interval = wilson_interval(matched_dropped, matched_n)
        effect.enough = matched_n >= MIN_SAMPLE and comparison_total >= MIN_SAMPLE
        effect.verdict = _verdict(effect)
        effects.append(effect)
    return effects


def _stratum_label(stratum: int | None) -> str:
    if stratum is None:
        return "no prediction"
    low, high = STRATA[stratum], min(1.0, STRATA[stratum + 1])
    return f"{round(low * 100)}–{round(high * 100)}%"
