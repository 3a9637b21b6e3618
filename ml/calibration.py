"""Turning raw tree scores into risks that mean what they say.

A shown 30% should mean about 30 in 100 such students leave. Both calibrators are fitted on
out-of-fold raw scores (never on rows the booster was fitted on) and the method is chosen by
cross-validated Brier score. Leaving the scores as they are ("none") is always a candidate: on
small data a well-regularised booster can already be as calibrated as a fitted map can make it,
and a calibrator fitted on a few hundred scores would then only add noise. Calibrators are
stored as a handful of numbers, so an artifact needs no pickle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import StratifiedKFold

# Isotonic steps reach exactly 0 or 1 at the extremes; a "0% risk" is not a claim an early-warning
# tool can make from a few hundred students, so risks are kept just inside (0, 1).
RISK_FLOOR = 1e-3
# Isotonic regression is a step function with as many steps as the data allows; below about a
# thousand scores it fits noise (scikit-learn's calibration guide gives the same advice).
ISOTONIC_MIN_SCORES = 1000


@dataclass
class Calibrator:
    """A fitted map from raw log-odds to calibrated P(dropout)."""

    method: str
    params: dict[str, Any] = field(default_factory=dict)

    def apply(self, raw_score: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw_score, dtype=float)
        if self.method == "sigmoid":
            risk = expit(self.params["slope"] * raw + self.params["intercept"])
        elif self.method == "isotonic":
            risk = np.interp(raw, self.params["x"], self.params["y"])
        elif self.method == "none":
            risk = expit(raw)
        else:
            raise ValueError(f"unknown calibration method {self.method!r}")
        return np.clip(risk, RISK_FLOOR, 1 - RISK_FLOOR)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "params": self.params}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibrator:
        return cls(method=data["method"], params=dict(data["params"]))


def fit_sigmoid(raw_score: np.ndarray, y: np.ndarray) -> Calibrator:
    """Platt scaling on the raw log-odds, with Platt's smoothed targets against overconfidence."""
    raw = np.asarray(raw_score, dtype=float)
    y = np.asarray(y, dtype=float)
    positives, negatives = y.sum(), len(y) - y.sum()
    target = np.where(y > 0, (positives + 1) / (positives + 2), 1 / (negatives + 2))

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = theta[0] * raw + theta[1]
        p = expit(z)
        # log(1 + e^z) - t z, stable form of the cross-entropy
        value = np.sum(np.logaddexp(0.0, z) - target * z)
        residual = p - target
        return float(value), np.array([np.sum(residual * raw), np.sum(residual)])

    result = minimize(loss, x0=np.array([1.0, 0.0]), jac=True, method="L-BFGS-B")
    slope, intercept = (float(v) for v in result.x)
    return Calibrator("sigmoid", {"slope": slope, "intercept": intercept})


def fit_isotonic(raw_score: np.ndarray, y: np.ndarray) -> Calibrator:
    model = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0, increasing=True)
    model.fit(np.asarray(raw_score, dtype=float), np.asarray(y, dtype=float))
    return Calibrator(
        "isotonic",
        {"x": [float(v) for v in model.X_thresholds_], "y": [float(v) for v in model.y_thresholds_]},
    )


def fit_calibrator(method: str, raw_score: np.ndarray, y: np.ndarray) -> Calibrator:
    if method == "none":
        return Calibrator("none")
    if method == "sigmoid":
        return fit_sigmoid(raw_score, y)
    if method == "isotonic":
        return fit_isotonic(raw_score, y)
    raise ValueError(f"unknown calibration method {method!r}")


def choose_calibrator(
    raw_score: np.ndarray,
    y: np.ndarray,
    *,
    methods: Sequence[str],
    seed: int,
    n_splits: int = 5,
) -> tuple[Calibrator, dict[str, Any]]:
    """Pick the method with the lowest cross-validated Brier score, then refit it on all scores.

    ``raw_score`` must be out-of-fold predictions; the report keeps every method's score so the
    model card can show why one was chosen.
    """
    raw = np.asarray(raw_score, dtype=float)
    y = np.asarray(y, dtype=int)
    minority = int(min(y.sum(), len(y) - y.sum()))
    splits = max(2, min(n_splits, minority))
    methods = [m for m in methods if m != "isotonic" or len(raw) >= ISOTONIC_MIN_SCORES] or ["sigmoid"]
    folds = list(StratifiedKFold(splits, shuffle=True, random_state=seed).split(raw.reshape(-1, 1), y))
    scores: dict[str, float] = {}
    for method in methods:
        losses = []
        for train_idx, test_idx in folds:
            calibrator = fit_calibrator(method, raw[train_idx], y[train_idx])
            risk = calibrator.apply(raw[test_idx])
            losses.append(float(np.mean((risk - y[test_idx]) ** 2)))
        scores[method] = float(np.mean(losses))
    # Ties go to the first listed method (the simpler one in the default order).
    chosen = min(methods, key=lambda m: (round(scores[m], 12), methods.index(m)))
    calibrator = fit_calibrator(chosen, raw, y)
    report = {
        "method": chosen,
        "cv_brier_by_method": scores,
        "n_scores": len(raw),
        "cv_splits": splits,
    }
    return calibrator, report


def newest_cohort_rows(cohort: pd.Series | None, y: np.ndarray, *, min_rows: int, min_each: int,
                       ) -> tuple[np.ndarray | None, dict[str, Any]]:
    """The rows a calibrator is fitted on: the newest cohort(s), or every row (``None``).

    A risk's meaning drifts with time (who enrols, how a programme marks), and the students scored
    next resemble the newest finished cohort more than the average of all of them: on OULAD,
    calibrated on every presentation of 2013 and tested on 2014, the calibration error was four
    times the in-time one. Cohorts are added newest first until there are ``min_rows`` students and
    ``min_each`` of each outcome; when that takes every cohort (or none is recorded), every row.
    """
    y = np.asarray(y, dtype=int)
    if cohort is None or not cohort.notna().any():
        return None, {"kind": "all_rows", "rows": len(y),
                      "description": "every training student (no cohort/entry term given)"}
    values = cohort.reset_index(drop=True)
    ordered = sorted(values.dropna().unique().tolist())
    mask = np.zeros(len(y), dtype=bool)
    chosen: list[Any] = []
    for value in reversed(ordered[1:]):  # never every cohort: that is the all-rows fit
        mask |= (values == value).to_numpy()
        chosen.append(value)
        held = y[mask]
        if len(held) >= min_rows and min(held.sum(), len(held) - held.sum()) >= min_each:
            return mask, {
                "kind": "newest_cohorts", "cohorts": sorted(str(v) for v in chosen), "rows": int(mask.sum()),
                "description": f"the newest cohort(s) {', '.join(sorted(str(v) for v in chosen))} "
                               f"({int(mask.sum())} students): the students scored next resemble them most",
            }
    return None, {"kind": "all_rows", "rows": len(y),
                  "description": (f"every training student (the newest cohorts short of all of them hold fewer than "
                                  f"{min_rows} students or {min_each} of an outcome)")}
