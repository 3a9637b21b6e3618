"""An honest promotion gate: compared on students neither model learned from, with intervals.

The retrain scenario is the one the issue found: the institution has no cohorts (so the holdout
is a stratified sample), new students arrive, and the candidate's holdout is drawn afresh, so
most of it was in the live model's training rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from django.urls import reverse
from sklearn.metrics import roc_auc_score

from institutions.scoping import institution_scope
from predictions.frames import feature_specs, training_data
from predictions.model_store import load_model
from predictions.models import ModelStatus, ModelVersion
from predictions.services.training import model_version_train
from students.models import Outcome, Student
from tests.factories import FeatureDefinitionFactory

from .conftest import fast_settings

pytestmark = pytest.mark.django_db


def _add_students(institution, *, known: int, seed: int, prefix: str) -> None:
    """Students whose dropout depends on units, tuition and (weakly) the admission grade; no cohort."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(known):
        units = float(rng.integers(0, 31))
        tuition = bool(rng.random() < 0.75)
        grade = float(np.round(rng.normal(130, 15), 1))
        logit = 1.5 - 0.18 * units + (0.0 if tuition else 1.8) - 0.02 * (grade - 130)
        dropped = rng.random() < 1 / (1 + np.exp(-logit))
        rows.append(Student(
            institution=institution, external_id=f"{prefix}{i:05d}", cohort="",
            outcome=Outcome.DROPPED_OUT if dropped else Outcome.GRADUATED,
            features={"units_approved": units, "tuition_up_to_date": tuition, "admission_grade": grade,
                      "gender": "f" if rng.random() < 0.5 else "m"},
        ))
    Student.objects.for_institution(institution).bulk_create(rows)


@pytest.fixture
def retrained_a(tenant_a, tenant_b):
    """A's live v1 trained on 400 students, then 150 more arrive and v2 is trained; B has v1 only."""
    institution = tenant_a.institution
    FeatureDefinitionFactory(institution=institution, key="admission_grade", label="Admission grade",
                             min_value=0, max_value=200)
    Student.objects.for_institution(institution).update(cohort="")
    _add_students(institution, known=400, seed=11, prefix="P")
    fast_settings(institution)
    with institution_scope(institution):
        tenant_a.live = model_version_train(institution=institution)
    _add_students(institution, known=150, seed=12, prefix="Q")
    with institution_scope(institution):
        tenant_a.candidate = model_version_train(institution=institution)
    return tenant_a


def test_a_retrained_candidate_no_worse_than_live_is_promoted_by_the_gate_and_shown_with_intervals(
        retrained_a, tenant_b, client):
    institution = retrained_a.institution
    live, candidate = retrained_a.live, retrained_a.candidate
    assert live.status == ModelStatus.LIVE  # v1 went live as the first model...
    with institution_scope(institution):
        specs = feature_specs(institution=institution)
        data = training_data(institution=institution, keys=[spec.key for spec in specs])
        stored_live, new = load_model(live), load_model(candidate)
    holdout = pd.Index(new.holdout_index)
    # Most of the candidate's holdout was in the stored live model's training rows...
    live_training = set(range(len(data.outcome) - 150))  # the stored model is refitted on all its rows
    assert len(set(holdout) & live_training) > len(holdout) / 3
    frame, outcome = data.frame.loc[holdout], data.outcome.loc[holdout]
    # The candidate's figure is its development fit's, which never saw its holdout.
    old_drop = stored_live.evaluate(frame, outcome)["roc_auc"] - roc_auc_score(outcome, new.metadata["holdout_risk"])
    # ...so judged as stored it looked better than it is, and the old gate blocked the candidate.
    assert old_drop > 0.01
    check = next(c for c in candidate.gate["checks"] if c["name"] == "auc_vs_live")
    comparison = candidate.gate["comparison"]
    assert comparison["method"] == "live_configuration_refitted"
    assert comparison["rows"] == len(holdout) and comparison["training_rows"] == len(data.outcome) - len(holdout)
    assert check["passed"] is True and candidate.gate["passed"] is True
    assert candidate.status == ModelStatus.LIVE  # ...and v2 replaced it without anyone's help
    assert ModelVersion.objects.for_institution(institution).get(pk=live.pk).status == ModelStatus.RETIRED
    intervals = comparison["intervals"]
    assert intervals["resamples"] == 1000 and intervals["confidence"] == 0.95
    for side in ("candidate", "reference", "difference"):
        entry = intervals[side]["roc_auc"]
        assert entry["low"] <= entry["value"] <= entry["high"]

    brier = next(c for c in candidate.gate["checks"] if c["name"] == "brier_vs_live")
    brier_difference = intervals["difference"]["brier"]
    assert brier["passed"] is True and brier_difference["value"] <= 0.01  # the default allowed increase
    assert f"(95% CI {brier_difference['low']:+.3f} to {brier_difference['high']:+.3f})" in brier["detail"]

    client.force_login(retrained_a.admin)
    page = client.get(reverse("model-detail", args=["alpha", candidate.number])).content.decode()
    difference = intervals["difference"]["roc_auc"]
    assert "students neither model was trained on" in page
    assert f"Risks as well calibrated as live model v{live.number}" in page
    assert f"{difference['low']:.3f} to {difference['high']:.3f}" in page
    assert f"refitted on the candidate's {comparison['training_rows']} training students" in page
    # B's admin cannot see A's comparison.
    client.force_login(tenant_b.admin)
    assert client.get(reverse("model-detail", args=["alpha", candidate.number])).status_code == 404


