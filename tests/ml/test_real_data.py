"""On the real UCI data: the fast explainer is exact, and the model learns the known signal.

Skipped (with the reason) when neither the repo's demo copy nor the shared data is present.
"""

from __future__ import annotations

import numpy as np
import pytest
import shap

from bench._data import load_uci, uci_schema
from ml import train_model
from ml.explanation import FAST_EXPLAINER_MIN_ROWS, TreeShapComputer
from tests.ml.conftest import FAST_CONFIG, uci_csv_path


@pytest.fixture(scope="module")
def uci_model():
    frame, outcome = load_uci(uci_csv_path())
    model = train_model(frame, outcome, uci_schema(), FAST_CONFIG)
    return model, frame, outcome


def test_fast_explainer_equals_shap_on_a_model_trained_on_real_uci_data(uci_model):
    model, frame, _ = uci_model
    assert len(frame) >= FAST_EXPLAINER_MIN_ROWS
    matrix = model.encoder.transform(frame)
    fast, fast_base = TreeShapComputer(model.booster, n_jobs=2).shap_values(matrix)
    explainer = shap.TreeExplainer(model.booster)
    reference = np.asarray(explainer.shap_values(matrix))
    assert np.max(np.abs(reference - fast)) < 1e-6
    assert abs(float(np.ravel(explainer.expected_value)[-1]) - fast_base) < 1e-9
    assert np.allclose(fast.sum(axis=1) + fast_base, model.raw_score(frame), atol=1e-9)


def test_uci_model_ranks_dropouts_well_on_its_holdout_and_uses_semester_results(uci_model):
    model, _, _ = uci_model
    assert model.holdout_metrics["roc_auc"] > 0.9
    top_features = [item["feature"] for item in model.global_importance[:5]]
    assert any(key.startswith("units_2nd_approved") or key.startswith("units_1st_approved") for key in top_features)
    assert not {"gender", "age_at_enrolment", "nationality", "marital_status", "international"} & set(
        model.feature_keys
    )
