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
def _auc_from_weights(ties: np.ndarray, n_levels: int, positive: np.ndarray, weights: np.ndarray) -> float:
    """ROC-AUC of scores given by their tie levels (0 = lowest), each row counted ``weights`` times.

    Mann-Whitney with weights: for every leaver, the weight of stayers scored below it plus half
    of those scored the same, over (leavers' weight x stayers' weight). Equal to sklearn's
    ``roc_auc_score`` on the rows repeated by their weights, in O(n) per resample instead of a sort.
    """
    negative_weight = np.bincount(ties[~positive], weights=weights[~positive], minlength=n_levels)
    below = np.cumsum(negative_weight) - negative_weight
    wins = below[ties[positive]] + 0.5 * negative_weight[ties[positive]]
    total = weights[positive].sum() * weights[~positive].sum()
    return float(np.dot(weights[positive], wins) / total)


def _brier_from_weights(errors: np.ndarray, weights: np.ndarray) -> float:
    return float(np.dot(weights, errors) / weights.sum())


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
    positives, negatives = np.flatnonzero(positive), np.flatnonzero(~positive)
    if len(positives) == 0 or len(negatives) == 0:
        raise ValueError("a comparison needs students who left and students who stayed")
    levels = [np.unique(risk, return_inverse=True) for risk in (candidate, reference)]
    ties = [inverse for _, inverse in levels]
    n_levels = [len(unique) for unique, _ in levels]
    errors = [(risk - y) ** 2 for risk in (candidate, reference)]

    def figures(weights: np.ndarray) -> tuple[float, float, float, float]:
        auc = [_auc_from_weights(ties[m], n_levels[m], positive, weights) for m in (0, 1)]
        brier = [_brier_from_weights(errors[m], weights) for m in (0, 1)]
        return auc[0], auc[1], brier[0], brier[1]

    point = figures(np.ones(len(y)))
    rng = np.random.default_rng(seed)
    draws = np.empty((resamples, 4))
    for b in range(resamples):
        weights = np.bincount(positives[rng.integers(0, len(positives), len(positives))], minlength=len(y))
        weights = weights + np.bincount(negatives[rng.integers(0, len(negatives), len(negatives))],
                                        minlength=len(y))
        draws[b] = figures(weights.astype(float))
    return {
        "rows": len(y),
        "positives": int(positive.sum()),
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
