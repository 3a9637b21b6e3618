"""Metrics on hand-computable cases."""

from __future__ import annotations

import pytest

from ml.metrics import classification_metrics, expected_calibration_error, top_k_scores


def test_top_k_precision_and_recall_count_the_k_highest_risks():
    y = [1, 0, 1, 1, 0, 0, 0, 0, 0, 1]
    risk = [0.9, 0.8, 0.7, 0.1, 0.2, 0.3, 0.05, 0.04, 0.03, 0.02]
    assert top_k_scores(y, risk, 3) == {"k": 3, "precision": pytest.approx(2 / 3), "recall": pytest.approx(0.5)}


def test_expected_calibration_error_weights_bins_by_size():
    # bin 0.2-0.3: 2 students shown 0.25, none left -> gap 0.25; bin 0.8-0.9: 2 shown 0.85, both left -> 0.15
    assert expected_calibration_error([0, 0, 1, 1], [0.25, 0.25, 0.85, 0.85]) == pytest.approx(0.2)


def test_metrics_include_capacity_top_k_and_reliability():
    metrics = classification_metrics([0, 1, 0, 1], [0.1, 0.9, 0.4, 0.6], capacity=1)
    assert metrics["roc_auc"] == 1.0
    assert metrics["top_k"]["capacity"]["precision"] == 1.0
    assert sum(row["count"] for row in metrics["reliability"]) == 4
