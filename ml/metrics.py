"""Evaluation metrics an institution can read: ranking, calibration and top-k at capacity.

Precision/recall at the top k matter more than AUC to an advisor team: they can contact k
students, and these say how many of those k would really have left, and what share of all
leavers they reach.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

RELIABILITY_BINS = 10


def _as_arrays(y_true: Any, risk: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=float).ravel()
    p = np.asarray(risk, dtype=float).ravel()
    if y.shape != p.shape:
        raise ValueError("outcomes and risks must have the same length")
    return y, p


def expected_calibration_error(y_true: Any, risk: Any, n_bins: int = RELIABILITY_BINS) -> float:
    """Weighted mean |predicted - observed| over equal-width risk bins (the usual ECE)."""
    y, p = _as_arrays(y_true, risk)
    if len(y) == 0:
        return float("nan")
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    counts = np.bincount(bins, minlength=n_bins)
    predicted = np.bincount(bins, weights=p, minlength=n_bins)
    observed = np.bincount(bins, weights=y, minlength=n_bins)
    gaps = np.abs(predicted - observed)
    return float(gaps.sum() / counts.sum())


def reliability_table(y_true: Any, risk: Any, n_bins: int = RELIABILITY_BINS) -> list[dict[str, Any]]:
    """Per equal-width risk band: how many students, mean shown risk, share who really left."""
    y, p = _as_arrays(y_true, risk)
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    rows = []
    for b in range(n_bins):
        mask = bins == b
        count = int(mask.sum())
        rows.append(
            {
                "bin_lower": b / n_bins,
                "bin_upper": (b + 1) / n_bins,
                "count": count,
                "mean_predicted": float(p[mask].mean()) if count else None,
                "observed_rate": float(y[mask].mean()) if count else None,
            }
        )
    return rows


def top_k_scores(y_true: Any, risk: Any, k: int) -> dict[str, float | int | None]:
    """Precision and recall when the k highest-risk students are contacted (ties: first rows first)."""
    y, p = _as_arrays(y_true, risk)
    k = int(min(max(k, 0), len(y)))
    positives = float(y.sum())
    if k == 0:
        return {"k": 0, "precision": None, "recall": None}
    order = np.argsort(-p, kind="stable")[:k]
    hits = float(y[order].sum())
    return {
        "k": k,
        "precision": hits / k,
        "recall": hits / positives if positives else None,
    }


def classification_metrics(
    y_true: Any,
    risk: Any,
    *,
    top_k_fractions: Sequence[float] = (0.1, 0.2),
    capacity: int | None = None,
    with_reliability: bool = True,
) -> dict[str, Any]:
    """All the figures the model card and the promotion gate use, for one set of rows."""
    y, p = _as_arrays(y_true, risk)
    both_classes = len(np.unique(y)) == 2
    clipped = np.clip(p, 1e-15, 1 - 1e-15)
    result: dict[str, Any] = {
        "n": len(y),
        "positives": int(y.sum()),
        "positive_rate": float(y.mean()) if len(y) else None,
        "roc_auc": float(roc_auc_score(y, p)) if both_classes else None,
        "pr_auc": float(average_precision_score(y, p)) if both_classes else None,
        "brier": float(brier_score_loss(y, p)) if len(y) else None,
        "log_loss": float(log_loss(y, clipped, labels=[0, 1])) if len(y) else None,
        "ece": expected_calibration_error(y, p) if len(y) else None,
        "mean_risk": float(p.mean()) if len(y) else None,
        "top_k": {},
    }
    for fraction in top_k_fractions:
        k = math.ceil(fraction * len(y))
        result["top_k"][f"top_{round(fraction * 100)}pct"] = {"fraction": fraction, **top_k_scores(y, p, k)}
    if capacity is not None:
        result["top_k"]["capacity"] = {"fraction": capacity / len(y) if len(y) else None,
                                       **top_k_scores(y, p, capacity)}
    if with_reliability:
        result["reliability"] = reliability_table(y, p)
    return result


def rank_metrics(y_true: Any, score: Any, *, top_k_fractions: Sequence[float] = (0.1, 0.2)) -> dict[str, Any]:
    """Metrics that need only an ordering (for baselines that give scores, not probabilities)."""
    y, s = _as_arrays(y_true, score)
    result: dict[str, Any] = {
        "roc_auc": float(roc_auc_score(y, s)),
        "pr_auc": float(average_precision_score(y, s)),
        "top_k": {},
    }
    for fraction in top_k_fractions:
        k = math.ceil(fraction * len(y))
        result["top_k"][f"top_{round(fraction * 100)}pct"] = {"fraction": fraction, **top_k_scores(y, s, k)}
    return result


def summarise_folds(fold_metrics: Sequence[dict[str, Any]], keys: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Mean, standard deviation, min and max of each metric over folds (the "fold spread")."""
    summary: dict[str, dict[str, Any]] = {}
    for key in keys:
        values = [m[key] for m in fold_metrics if m.get(key) is not None]
        if not values:
            continue
        arr = np.asarray(values, dtype=float)
        summary[key] = {
            "mean": float(arr.mean()),
            "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0,
            "min": float(arr.min()),
            "max": float(arr.max()),
            "folds": [float(v) for v in arr],
        }
    return summary
