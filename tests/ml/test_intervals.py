"""Intervals on the gate's figures: known values, agreement with sklearn, and behaviour with size."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, roc_auc_score

from ml.intervals import paired_bootstrap, rate_difference_interval, weighted_auc, wilson_interval


def test_wilson_interval_matches_published_values():
    # Newcombe (1998), Statistics in Medicine 17:857, table I: 81/263 -> 0.2553 to 0.3662; 0/10 -> 0 to 0.2775.
    assert wilson_interval(81, 263) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(3, 0) is None


def test_rate_difference_interval_matches_newcombes_example():
    # Newcombe (1998), Statistics in Medicine 17:873, method 10: 56/70 - 48/80 -> 0.0524 to 0.3339.
    assert rate_difference_interval(56, 70, 48, 80) == pytest.approx((0.0524, 0.3339), abs=1e-4)
    assert rate_difference_interval(1, 0, 1, 2) is None


def test_weighted_auc_equals_sklearn_on_the_rows_repeated_by_their_weights():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    score = np.round(rng.random(300) + 0.4 * y, 2)  # rounded: ties must count as half
    weights = rng.integers(0, 4, 300).astype(float)
    unique, levels = np.unique(score, return_inverse=True)
    positive = y == 1
    other = np.ones(300)  # a second resample in the same block: every student once
    ours = weighted_auc(levels[positive], levels[~positive], len(unique),
                        np.vstack([weights[positive], other[positive]]), np.vstack([weights[~positive],
                                                                                     other[~positive]]))
    repeated = np.repeat(np.arange(300), weights.astype(int))
    assert ours[0] == pytest.approx(roc_auc_score(y[repeated], score[repeated]), abs=1e-12)
    assert ours[1] == pytest.approx(roc_auc_score(y, score), abs=1e-12)


def _two_models(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    signal = y + rng.normal(0, 1.0, n)
    good = 1 / (1 + np.exp(-(signal - 0.5) * 2))
    worse = 1 / (1 + np.exp(-(signal + rng.normal(0, 1.5, n) - 0.5)))
    return y, good, worse


def test_paired_bootstrap_point_values_are_the_plain_metrics_and_lie_inside_their_intervals():
    y, good, worse = _two_models(400)
    result = paired_bootstrap(y, good, worse, resamples=300, seed=3)
    assert result["candidate"]["roc_auc"]["value"] == pytest.approx(roc_auc_score(y, good))
    assert result["reference"]["brier"]["value"] == pytest.approx(brier_score_loss(y, worse))
    for side in ("candidate", "reference", "difference"):
        for metric in ("roc_auc", "brier"):
            entry = result[side][metric]
            assert entry["low"] <= entry["value"] <= entry["high"]
    # The better model is better beyond doubt here: its whole AUC-difference interval is above zero.
    assert result["difference"]["roc_auc"]["low"] > 0 and result["difference"]["brier"]["high"] < 0


def test_a_model_compared_with_itself_has_a_zero_width_difference():
    y, good, _ = _two_models(200)
    difference = paired_bootstrap(y, good, good.copy(), resamples=100)["difference"]
    assert difference["roc_auc"] == {"value": 0.0, "low": 0.0, "high": 0.0}


def test_intervals_narrow_as_the_evaluation_rows_grow():
    def width(n):
        y, good, worse = _two_models(n, seed=5)
        entry = paired_bootstrap(y, good, worse, resamples=300, seed=1)["difference"]["roc_auc"]
        return entry["high"] - entry["low"]

    assert width(2000) < width(200) / 2


def test_a_comparison_without_both_outcomes_is_refused():
    with pytest.raises(ValueError, match="left and students who stayed"):
        paired_bootstrap([1, 1, 1], [0.2, 0.3, 0.4], [0.1, 0.2, 0.3])
