"""Fairness audit: how the flag behaves for each group of each protected attribute.

At the flagging threshold, per group: how many students, what share gets flagged (selection
rate), what share of leavers is caught (TPR), what share of stayers is flagged needlessly
(FPR), how often a flag is right (precision), and whether shown risks are too high or too low
for that group (calibration gap = mean shown risk - observed dropout rate). The largest gap
between groups per metric is what a promotion gate and an administrator look at. Groups too
small to say anything stable are listed but left out of the largest gaps.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame

DEFAULT_MIN_GROUP_SIZE = 20
MISSING_GROUP = "not recorded"


def _count(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(len(y_true))


def _selection_rate(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(y_pred)) if len(y_pred) else math.nan


def _true_positive_rate(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    positives = y_true == 1
    return float(np.mean(y_pred[positives])) if positives.any() else math.nan


def _false_positive_rate(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    negatives = y_true == 0
    return float(np.mean(y_pred[negatives])) if negatives.any() else math.nan


def _precision(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    flagged = y_pred == 1
    return float(np.mean(y_true[flagged])) if flagged.any() else math.nan


def _mean_risk(y_true: np.ndarray, y_pred: np.ndarray, risk: np.ndarray) -> float:
    return float(np.mean(risk)) if len(risk) else math.nan


def _observed_rate(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(y_true)) if len(y_true) else math.nan


def _calibration_gap(y_true: np.ndarray, y_pred: np.ndarray, risk: np.ndarray) -> float:
    return float(np.mean(risk) - np.mean(y_true)) if len(y_true) else math.nan


METRICS = {
    "count": _count,
    "selection_rate": _selection_rate,
    "tpr": _true_positive_rate,
    "fpr": _false_positive_rate,
    "precision": _precision,
    "mean_risk": _mean_risk,
    "observed_rate": _observed_rate,
    "calibration_gap": _calibration_gap,
}
GAP_METRICS = ("selection_rate", "tpr", "fpr", "precision", "calibration_gap")


def _clean(value: Any) -> Any:
    """JSON-safe number: NaN (undefined, e.g. precision with nobody flagged) becomes None."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def group_labels(values: pd.Series) -> np.ndarray:
    """String group names; missing values form their own visible group."""
    out = []
    for value in values.tolist():
        if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
            out.append(MISSING_GROUP)
        elif isinstance(value, float) and value.is_integer():
            out.append(str(int(value)))
        else:
            out.append(str(value))
    return np.asarray(out, dtype=object)


def fairness_audit(
    y_true: Any,
    risk: Any,
    groups: Mapping[str, pd.Series | Any],
    threshold: float,
    *,
    min_group_size: int = DEFAULT_MIN_GROUP_SIZE,
) -> dict[str, Any]:
    """Per protected attribute, per group metrics at ``threshold`` (flagged = risk >= threshold).

    Returns ``{"threshold", "min_group_size", "attributes": {name: {"groups": {group: {...}},
    "largest_gap": {metric: {"gap", "highest_group", "lowest_group"}}, "small_groups": [...]}}}``.
    """
    y = np.asarray(y_true, dtype=int).ravel()
    p = np.asarray(risk, dtype=float).ravel()
    if y.shape != p.shape:
        raise ValueError("outcomes and risks must have the same length")
    flagged = (p >= threshold).astype(int)
    result: dict[str, Any] = {"threshold": float(threshold), "min_group_size": min_group_size, "attributes": {}}
    for name, values in groups.items():
        labels = group_labels(pd.Series(values).reset_index(drop=True))
        if len(labels) != len(y):
            raise ValueError(f"group values for {name!r} do not match the number of students")
        frame = MetricFrame(
            metrics=METRICS,
            y_true=y,
            y_pred=flagged,
            sensitive_features=pd.Series(labels, name=name),
            sample_params={"mean_risk": {"risk": p}, "calibration_gap": {"risk": p}},
        )
        by_group = frame.by_group
        per_group: dict[str, dict[str, Any]] = {}
        for group, row in by_group.iterrows():
            per_group[str(group)] = {
                metric: (int(row[metric]) if metric == "count" else _clean(row[metric])) for metric in METRICS
            }
        large = [g for g, m in per_group.items() if m["count"] >= min_group_size]
        largest_gap: dict[str, Any] = {}
        for metric in GAP_METRICS:
            defined = [(per_group[g][metric], g) for g in large if per_group[g][metric] is not None]
            if len(defined) < 2:
                largest_gap[metric] = None
                continue
            high = max(defined)
            low = min(defined)
            largest_gap[metric] = {"gap": high[0] - low[0], "highest_group": high[1], "lowest_group": low[1]}
        result["attributes"][name] = {
            "groups": per_group,
            "largest_gap": largest_gap,
            "small_groups": sorted(set(per_group) - set(large)),
            "overall": {metric: _clean(frame.overall[metric]) for metric in METRICS if metric != "count"},
        }
    return result
