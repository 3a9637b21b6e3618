"""Fairness audit numbers on a case small enough to compute by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml import fairness_audit

# Group a: 4 students. Risks 0.9, 0.6, 0.4, 0.1 with outcomes 1, 0, 1, 0; threshold 0.5 flags the
#   first two. TP=1, FP=1, FN=1, TN=1 -> selection 0.5, TPR 0.5, FPR 0.5, precision 0.5,
#   mean risk 0.5, observed 0.5, calibration gap 0.
# Group b: 3 students. Risks 0.8, 0.7, 0.2 with outcomes 1, 1, 0; flags the first two.
#   TP=2, FP=0, TN=1 -> selection 2/3, TPR 1, FPR 0, precision 1,
#   mean risk 1.7/3, observed 2/3, calibration gap 1.7/3 - 2/3 = -0.1.
Y = [1, 0, 1, 0, 1, 1, 0]
RISK = [0.9, 0.6, 0.4, 0.1, 0.8, 0.7, 0.2]
GROUP = pd.Series(["a", "a", "a", "a", "b", "b", "b"])


RATES = ("count", "leavers", "stayers", "flagged", "selection_rate", "tpr", "fpr", "precision", "mean_risk",
         "observed_rate", "calibration_gap")


def _rates(group: dict) -> dict:
    return {key: group[key] for key in RATES}


def test_per_group_rates_match_a_hand_computed_case():
    audit = fairness_audit(Y, RISK, {"gender": GROUP}, threshold=0.5, min_group_size=1)
    groups = audit["attributes"]["gender"]["groups"]
    assert _rates(groups["a"]) == pytest.approx({"count": 4, "leavers": 2, "stayers": 2, "flagged": 2,
                                                 "selection_rate": 0.5, "tpr": 0.5, "fpr": 0.5, "precision": 0.5,
                                                 "mean_risk": 0.5, "observed_rate": 0.5, "calibration_gap": 0.0})
    assert _rates(groups["b"]) == pytest.approx({"count": 3, "leavers": 2, "stayers": 1, "flagged": 2,
                                                 "selection_rate": 2 / 3, "tpr": 1.0, "fpr": 0.0, "precision": 1.0,
                                                 "mean_risk": 1.7 / 3, "observed_rate": 2 / 3,
                                                 "calibration_gap": -0.1})


def test_each_rate_has_a_wilson_interval_on_the_students_it_is_measured_on():
    from ml.intervals import wilson_interval

    groups = fairness_audit(Y, RISK, {"gender": GROUP}, threshold=0.5, min_group_size=1)["attributes"]["gender"][
        "groups"]
    b = groups["b"]["intervals"]
    assert b["tpr"] == pytest.approx(wilson_interval(2, 2))  # 2 of b's 2 leavers caught
    assert b["fpr"] == pytest.approx(wilson_interval(0, 1))  # 0 of its 1 stayer flagged
    assert b["selection_rate"] == pytest.approx(wilson_interval(2, 3))
    low, high = wilson_interval(2, 3)  # observed dropout rate 2/3 against mean shown risk 1.7/3
    assert b["calibration_gap"] == pytest.approx([1.7 / 3 - high, 1.7 / 3 - low])


def test_largest_gap_per_metric_names_the_groups_their_sizes_and_an_interval():
    from ml.intervals import rate_difference_interval

    audit = fairness_audit(Y, RISK, {"gender": GROUP}, threshold=0.5, min_group_size=1)
    gaps = audit["attributes"]["gender"]["largest_gap"]
    tpr = dict(gaps["tpr"])
    assert tpr.pop("interval") == pytest.approx(list(rate_difference_interval(2, 2, 1, 2)))
    assert tpr == pytest.approx({"gap": 0.5, "highest_group": "b", "lowest_group": "a", "highest_size": 2,
                                 "lowest_size": 2, "measured_on": "leavers"})
    assert gaps["fpr"]["gap"] == pytest.approx(0.5)
    assert (gaps["fpr"]["highest_group"], gaps["fpr"]["lowest_group"]) == ("a", "b")
    assert gaps["selection_rate"]["gap"] == pytest.approx(2 / 3 - 0.5)
    assert gaps["selection_rate"]["highest_size"] == 3 and gaps["selection_rate"]["lowest_size"] == 4
    calibration = gaps["calibration_gap"]
    assert calibration["gap"] == pytest.approx(0.1)
    assert calibration["interval"][0] < 0.1 < calibration["interval"][1]


def test_groups_below_the_minimum_size_are_reported_with_their_figures_but_not_in_the_gaps():
    audit = fairness_audit(Y, RISK, {"gender": GROUP}, threshold=0.5, min_group_size=4)
    attribute = audit["attributes"]["gender"]
    assert attribute["small_groups"] == ["b"]
    assert attribute["groups"]["b"]["tpr"] == 1.0 and attribute["groups"]["b"]["count"] == 3
    assert attribute["largest_gap"]["tpr"] is None


def test_the_default_minimum_group_size_is_thirty_students():
    rng = np.random.default_rng(2)
    groups = pd.Series(["big"] * 200 + ["small"] * 29)
    y = rng.integers(0, 2, 229)
    risk = rng.random(229)
    attribute = fairness_audit(y, risk, {"g": groups}, threshold=0.5)["attributes"]["g"]
    assert attribute["small_groups"] == ["small"]
    assert all(gap is None for gap in attribute["largest_gap"].values())
    groups = pd.Series(["big"] * 199 + ["small"] * 30)
    attribute = fairness_audit(y, risk, {"g": groups}, threshold=0.5)["attributes"]["g"]
    assert attribute["small_groups"] == [] and attribute["largest_gap"]["tpr"] is not None


def test_undefined_rates_are_none_not_nan_and_missing_values_form_a_group():
    groups = pd.Series(["x", "x", None, None])
    audit = fairness_audit([0, 0, 1, 0], [0.1, 0.2, 0.9, 0.8], {"g": groups}, threshold=0.5, min_group_size=1)
    x = audit["attributes"]["g"]["groups"]["x"]
    assert x["tpr"] is None and x["precision"] is None
    assert audit["attributes"]["g"]["groups"]["not recorded"]["count"] == 2


def test_trained_model_card_audits_each_protected_attribute(trained):
    fairness = trained.model_card["fairness"]
    assert set(fairness["cross_validated"]["attributes"]) == {"age", "gender"}
    assert fairness["threshold"] == trained.threshold
    ages = fairness["cross_validated"]["attributes"]["age"]["groups"]
    assert len(ages) >= 3  # numeric age is cut into bands named by their values


def test_audit_agrees_with_fairlearn_metricframe_on_random_data():
    from fairlearn.metrics import MetricFrame, false_positive_rate, selection_rate, true_positive_rate
    from sklearn.metrics import precision_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    risk = np.clip(0.3 * y + rng.random(500) * 0.7, 0, 1)
    groups = pd.Series(rng.choice(["a", "b", "c"], 500))
    audit = fairness_audit(y, risk, {"g": groups}, threshold=0.5, min_group_size=1)["attributes"]["g"]["groups"]
    flagged = (risk >= 0.5).astype(int)
    frame = MetricFrame(
        metrics={"selection_rate": selection_rate, "tpr": true_positive_rate, "fpr": false_positive_rate,
                 "precision": precision_score},
        y_true=y, y_pred=flagged, sensitive_features=groups,
    )
    for group, row in frame.by_group.iterrows():
        for metric in ("selection_rate", "tpr", "fpr", "precision"):
            assert audit[group][metric] == pytest.approx(row[metric], abs=1e-12)
