"""train_model: refusals, determinism, feature choice, holdout and progress."""

from __future__ import annotations

from dataclasses import replace

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from ml import DataInsufficientError, FeatureSpec, TrainingConfig, train_model
from tests.ml.conftest import FAST_CONFIG
from tests.ml.synthetic_students import synthetic_schema, synthetic_students

TINY_CONFIG = TrainingConfig(
    n_folds=2, inner_folds=2, search_iterations=1, learning_rate=0.2, max_boost_rounds=60,
    early_stopping_rounds=10, baselines=(), min_students_per_outcome=30,
)


def test_one_class_data_is_refused_with_counts_in_the_message():
    frame, _, _ = synthetic_students(200, seed=1)
    everyone_completed = pd.Series(0, index=frame.index)
    with pytest.raises(DataInsufficientError, match=r"needs at least 30 students with each outcome; "
                                                    r"has 0 who dropped out and 200 who completed"):
        train_model(frame, everyone_completed, synthetic_schema(), TINY_CONFIG)


def test_tiny_data_is_refused_before_any_training():
    frame, outcome, _ = synthetic_students(40, seed=2)
    with pytest.raises(DataInsufficientError, match=r"needs at least 30 students with each outcome; has \d+"):
        train_model(frame, outcome, synthetic_schema(), TINY_CONFIG)


def test_same_seed_gives_identical_predictions_and_artifact():
    frame, outcome, _ = synthetic_students(400, seed=3)
    first = train_model(frame, outcome, synthetic_schema(), TINY_CONFIG)
    second = train_model(frame, outcome, synthetic_schema(), TINY_CONFIG)
    assert np.array_equal(first.predict_risk(frame), second.predict_risk(frame))
    assert first.sha256 == second.sha256


def test_different_seed_changes_the_model():
    frame, outcome, _ = synthetic_students(400, seed=3)
    first = train_model(frame, outcome, synthetic_schema(), TINY_CONFIG)
    second = train_model(frame, outcome, synthetic_schema(), replace(TINY_CONFIG, seed=7))
    assert not np.array_equal(first.predict_risk(frame), second.predict_risk(frame))


def test_protected_attributes_are_left_out_of_inputs_by_default(trained):
    assert "age" not in trained.feature_keys
    assert "gender" not in trained.feature_keys
    excluded = {entry["feature"]: entry["reason"] for entry in trained.model_card["features"]["excluded"]}
    assert excluded["age"].startswith("protected")


def test_protected_attributes_are_inputs_when_the_institution_opts_in():
    frame, outcome, _ = synthetic_students(400, seed=4)
    model = train_model(frame, outcome, synthetic_schema(), replace(TINY_CONFIG, include_protected=True))
    assert {"age", "gender"} <= set(model.feature_keys)


def test_constant_and_empty_columns_are_excluded_with_a_reason():
    frame, outcome, _ = synthetic_students(400, seed=5)
    frame = frame.assign(campus="main", notes=np.nan)
    schema = [*synthetic_schema(),
              FeatureSpec("campus", "Campus", "categorical"),
              FeatureSpec("notes", "Notes score", "numeric")]
    model = train_model(frame, outcome, schema, TINY_CONFIG)
    excluded = {entry["feature"]: entry["reason"] for entry in model.model_card["features"]["excluded"]}
    assert excluded["campus"] == "the same value for every student"
    assert excluded["notes"] == "no values recorded"
    assert "campus" not in model.feature_keys


def test_cohort_gives_an_out_of_time_holdout_of_the_newest_entry_year(synthetic_data, trained):
    _, _, cohort = synthetic_data
    held = cohort.loc[trained.holdout_index]
    assert set(held.unique()) == {2022}
    assert len(held) == int((cohort == 2022).sum())
    holdout = trained.model_card["evaluation"]["holdout"]
    assert holdout["kind"] == "out_of_time"
    assert trained.holdout_metrics["n"] == len(held)


def test_without_cohort_the_holdout_is_stratified_and_the_rest_is_developed_on():
    frame, outcome, _ = synthetic_students(400, seed=6)
    model = train_model(frame, outcome, synthetic_schema(), TINY_CONFIG)
    held = outcome.loc[model.holdout_index]
    assert len(held) == 80
    assert abs(held.mean() - outcome.mean()) < 0.03
    assert model.model_card["evaluation"]["holdout"]["kind"] == "stratified"


def test_progress_is_reported_from_zero_to_one_in_order():
    frame, outcome, _ = synthetic_students(300, seed=8)
    seen: list[tuple[float, str]] = []
    train_model(frame, outcome, synthetic_schema(), TINY_CONFIG, progress=lambda f, s: seen.append((f, s)))
    fractions = [f for f, _ in seen]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0
    assert fractions == sorted(fractions)
    assert any("fold" in stage for _, stage in seen)


