"""What-if: only actionable features, only possible values, and the risk moves the right way."""

from __future__ import annotations

import pandas as pd
import pytest

from ml import InvalidChangeError


def _struggling_student(frame):
    return frame[(frame["units_approved"] <= 1) & (frame["units_enrolled"] >= 6)].iloc[0].to_dict()


def test_approving_more_units_lowers_the_risk_of_a_struggling_student(trained, synthetic_data):
    row = _struggling_student(synthetic_data[0])
    result = trained.what_if(row, {"units_approved": row["units_enrolled"]})
    assert result["risk_after"] < result["risk_before"]
    assert result["factors_before"] and result["factors_after"]
    assert result["risk_before"] == pytest.approx(trained.predict_risk(pd.DataFrame([row]))[0])


def test_change_to_a_non_actionable_feature_is_refused_clearly(trained, synthetic_data):
    row = synthetic_data[0].iloc[0].to_dict()
    with pytest.raises(InvalidChangeError, match=r"'Admission grade' .* not marked actionable"):
        trained.what_if(row, {"admission_grade": 180})


def test_change_to_an_unknown_feature_is_refused(trained, synthetic_data):
    row = synthetic_data[0].iloc[0].to_dict()
    with pytest.raises(InvalidChangeError, match="unknown feature 'shoe_size'"):
        trained.what_if(row, {"shoe_size": 44})


def test_out_of_range_value_is_refused(trained, synthetic_data):
    row = synthetic_data[0].iloc[0].to_dict()
    with pytest.raises(InvalidChangeError, match="cannot be above 12"):
        trained.what_if(row, {"units_approved": 40})
    with pytest.raises(InvalidChangeError, match="cannot be below 0"):
        trained.what_if(row, {"units_approved": -1})
    with pytest.raises(InvalidChangeError, match="yes/no"):
        trained.what_if(row, {"tuition_up_to_date": "maybe"})


def test_paying_tuition_changes_the_factor_text(trained, synthetic_data):
    frame = synthetic_data[0]
    row = frame[~frame["tuition_up_to_date"].astype(bool)].iloc[0].to_dict()
    result = trained.what_if(row, {"tuition_up_to_date": True}, top_k=10)
    before = next(f for f in result["factors_before"] if f["feature"] == "tuition_up_to_date")
    after = next(f for f in result["factors_after"] if f["feature"] == "tuition_up_to_date")
    assert before["display_value"] == "no" and after["display_value"] == "yes"
    assert result["risk_after"] < result["risk_before"]
