"""The proxy check: how well the model's inputs predict each protected attribute."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml import FeatureSpec
from ml.encoding import FeatureEncoder
from ml.proxy_check import proxy_check


def _inputs(n: int, seed: int = 0) -> tuple[pd.DataFrame, list[FeatureSpec]]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "grade": rng.normal(120, 15, n).round(1),
        "units": rng.integers(0, 9, n).astype(float),
        "programme": rng.choice(["law", "design", "nursing"], n).astype(object),
        "scholarship": rng.random(n) > 0.6,
    })
    specs = [
        FeatureSpec("grade", "Admission grade", "numeric"),
        FeatureSpec("units", "Units approved", "numeric"),
        FeatureSpec("programme", "Programme", "categorical"),
        FeatureSpec("scholarship", "Scholarship holder", "boolean"),
    ]
    return frame, specs


def _encoder(frame: pd.DataFrame, specs: list[FeatureSpec]) -> FeatureEncoder:
    return FeatureEncoder.fit(frame, specs, min_category_count=5, derive_ratios=False)


def test_a_copy_of_an_input_is_predicted_almost_perfectly_and_names_that_input() -> None:
    frame, specs = _inputs(900)
    frame["marital"] = frame["programme"].map({"law": "single", "design": "married", "nursing": "divorced"})
    frame["holder"] = frame["scholarship"]
    protected = [FeatureSpec("marital", "Marital status", "categorical", protected=True),
                 FeatureSpec("holder", "Holder", "boolean", protected=True)]
    result = proxy_check(frame, _encoder(frame, specs), protected, seed=1)

    marital = result["marital"]
    assert marital["auc"] > 0.99
    assert marital["top_inputs"][0] == "programme"
    assert sorted(marital["classes"]) == ["divorced", "married", "single"]
    assert marital["interval"][0] <= marital["auc"] <= marital["interval"][1]
    assert marital["rows"] == 900
    holder = result["holder"]
    assert holder["auc"] > 0.99 and holder["top_inputs"][0] == "scholarship"


def test_an_independent_attribute_gives_about_half_within_its_interval() -> None:
    frame, specs = _inputs(1500, seed=2)
    frame["gender"] = np.random.default_rng(99).choice(["f", "m"], len(frame)).astype(object)
    result = proxy_check(frame, _encoder(frame, specs),
                         [FeatureSpec("gender", "Gender", "categorical", protected=True)], seed=3)
    gender = result["gender"]
    assert abs(gender["auc"] - 0.5) < 0.06
    low, high = gender["interval"]
    assert low < 0.5 < high
    assert high - low < 0.12


def test_a_numeric_attribute_is_split_at_its_median_and_the_attribute_itself_is_never_an_input() -> None:
    frame, specs = _inputs(900, seed=4)
    frame["age"] = (18 + frame["grade"] / 10).round()
    age = FeatureSpec("age", "Age", "numeric", protected=True)
    # Even when an institution puts the protected attribute into the inputs, the proxy model
    # must not read it: it measures what the other inputs carry.
    encoder = _encoder(frame, [*specs, age])
    result = proxy_check(frame, encoder, [age], seed=0)["age"]
    median = float(np.median(frame["age"]))
    assert result["kind"] == "numeric" and result["median"] == median
    assert "median" in result["binarised"]
    assert result["auc"] > 0.95
    assert result["top_inputs"][0] == "grade"
    assert "age" not in result["top_inputs"]


def test_rows_are_bounded_and_missing_values_are_left_out() -> None:
    frame, specs = _inputs(2400, seed=5)
    frame["gender"] = np.where(frame["scholarship"], "f", "m").astype(object)
    frame.loc[frame.index[:100], "gender"] = None
    result = proxy_check(frame, _encoder(frame, specs),
                         [FeatureSpec("gender", "Gender", "categorical", protected=True)], max_rows=1000)["gender"]
    assert result["sampled_from"] == 2400
    assert result["rows"] <= 1000
    assert result["auc"] > 0.95


def test_an_attribute_with_one_value_is_reported_without_a_figure() -> None:
    frame, specs = _inputs(300, seed=6)
    frame["gender"] = "f"
    result = proxy_check(frame, _encoder(frame, specs),
                         [FeatureSpec("gender", "Gender", "categorical", protected=True)])["gender"]
    assert result["auc"] is None and result["reason"]
