import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from interventions.effectiveness import MIN_SAMPLE, effectiveness_report, wilson_interval
from students.models import Outcome
from tests.factories import InterventionFactory, InterventionTypeFactory, StudentFactory

from .conftest import record_run

pytestmark = pytest.mark.django_db


def test_wilson_interval_matches_the_textbook_values():
    low, high = wilson_interval(10, 100)
    assert low == pytest.approx(0.0552, abs=1e-4) and high == pytest.approx(0.1744, abs=1e-4)
    assert wilson_interval(0, 20)[0] == 0.0 and wilson_interval(0, 0) is None


def build_cohort(tenant, *, treated: int, treated_dropped: int, controls: int, controls_dropped: int, risk=0.7):
    """Students scored 30 days ago at ``risk``; the treated got a meeting 20 days ago and a lower score after."""
    now = timezone.now()
    meeting = InterventionTypeFactory(institution=tenant.institution, key="meeting", label="Meeting")
    call = InterventionTypeFactory(institution=tenant.institution, key="call", label="Phone call")

    def make(n, dropped, prefix):
        return [StudentFactory(institution=tenant.institution, external_id=f"{prefix}{i:04d}",
                               outcome=Outcome.DROPPED_OUT if i < dropped else Outcome.GRADUATED)
                for i in range(n)]

    reached, others = make(treated, treated_dropped, "T"), make(controls, controls_dropped, "C")
    record_run(tenant.institution, dict.fromkeys(reached + others, risk), when=now - datetime.timedelta(days=30),
               snapshot=False)
    for s in reached:
        InterventionFactory(institution=tenant.institution, student=s, intervention_type=meeting,
                            date=(now - datetime.timedelta(days=20)).date())
    record_run(tenant.institution, dict.fromkeys(reached, risk - 0.2), when=now - datetime.timedelta(days=5),
               snapshot=False)
    return meeting, call


def test_report_compares_reached_students_with_comparable_ones_and_concludes_when_clear(tenants):
    a, b = tenants
    build_cohort(a, treated=40, treated_dropped=10, controls=40, controls_dropped=30)
    build_cohort(b, treated=5, treated_dropped=5, controls=5, controls_dropped=0)
    effects = {e.intervention_type.key: e for e in effectiveness_report(institution=a.institution)}
    meeting = effects["meeting"]
    assert meeting.interventions == 40 and meeting.reached == 40
    assert meeting.risk_before == pytest.approx(0.7) and meeting.risk_after == pytest.approx(0.5)
    assert meeting.matched_reached == 40 and meeting.comparison_students == 40
    assert meeting.dropout_rate == pytest.approx(0.25) and meeting.comparison_rate == pytest.approx(0.75)
    assert meeting.dropout_interval == pytest.approx(wilson_interval(10, 40))
    half = 1.959964 * (0.75 * 0.25 / 40) ** 0.5
    assert meeting.comparison_interval == pytest.approx((0.75 - half, 0.75 + half))
    assert meeting.enough and "less often" in meeting.verdict
    assert effects["call"].interventions == 0 and effects["call"].verdict == "Not used yet."


def test_report_declines_to_conclude_below_the_minimum_sample(client, tenants):
    a, _ = tenants
    build_cohort(a, treated=MIN_SAMPLE - 1, treated_dropped=0, controls=60, controls_dropped=50)
    effects = {e.intervention_type.key: e for e in effectiveness_report(institution=a.institution)}
    assert not effects["meeting"].enough
    assert effects["meeting"].verdict.startswith("Not enough students to conclude")
    client.force_login(a.viewer)
    page = client.get(reverse("effectiveness", args=["alpha"]))
    assert b"This is observational" in page.content and b"Not enough students to conclude" in page.content


def test_students_without_a_prediction_at_the_time_are_left_out_of_the_comparison(tenants):
    a, _ = tenants
    meeting = InterventionTypeFactory(institution=a.institution, key="meeting", label="Meeting")
    unscored = StudentFactory(institution=a.institution, external_id="U1", outcome=Outcome.DROPPED_OUT)
    InterventionFactory(institution=a.institution, student=unscored, intervention_type=meeting)
    effect = next(e for e in effectiveness_report(institution=a.institution) if e.intervention_type == meeting)
    assert effect.reached == 1 and effect.risk_before is None and effect.matched_reached == 0
    assert effect.unmatched_reached == 1 and not effect.enough