def test_groups_below_the_minimum_size_are_shown_with_their_size_but_do_not_gate(trained_a, client):
    institution = trained_a.institution
    # Every gap counts against a bound of zero, so any gated group pair would fail the check.
    fast_settings(institution, max_fairness_gap=0.0, max_auc_drop=1.0, min_fairness_group_size=1000)
    with institution_scope(institution):
        candidate = model_version_train(institution=institution)
    fairness = next(c for c in candidate.gate["checks"] if c["name"] == "fairness")
    audit = candidate.fairness["cross_validated"]
    groups = audit["attributes"]["gender"]["groups"]
    assert audit["min_group_size"] == 1000 and all(g["count"] < 1000 for g in groups.values())
    assert fairness["passed"] is True and fairness["gaps"] == []
    assert "reported, not gated" in fairness["detail"]
    assert all(f"Gender {name} ({g['count']})" in fairness["detail"] for name, g in groups.items())

    client.force_login(trained_a.admin)
    page = client.get(reverse("model-detail", args=["alpha", candidate.number])).content.decode()
    assert "too small to gate" in page and "Only groups of at least 1000 students count" in page
    female = groups["Female"]
    low, high = female["intervals"]["tpr"]
    assert f"<td class=\"text-end\">{female['count']}</td>" in page
    assert f"({low:.2f}–{high:.2f})" in page


def test_a_candidate_ranking_as_well_as_live_but_with_worse_calibrated_risks_fails_on_its_brier_score():
    """Risks pushed towards 0 and 1 rank students exactly as before (the same ROC-AUC) but say
    "certain" where the truth is 60%: the AUC check cannot see it, the Brier check does."""
    from ml.intervals import paired_bootstrap
    from predictions.models import PredictionSettings
    from predictions.services.training import AUC_VS_LIVE, BRIER_VS_LIVE, _versus_live_check

    rng = np.random.default_rng(5)
    live_risk = rng.uniform(0.05, 0.95, 600)
    outcome = (rng.random(600) < live_risk).astype(int)  # the live risks are calibrated
    overconfident = 1 / (1 + np.exp(-4 * np.log(live_risk / (1 - live_risk))))  # same order, extreme
    comparison = {"intervals": paired_bootstrap(outcome, overconfident, live_risk, resamples=300, seed=1),
                  "rows": 600, "training_rows": 1400}
    settings = PredictionSettings(max_auc_drop=0.01, max_brier_increase=0.01)
    live = ModelVersion(number=1)

    auc = _versus_live_check(AUC_VS_LIVE, comparison=comparison, live=live, settings=settings)
    brier = _versus_live_check(BRIER_VS_LIVE, comparison=comparison, live=live, settings=settings)

    assert auc["passed"] is True and comparison["intervals"]["difference"]["roc_auc"]["value"] == pytest.approx(0)
    difference = comparison["intervals"]["difference"]["brier"]
    assert difference["value"] > 0.01 and difference["low"] > 0  # clearly worse, not noise
    assert brier["passed"] is False and "allowed increase 0.010" in brier["detail"]
    # The same risks judged against themselves pass.
    same = {**comparison, "intervals": paired_bootstrap(outcome, live_risk, live_risk, resamples=300, seed=1)}
    assert _versus_live_check(BRIER_VS_LIVE, comparison=same, live=live, settings=settings)["passed"] is True
