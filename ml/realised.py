"""Did the predictions come true? (issue 20, item 8)

Given the risks a model showed students who were still studying, and what later became of them
(left = 1, completed = 0), :func:`realised_performance` reports what a reader of the model card
would want checked after the fact: ROC-AUC with a 95% bootstrap interval, the Brier score, the
calibration table (per tenth of shown risk: how many, mean shown risk, share who really left)
and, where the institution flags a share of its students, precision and recall at that share
with Wilson intervals. Too few outcomes, or only one kind, give no AUC (``None``): a figure on a
handful of students would mislead.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import roc_auc_score

from ml.capacity import precision_recall_at_share
from ml.intervals import _count_rows, weighted_auc
from ml.metrics import expected_calibration_error, reliability_table

MIN_OUTCOMES = 30
MIN_EACH = 5
BOOTSTRAP_DRAWS = 400


def realised_performance(risk: Sequence[float], outcome: Sequence[int], *, flag_share: float | None = None,
                         seed: int = 0) -> dict:
    p = np.asarray(risk, dtype=float)
    y = np.asarray(outcome, dtype=int)
    n, leavers = len(y), int(y.sum())
    result = {"students": n, "leavers": leavers, "observed_rate": leavers / n if n else None,
              "mean_risk": float(p.mean()) if n else None, "roc_auc": None, "brier": None, "ece": None,
              "calibration": [], "at_capacity": None, "enough": False}
    if n == 0:
        return result
    result["brier"] = float(np.mean((p - y) ** 2))
    result["calibration"] = [row for row in reliability_table(y, p) if row["count"]]
    result["ece"] = float(expected_calibration_error(y, p))
    if n < MIN_OUTCOMES or leavers < MIN_EACH or n - leavers < MIN_EACH:
        return result
    result["enough"] = True
    point = float(roc_auc_score(y, p))
    levels = np.unique(p, return_inverse=True)[1]
    rng = np.random.default_rng(seed)
    weights = _count_rows(rng.integers(0, n, size=(BOOTSTRAP_DRAWS, n)), n)
    positive, negative = y == 1, y == 0
    draws = weighted_auc(levels[positive], levels[negative], int(levels.max()) + 1,
                         weights[:, positive], weights[:, negative])
    draws = draws[np.isfinite(draws)]
    low, high = np.percentile(draws, [2.5, 97.5])
    result["roc_auc"] = {"value": point, "low": float(low), "high": float(high)}
    if flag_share:
        order = np.argsort(-p, kind="stable")
        result["at_capacity"] = precision_recall_at_share(y[order].tolist(), p[order].tolist(), flag_share)
    return result
