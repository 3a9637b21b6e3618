"""Calibration: fitted out of fold, chosen by CV, and never worse than the raw scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit

from ml.calibration import Calibrator, choose_calibrator, fit_isotonic, fit_sigmoid, newest_cohort_rows


def _overconfident_scores(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Raw log-odds three times too extreme, as a boosted model with many rounds produces."""
    rng = np.random.default_rng(seed)
    true_logit = rng.normal(0, 1.5, size=n)
    y = (rng.random(n) < expit(true_logit)).astype(int)
    return 3.0 * true_logit, y


def test_calibration_improves_the_brier_score_of_overconfident_scores_on_new_rows():
    raw_train, y_train = _overconfident_scores(3000, seed=0)
    raw_test, y_test = _overconfident_scores(3000, seed=1)
    calibrator, report = choose_calibrator(raw_train, y_train, methods=("sigmoid", "isotonic"), seed=0)
    before = np.mean((expit(raw_test) - y_test) ** 2)
    after = np.mean((calibrator.apply(raw_test) - y_test) ** 2)
    assert after < before - 0.005
    assert report["method"] in {"sigmoid", "isotonic"}


def test_calibration_keeps_the_brier_score_of_already_calibrated_scores():
    rng = np.random.default_rng(3)
    logit = rng.normal(0, 1.5, size=6000)
    y = (rng.random(6000) < expit(logit)).astype(int)
    calibrator, _ = choose_calibrator(logit[:3000], y[:3000], methods=("sigmoid", "isotonic"), seed=0)
    before = np.mean((expit(logit[3000:]) - y[3000:]) ** 2)
    after = np.mean((calibrator.apply(logit[3000:]) - y[3000:]) ** 2)
    assert after <= before + 0.002


def test_trained_model_calibration_does_not_worsen_out_of_fold_brier(trained):
    calibration = trained.model_card["calibration"]
    assert calibration["brier_calibrated_pooled"] <= calibration["brier_uncalibrated_pooled"] + 1e-3


def test_sigmoid_recovers_a_known_scaling():
    raw, y = _overconfident_scores(20000, seed=5)
    calibrator = fit_sigmoid(raw, y)
    assert abs(calibrator.params["slope"] - 1 / 3) < 0.03
    assert abs(calibrator.params["intercept"]) < 0.05


def test_calibrators_survive_a_json_round_trip_exactly():
    raw, y = _overconfident_scores(500, seed=6)
    for calibrator in (fit_sigmoid(raw, y), fit_isotonic(raw, y)):
        again = Calibrator.from_dict(calibrator.to_dict())
        assert np.array_equal(again.apply(raw), calibrator.apply(raw))


def test_isotonic_risk_never_claims_zero_or_certain_dropout():
    raw, y = _overconfident_scores(500, seed=7)
    risk = fit_isotonic(raw, y).apply(np.array([-50.0, 50.0]))
    assert 0 < risk[0] < 0.01 and 0.99 < risk[1] < 1


def test_the_calibrator_is_fitted_on_the_newest_cohorts_holding_enough_students_else_on_every_row():
    cohort = pd.Series(["2021"] * 400 + ["2022"] * 200 + ["2023"] * 150)
    y = np.tile([0, 1, 0], 250)
    mask, info = newest_cohort_rows(cohort, y, min_rows=300, min_each=30)
    assert info["kind"] == "newest_cohorts" and info["cohorts"] == ["2022", "2023"] and info["rows"] == 350
    assert mask.sum() == 350 and not mask[:400].any()
    mask, info = newest_cohort_rows(cohort, y, min_rows=100, min_each=30)
    assert info["cohorts"] == ["2023"] and mask.sum() == 150
    # Enough only with every cohort, or no cohort at all: every row, as without cohorts.
    for values in (cohort, None):
        mask, info = newest_cohort_rows(values, y, min_rows=700, min_each=30)
        assert mask is None and info["kind"] == "all_rows" and info["rows"] == 750
