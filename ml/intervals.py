"""Confidence intervals for the figures a promotion decision rests on.

Two kinds of figure need them. Rates of one group of students (the share of a group's leavers
the model catches) get a Wilson score interval, and the difference between two groups' rates a
Newcombe interval built from the two Wilson intervals: both stay inside [0, 1] and behave on
the small groups fairness audits meet, where the textbook normal interval does not. Metrics of
a whole model on a set of rows (ROC-AUC, Brier score), and the difference between two models on
the same rows, get a paired, stratified bootstrap: each resample draws the same students for
both models (so what they share cancels out of the difference) and keeps the numbers of leavers
and stayers fixed (so every resample has an AUC).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.stats import norm

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 1000


def _z(confidence: float) -> float:
    return float(norm.ppf(0.5 + confidence / 2))


def wilson_interval(successes: float, n: float, *, confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """Wilson score interval of ``successes / n``; None when nobody is counted."""
    if n <= 0:
        return None
    z = _z(confidence)
    p = successes / n
    scale = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / scale
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / scale
    return max(0.0, centre - spread), min(1.0, centre + spread)


def rate_difference_interval(successes_a: float, n_a: float, successes_b: float, n_b: float, *,
                             confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """Newcombe's hybrid score interval for ``rate_a - rate_b`` of two independent groups."""
    first = wilson_interval(successes_a, n_a, confidence=confidence)
    second = wilson_interval(successes_b, n_b, confidence=confidence)
    if first is None or second is None:
        return None
    p_a, p_b = successes_a / n_a, successes_b / n_b
    (low_a, high_a), (low_b, high_b) = first, second
    difference = p_a - p_b
    below = math.sqrt((p_a - low_a) ** 2 + (high_b - p_b) ** 2)
    above = math.sqrt((high_a - p_a) ** 2 + (p_b - low_b) ** 2)
    return max(-1.0, difference - below), min(1.0, difference + above)


# -- paired bootstrap of two models on the same rows --------------------------------------------
BLOCK = 100  # resamples computed together: a few MB of weights for 20,000 students


def _count_rows(draws: np.ndarray, n: int) -> np.ndarray:
    """[blocks, n] how often each of n rows was drawn in each resample (a row of ``draws``)."""
    offsets = (np.arange(len(draws)) * n)[:, None]
    return np.bincount((draws + offsets).ravel(), minlength=len(draws) * n).reshape(len(draws), n).astype(float)


def weighted_auc(positive_levels: np.ndarray, negative_levels: np.ndarray, n_levels: int,
                 positive_weights: np.ndarray, negative_weights: np.ndarray) -> np.ndarray:
    """ROC-AUC per row of weights; scores given by their tie levels (0 = lowest) for leavers and stayers.

    Mann-Whitney with weights: for every leaver, the weight of stayers scored below it plus half
    of those scored the same, over (leavers' weight x stayers' weight). Equal to sklearn's
    ``roc_auc_score`` on the students repeated by their weights, without a sort per resample.
    """
    blocks = len(positive_weights)
    offsets = (np.arange(blocks) * n_levels)[:, None]
    stayers = np.bincount((negative_levels[None, :] + offsets).ravel(), weights=negative_weights.ravel(),
                          minlength=blocks * n_levels).reshape(blocks, n_levels)
    below = np.cumsum(stayers, axis=1) - stayers
    wins = below[:, positive_levels] + 0.5 * stayers[:, positive_levels]
    total = positive_weights.sum(axis=1) * negative_weights.sum(axis=1)
    return (positive_weights * wins).sum(axis=1) / total


def _interval(point: float, draws: np.ndarray, confidence: float) -> dict[str, float]:
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return {"value": float(point), "low": float(low), "high": float(high)}


def paired_bootstrap(
    y_true: Any,
    risk_candidate: Any,
    risk_reference: Any,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> dict[str, Any]:
    """ROC-AUC and Brier score of two models on the same rows and their differences, with intervals.

    Differences are candidate minus reference: a positive AUC difference and a negative Brier
    difference favour the candidate. Percentile intervals over ``resamples`` stratified resamples
    (leavers and stayers resampled separately, each to its own count), the same rows for both models.
    """
    y = np.asarray(y_true, dtype=int).ravel()
    candidate = np.asarray(risk_candidate, dtype=float).ravel()
    reference = np.asarray(risk_reference, dtype=float).ravel()
    if not (len(y) == len(candidate) == len(reference)):
        raise ValueError("outcomes and both models' risks must have the same length")
    positive = y == 1
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("a comparison needs students who left and students who stayed")
    models = []
    for risk in (candidate, reference):
        unique, levels = np.unique(risk, return_inverse=True)
        models.append({"levels": (levels[positive], levels[~positive]), "n_levels": len(unique),
                       "errors": ((risk[positive] - 1) ** 2, risk[~positive] ** 2)})

    def figures(positive_weights: np.ndarray, negative_weights: np.ndarray) -> np.ndarray:
        """[blocks, 4]: AUC of both models, then Brier of both."""
        columns = [weighted_auc(*m["levels"], m["n_levels"], positive_weights, negative_weights) for m in models]
        count = positive_weights.sum(axis=1) + negative_weights.sum(axis=1)
        columns += [((positive_weights * m["errors"][0]).sum(axis=1) + (negative_weights * m["errors"][1]).sum(axis=1))
                    / count for m in models]
        return np.column_stack(columns)

    point = figures(np.ones((1, n_pos)), np.ones((1, n_neg)))[0]
    rng = np.random.default_rng(seed)
    draws = np.empty((resamples, 4))
    for start in range(0, resamples, BLOCK):
        blocks = min(BLOCK, resamples - start)
        positive_weights = _count_rows(rng.integers(0, n_pos, (blocks, n_pos)), n_pos)
        negative_weights = _count_rows(rng.integers(0, n_neg, (blocks, n_neg)), n_neg)
        draws[start:start + blocks] = figures(positive_weights, negative_weights)
    return {
        "rows": len(y),
        "positives": n_pos,
        "confidence": confidence,
        "resamples": resamples,
        "method": (f"paired stratified bootstrap, {resamples} resamples of the same students for both "
                   f"models; {round(confidence * 100)}% percentile intervals"),
        "candidate": {"roc_auc": _interval(point[0], draws[:, 0], confidence),
                      "brier": _interval(point[2], draws[:, 2], confidence)},
        "reference": {"roc_auc": _interval(point[1], draws[:, 1], confidence),
                      "brier": _interval(point[3], draws[:, 3], confidence)},
        "difference": {"roc_auc": _interval(point[0] - point[1], draws[:, 0] - draws[:, 1], confidence),
                       "brier": _interval(point[2] - point[3], draws[:, 2] - draws[:, 3], confidence)},
    }