def test_learns_the_known_mechanism_of_the_synthetic_institution(trained):
    auc = trained.model_card["evaluation"]["cross_validated"]["fold_summary"]["roc_auc"]["mean"]
    assert auc > 0.75
    top = [item["feature"] for item in trained.global_importance[:2]]
    assert "units_approved" in top


def test_model_card_reports_baselines_on_the_same_folds(trained):
    comparison = trained.model_card["baselines"]["comparison"]
    assert [row["model"] for row in comparison] == ["lightgbm", *FAST_CONFIG.baselines]
    for name in FAST_CONFIG.baselines:
        folds = trained.model_card["baselines"]["models"][name]["fold_summary"]["roc_auc"]["folds"]
        assert len(folds) == FAST_CONFIG.n_folds


def test_large_data_gets_the_cheaper_search_and_small_data_keeps_the_configured_one():
    config = TrainingConfig()
    assert config.scaled_for(5_000) is config
    large = config.scaled_for(80_000)
    assert large.learning_rate >= 0.1 and large.max_boost_rounds <= 300 and large.inner_folds == 2
    assert large.search_iterations == config.search_iterations and large.seed == config.seed


def test_rare_category_threshold_grows_with_the_data():
    config = TrainingConfig()
    assert config.category_threshold(1_000) == 10
    assert config.category_threshold(100_000) == 200


def test_outcome_and_cohort_are_matched_to_students_by_index_not_position():
    frame, outcome, cohort = synthetic_students(400, seed=9)
    shuffled = np.random.default_rng(0).permutation(len(frame))
    first = train_model(frame, outcome, synthetic_schema(), TINY_CONFIG, cohort=cohort)
    second = train_model(frame, outcome.iloc[shuffled], synthetic_schema(), TINY_CONFIG, cohort=cohort.iloc[shuffled])
    assert first.sha256 == second.sha256


def test_averaged_boosters_score_the_mean_of_their_raw_scores_and_explain_additively():
    from ml.boosting import DEFAULT_CANDIDATE, fit_booster, fit_ensemble, lightgbm_params, member_seeds

    rng = np.random.default_rng(0)
    X = rng.random((300, 4))
    y = (X[:, 0] + rng.random(300) > 1).astype(int)
    params = lightgbm_params(DEFAULT_CANDIDATE, y=y, seed=3, learning_rate=0.1)
    averaged = lgb.Booster(model_str=fit_ensemble(X, y, [(params, 20)] * 3))
    seeds = member_seeds(3, 3)
    singles = [fit_booster(X, y, {**params, "seed": s, "bagging_seed": s, "feature_fraction_seed": s,
                                  "data_random_seed": s}, 20).predict(X, raw_score=True) for s in seeds]
    assert not np.allclose(singles[0], singles[1])  # the seeds grow different trees...
    assert np.allclose(averaged.predict(X, raw_score=True), np.mean(singles, axis=0))  # ...and are averaged
    contributions = averaged.predict(X[:10], pred_contrib=True)
    assert np.allclose(contributions.sum(axis=1), averaged.predict(X[:10], raw_score=True))


def test_the_stored_model_is_refitted_on_every_student_and_the_gate_keeps_the_unseen_holdout_risks():
    frame, outcome, _ = synthetic_students(400, seed=3)
    model = train_model(frame, outcome, synthetic_schema(), TINY_CONFIG)
    final = model.model_card["final_model"]
    assert final["rows"] == len(frame) and final["includes_holdout"]
    held = pd.Index(model.holdout_index)
    stored = np.asarray(model.metadata["holdout_risk"])
    assert len(stored) == len(held)
    assert model.holdout_metrics["brier"] == pytest.approx(np.mean((stored - outcome.loc[held].to_numpy()) ** 2))
    # The stored model has learnt from the holdout too, so its own risks for it differ.
    assert not np.allclose(model.predict_risk(frame.loc[held]), stored)


def test_the_cards_sentences_are_kept_as_data_that_words_its_english(trained):
    from ml.model_card import INTENDED_USE_CODE, OUT_OF_SCOPE_TEXT, limitation_text

    card = trained.model_card
    statements = card["statements"]
    assert statements["intended_use"] == INTENDED_USE_CODE
    assert [OUT_OF_SCOPE_TEXT[code] for code in statements["out_of_scope"]] == card["out_of_scope"]
    labels = {spec.key: spec.label for spec in synthetic_schema()}
    codes = [entry["code"] for entry in statements["limitations"]]
    assert codes[:3] == ["past_students", "calibration_drift", "explanations_not_causes"]
    # The English limitations are these entries worded (fairness groups by key, strong proxies by label).
    assert card["limitations"] == [
        limitation_text(entry, labels if entry["code"] == "strong_proxies" else None)
        for entry in statements["limitations"]]
