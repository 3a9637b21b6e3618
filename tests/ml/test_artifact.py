"""Artifacts: JSON (no pickle), sha256, and identical behaviour after a round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ml import ArtifactFormatError, load_artifact


def test_artifact_round_trip_gives_identical_predictions_and_explanations(trained, synthetic_data):
    frame = synthetic_data[0]
    restored = load_artifact(trained.to_artifact())
    assert np.array_equal(restored.predict_risk(frame), trained.predict_risk(frame))
    assert restored.explain(frame.head(5)) == trained.explain(frame.head(5))
    assert restored.sha256 == trained.sha256
    assert restored.feature_keys == trained.feature_keys
    assert restored.threshold == trained.threshold
    assert restored.holdout_index == trained.holdout_index
    assert restored.model_card == trained.model_card


def test_artifact_is_a_single_json_document_with_the_lightgbm_text_model(trained):
    document = json.loads(trained.to_artifact().decode("utf-8"))
    assert document["format"] == "dropout_platform.ml.model"
    assert document["booster"].startswith("tree\n")
    assert b"pickle" not in trained.to_artifact()
    assert document["metadata"]["training_fingerprint"] == trained.training_fingerprint
    assert set(document["metadata"]["library_versions"]) >= {"lightgbm", "numpy", "scikit-learn"}


def test_sha256_matches_the_artifact_bytes(trained):
    import hashlib

    assert trained.sha256 == hashlib.sha256(trained.to_artifact()).hexdigest()


def test_foreign_or_damaged_bytes_are_refused_with_a_format_error(trained):
    with pytest.raises(ArtifactFormatError, match="not a model artifact"):
        load_artifact(b"\x80\x04\x95 definitely a pickle")
    with pytest.raises(ArtifactFormatError, match="format field"):
        load_artifact(json.dumps({"hello": 1}).encode())
    document = json.loads(trained.to_artifact())
    document["format_version"] = 99
    with pytest.raises(ArtifactFormatError, match="version 99"):
        load_artifact(json.dumps(document).encode())
    document["format_version"] = 1
    document["booster"] = "garbage"
    with pytest.raises(ArtifactFormatError):
        load_artifact(json.dumps(document).encode())


def test_model_card_is_strict_json(trained):
    text = json.dumps(trained.model_card, allow_nan=False)
    card = json.loads(text)
    for section in ("data", "features", "evaluation", "baselines", "calibration", "fairness",
                    "global_importance", "intended_use", "limitations", "parameters", "library_versions"):
        assert section in card
