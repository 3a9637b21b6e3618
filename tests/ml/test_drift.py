"""Drift: today's students against the training students' spread, per model input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.drift import PSI_MAJOR, drift_report, feature_profile
from ml.schema import FeatureSpec

SPECS = [
    FeatureSpec(key="units", label="Units", kind="numeric", min_value=0, max_value=30),
    FeatureSpec(key="fees", label="Fees paid", kind="boolean"),
    FeatureSpec(key="mode", label="Mode", kind="categorical", categories=["day", "evening"]),
    FeatureSpec(key="gender", label="Gender", kind="categorical", categories=["f", "m"], protected=True),
]


def frame(rng, n, *, units_mean=12.0, fees_share=0.8, evening=0.3, missing_units=0.0):
    units = rng.normal(units_mean, 4, n).clip(0, 30)
    units[rng.random(n) < missing_units] = np.nan
    return pd.DataFrame({
        "units": units, "fees": rng.random(n) < fees_share,
        "mode": np.where(rng.random(n) < evening, "evening", "day"), "gender": rng.choice(["f", "m"], n),
    })


def test_students_like_the_training_students_are_stable_and_protected_attributes_are_not_profiled():
    rng = np.random.default_rng(1)
    profile = feature_profile(frame(rng, 5000), SPECS)
    assert set(profile["features"]) == {"units", "fees", "mode"} and profile["rows"] == 5000
    assert len(profile["features"]["units"]["edges"]) == 9
    report = drift_report(profile, frame(rng, 3000))
    assert [f["status"] for f in report["features"]] == ["stable"] * 3
    assert all(f["psi"] < 0.02 for f in report["features"])
    assert report["retrain_suggested"] is False


def test_a_shifted_input_is_a_major_drift_worst_first_and_suggests_retraining():
    rng = np.random.default_rng(2)
    profile = feature_profile(frame(rng, 5000), SPECS)
    report = drift_report(profile, frame(rng, 3000, units_mean=20.0, evening=0.5))
    first, *rest = report["features"]
    assert first["key"] == "units" and first["status"] == "major" and first["psi"] > PSI_MAJOR
    assert {f["key"]: f["status"] for f in rest} == {"mode": "moderate", "fees": "stable"}
    assert report["retrain_suggested"] is True


def test_a_column_the_export_stopped_filling_shows_as_a_missing_value_shift():
    rng = np.random.default_rng(3)
    profile = feature_profile(frame(rng, 4000), SPECS)
    report = drift_report(profile, frame(rng, 2000, missing_units=0.4))
    units = next(f for f in report["features"] if f["key"] == "units")
    assert units["status"] == "missing" and units["missing_then"] == 0.0
    assert units["missing_now"] == pytest.approx(0.4, abs=0.04)
    gone = drift_report(profile, frame(rng, 100).drop(columns=["mode"]))
    mode = next(f for f in gone["features"] if f["key"] == "mode")
    assert mode["missing_now"] == 1.0 and mode["psi"] is None and mode["status"] == "missing"


def test_psi_matches_its_definition_on_a_small_case():
    spec = [FeatureSpec(key="mode", label="Mode", kind="categorical", categories=["a", "b"])]
    profile = feature_profile(pd.DataFrame({"mode": ["a"] * 50 + ["b"] * 50}), spec)
    report = drift_report(profile, pd.DataFrame({"mode": ["a"] * 80 + ["b"] * 20}))
    expected = (0.8 - 0.5) * np.log(0.8 / 0.5) + (0.2 - 0.5) * np.log(0.2 / 0.5)
    assert report["features"][0]["psi"] == pytest.approx(expected, abs=1e-4)
