"""Precision and recall when the advisors contact as many students as they can.

The capacity rule flags a share of the current students (the top k by risk, optionally only those
at or above a minimum risk). How good that list is can be read on students the model was not
trained on: its held-out students, ranked by the model, flagged at the same share.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ml.intervals import wilson_interval


def precision_recall_at_share(
    ranked_outcomes: Sequence[int], ranked_risks: Sequence[float], share: float, *, min_risk: float | None = None,
) -> dict[str, Any] | None:
    """Flag the top ``share`` of held-out students (ranked highest risk first), never one below
    ``min_risk``: how many were flagged, what share of them left (precision) and what share of
    the leavers were flagged (recall), each with its 95% Wilson interval, and the lowest flagged risk."""
    n = len(ranked_outcomes)
    if n == 0 or share is None:
        return None
    k = min(n, math.ceil(max(0.0, min(1.0, share)) * n))
    if min_risk is not None:
        k = min(k, sum(1 for risk in ranked_risks if risk >= min_risk))
    leavers = sum(ranked_outcomes)
    hits = sum(ranked_outcomes[:k])
    return {
        "held_out": n, "leavers": leavers, "flagged": k, "hits": hits,
        "precision": hits / k if k else None, "precision_interval": wilson_interval(hits, k) if k else None,
        "recall": hits / leavers if leavers else None,
        "recall_interval": wilson_interval(hits, leavers) if leavers else None,
        "lowest_flagged_risk": ranked_risks[k - 1] if k else None,
    }
