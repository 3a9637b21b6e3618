"""Precision and recall at the advisors' capacity, read on held-out students (issue 20, item 5)."""

import pytest

from ml.capacity import precision_recall_at_share


def test_top_share_of_held_out_students_gives_precision_and_recall_with_intervals():
    outcomes = [1, 1, 0, 1, 0, 0, 0, 1, 0, 0]
    risks = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05]
    result = precision_recall_at_share(outcomes, risks, 0.3)
    assert (result["flagged"], result["hits"], result["leavers"]) == (3, 2, 4)
    assert result["precision"] == pytest.approx(2 / 3) and result["recall"] == pytest.approx(0.5)
    low, high = result["precision_interval"]
    assert low < 2 / 3 < high and result["lowest_flagged_risk"] == 0.7


def test_a_minimum_risk_flags_fewer_than_the_capacity():
    outcomes = [1, 0, 1, 0]
    risks = [0.9, 0.6, 0.4, 0.2]
    result = precision_recall_at_share(outcomes, risks, 0.75, min_risk=0.5)
    assert result["flagged"] == 2 and result["precision"] == 0.5 and result["recall"] == 0.5


def test_nothing_flagged_has_no_precision_rather_than_a_division_error():
    result = precision_recall_at_share([1, 0], [0.3, 0.2], 0.5, min_risk=0.9)
    assert result["flagged"] == 0 and result["precision"] is None and result["recall"] == 0.0
    assert precision_recall_at_share([], [], 0.5) is None
