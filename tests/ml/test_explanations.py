"""Explanations: exact TreeSHAP, additive, folded back to features, phrased for people."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shap

from ml.explanation import FAST_EXPLAINER_MIN_ROWS, TreeShapComputer, top_factor_indices


def test_shap_values_plus_base_value_sum_to_the_raw_score(trained, synthetic_data):
    frame = synthetic_data[0].head(300)
    contributions, base = trained.explain_arrays(frame)
    assert np.allclose(contributions.sum(axis=1) + base, trained.raw_score(frame), atol=1e-9)


def test_folded_contributions_sum_like_the_unfolded_ones(trained, synthetic_data):
    frame = synthetic_data[0].head(300)
    unfolded, base, _ = trained.explain_columns(frame)
    folded, folded_base = trained.explain_arrays(frame)
    assert unfolded.shape[1] > folded.shape[1]  # one-hot parts and ratios really were folded
    assert folded_base == base
    assert np.allclose(unfolded.sum(axis=1), folded.sum(axis=1), atol=1e-12)
    # each feature gets exactly the sum of its own parts
    for j, key in enumerate(trained.feature_keys):
        parts = [i for i, column in enumerate(trained.encoder.columns) if column.source == key]
        assert np.allclose(unfolded[:, parts].sum(axis=1), folded[:, j], atol=1e-12)


def test_fast_explainer_equals_shap_tree_explainer_on_a_trained_model(trained, synthetic_data):
    frame = pd.concat([synthetic_data[0]] * 2).head(FAST_EXPLAINER_MIN_ROWS + 100)
    matrix = trained.encoder.transform(frame)
    fast_values, fast_base = TreeShapComputer(trained.booster, n_jobs=2).shap_values(matrix)
    explainer = shap.TreeExplainer(trained.booster)
    reference = np.asarray(explainer.shap_values(matrix))
    assert reference.shape == fast_values.shape
    assert np.max(np.abs(reference - fast_values)) < 1e-6
    assert abs(float(np.ravel(explainer.expected_value)[-1]) - fast_base) < 1e-9


def test_small_batches_give_the_same_values_as_large_ones(trained, synthetic_data):
    frame = pd.concat([synthetic_data[0]] * 2).head(FAST_EXPLAINER_MIN_ROWS + 10)
    large, _ = trained.explain_arrays(frame)
    small, _ = trained.explain_arrays(frame.head(10))
    assert np.max(np.abs(large[:10] - small)) < 1e-9


def test_rows_with_missing_values_are_explained_exactly(trained, synthetic_data):
    frame = pd.concat([synthetic_data[0]] * 2).head(FAST_EXPLAINER_MIN_ROWS + 10).copy()
    frame["admission_grade"] = np.nan
    frame.loc[frame.index[::3], "programme"] = None
    contributions, base = trained.explain_arrays(frame)
    assert np.allclose(contributions.sum(axis=1) + base, trained.raw_score(frame), atol=1e-9)


def test_explanation_has_risk_base_value_and_readable_factors(trained, synthetic_data):
    frame = synthetic_data[0].head(20)
    explanations = trained.explain(frame, top_k=3)
    assert len(explanations) == 20
    risks = trained.predict_risk(frame)
    for explanation, risk in zip(explanations, risks, strict=True):
        assert explanation["risk"] == pytest.approx(risk)
        assert set(explanation["contributions"]) == set(trained.feature_keys)
        assert len(explanation["factors"]) == 3
        magnitudes = [abs(f["contribution"]) for f in explanation["factors"]]
        assert magnitudes == sorted(magnitudes, reverse=True)
        for factor in explanation["factors"]:
            assert factor["direction"] == ("raises" if factor["contribution"] > 0 else "lowers")
            assert f"{factor['direction']} risk by " in factor["text"] and factor["text"].endswith("points")


def test_count_out_of_another_count_reads_as_n_of_m(trained, synthetic_data):
    frame = synthetic_data[0]
    row = frame[(frame["units_approved"] == 2) & (frame["units_enrolled"] == 6)].head(1)
    assert len(row) == 1
    factors = trained.explain(row, top_k=10)[0]["factors"]
    approved = next(f for f in factors if f["feature"] == "units_approved")
    assert approved["display_value"] == "2 of 6"
    assert approved["text"].startswith(f"2 of 6 first-semester units approved — {approved['direction']} risk by ")
    assert approved["actionable"] is True


def test_categorical_factor_uses_the_schema_label_for_the_value(trained, synthetic_data):
    frame = synthetic_data[0]
    row = frame[frame["programme"] == "engineering"].head(1)
    factors = trained.explain(row, top_k=10)[0]["factors"]
    programme = next(f for f in factors if f["feature"] == "programme")
    assert programme["display_value"] == "Engineering"
    assert programme["text"].startswith("Programme: Engineering — ")


def test_unseen_category_at_scoring_time_is_scored_not_rejected(trained, synthetic_data):
    frame = synthetic_data[0].head(5).copy()
    frame["programme"] = ["veterinary", "nursing", None, 12345, "law"]
    risk = trained.predict_risk(frame)
    assert np.all((risk > 0) & (risk < 1))
    explanation = trained.explain(frame.head(1), top_k=10)[0]
    assert explanation["raw_score"] == pytest.approx(trained.raw_score(frame.head(1))[0])


def test_unseen_category_scores_like_a_rare_one(trained, synthetic_data):
    frame = synthetic_data[0].head(1).copy()
    unseen = frame.assign(programme="veterinary")
    other_unseen = frame.assign(programme="astronomy")
    assert trained.predict_risk(unseen)[0] == trained.predict_risk(other_unseen)[0]


def test_missing_columns_at_scoring_time_count_as_not_recorded(trained, synthetic_data):
    frame = synthetic_data[0].head(3).drop(columns=["admission_grade"])
    explanation = trained.explain(frame, top_k=10)[0]
    assert np.isfinite(explanation["risk"])
    grade = [f for f in explanation["factors"] if f["feature"] == "admission_grade"]
    assert all(f["display_value"] == "not recorded" for f in grade)


def test_top_factor_indices_picks_largest_magnitudes_in_order():
    values = np.array([[0.1, -0.5, 0.3, 0.0], [2.0, 0.0, -3.0, 1.0]])
    assert top_factor_indices(values, 2).tolist() == [[1, 2], [2, 0]]


def test_an_empty_batch_gives_empty_results_not_an_error(trained, synthetic_data):
    empty = synthetic_data[0].iloc[:0]
    assert trained.predict_risk(empty).shape == (0,)
    assert trained.explain(empty) == []
    contributions, base = trained.explain_arrays(empty)
    assert contributions.shape == (0, len(trained.feature_keys)) and np.isfinite(base)
