"""Factors in the units shown: percentage points of the calibrated risk, and no sentence that
contradicts what was observed for such students (issue 20, item 6)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml import load_artifact
from ml.calibration import Calibrator
from ml.explanation import format_points, observed_rate_for, observed_rates, risk_points


@pytest.fixture(scope="module")
def with_rates(trained, synthetic_data):
    """A copy of the shared model that has recorded its training students' observed rates."""
    frame, outcome, _ = synthetic_data
    model = load_artifact(trained.to_artifact())
    model.record_observed_rates(frame, outcome)
    return load_artifact(model.to_artifact())  # what scoring reads back from the registry


def test_points_of_every_feature_add_up_to_shown_risk_minus_base_risk(trained, synthetic_data):
    frame = synthetic_data[0].head(400)
    explanations = trained.explain(frame, top_k=3)
    risks = trained.predict_risk(frame)
    for explanation, risk in zip(explanations, risks, strict=True):
        assert explanation["base_risk"] == pytest.approx(trained.base_risk)
        assert sum(explanation["points"].values()) == pytest.approx(100 * (risk - trained.base_risk), abs=1e-9)
        for factor in explanation["factors"]:
            assert factor["points"] == explanation["points"][factor["feature"]]
            assert np.sign(factor["points"]) == np.sign(factor["contribution"])
    # Log-odds stay beside the points.
    assert all(set(e["contributions"]) == set(e["points"]) for e in explanations)


def test_the_same_log_odds_are_worth_fewer_points_near_certainty():
    """Sigmoid calibration: +1 log-odds from 0 moves the risk by ~23 points, from 5 by well under 1."""
    calibrator = Calibrator("sigmoid", {"slope": 1.0, "intercept": 0.0})
    contributions = np.array([[1.0, 0.0], [1.0, 5.0]])
    raw = contributions.sum(axis=1)
    risk = calibrator.apply(raw)
    points = risk_points(contributions, raw, 0.0, risk, float(calibrator.apply(np.array([0.0]))[0]),
                         calibrator.apply)
    assert points[0, 0] == pytest.approx(100 * (risk[0] - 0.5))
    assert points.sum(axis=1) == pytest.approx(100 * (risk - 0.5))
    assert points[1, 0] < 10 < points[0, 0]


def test_a_student_at_the_base_value_gets_finite_points_from_the_local_slope():
    calibrator = Calibrator("sigmoid", {"slope": 2.0, "intercept": -1.0})
    contributions = np.array([[0.7, -0.7, 0.0]])
    base_risk = float(calibrator.apply(np.array([0.3]))[0])
    points = risk_points(contributions, np.array([0.3]), 0.3, np.array([base_risk]), base_risk, calibrator.apply)
    slope = 2.0 * base_risk * (1 - base_risk)  # the sigmoid's derivative there
    assert points[0] == pytest.approx([70 * slope, -70 * slope, 0.0], rel=1e-4)


def test_points_are_written_as_a_person_reads_them():
    assert format_points(12.34) == "12 points"
    assert format_points(-0.42) == "0.4 points"
    assert format_points(1.0) == "1 point"
    assert format_points(0.01) == "under 0.1 points"


def test_observed_rates_group_counts_by_quantile_ratio_and_category(synthetic_data):
    from tests.ml.synthetic_students import synthetic_schema
    frame, outcome, _ = synthetic_data
    specs = {spec.key: spec for spec in synthetic_schema()}
    rates = observed_rates(frame, outcome, list(specs.values()))
    assert rates["overall"] == [len(frame), int(outcome.sum())]
    grade = rates["features"]["admission_grade"]
    assert sum(count for count, _ in grade["bins"]) + grade["missing"][0] == len(frame)
    assert grade["missing"][0] == int(frame["admission_grade"].isna().sum())
    nursing = frame["programme"] == "nursing"
    assert rates["features"]["programme"]["groups"]["nursing"] == [int(nursing.sum()), int(outcome[nursing].sum())]
    # "2 of 4" is compared with students who passed about half: the group is found by the ratio.
    half = observed_rate_for(rates, specs["units_approved"], 2, 4)
    same_half = observed_rate_for(rates, specs["units_approved"], 3, 6)
    assert half == same_half and half["count"] > 0


def test_no_factor_says_lowers_risk_for_values_whose_students_leave_more_often(with_rates, synthetic_data):
    """The issue's example: a low admission grade "lowers risk" while such students leave far more
    often than average. Checked against the training data directly, not through the stored rates."""
    frame, outcome, _ = synthetic_data
    low_grade = frame["admission_grade"] <= frame["admission_grade"].quantile(0.2)
    assert outcome[low_grade].mean() > outcome.mean() + 0.08  # such students really do leave more often
    explanations = with_rates.explain(frame[low_grade], top_k=len(with_rates.feature_keys))
    grade_factors = [f for e in explanations for f in e["factors"] if f["feature"] == "admission_grade"]
    lowering = [f for f in grade_factors if f["contribution"] < 0]
    assert lowering, "the model must give some of these students a negative admission-grade value"
    assert not [f for f in lowering if "lowers risk" in f["text"]]
    for factor in lowering:
        assert factor["observed"]["contradicts"] is True
        assert "given the rest of this record (on its own a warning sign:" in factor["text"]
        assert factor["observed"]["rate"] > factor["observed"]["overall_rate"]
    # A factor in line with what was observed keeps its plain sentence.
    plain = [f for e in explanations for f in e["factors"] if not f["observed"]["contradicts"]]
    assert plain and all(f"{f['direction']} risk by " in f["text"] for f in plain)


def test_rates_and_base_risk_travel_in_the_artifact_and_on_the_card(with_rates, trained):
    card = with_rates.model_card["explanations"]
    assert card["base_risk"] == pytest.approx(trained.base_risk)
    assert card["observed_rate_students"] == 1200
    assert with_rates.to_artifact() == load_artifact(with_rates.to_artifact()).to_artifact()


def test_a_model_stored_before_observed_rates_still_explains_with_points(trained, synthetic_data):
    assert "observed_rates" not in trained.metadata
    explanation = trained.explain(pd.DataFrame(synthetic_data[0].head(1)), top_k=3)[0]
    assert all("observed" not in f and "points" in f for f in explanation["factors"])
