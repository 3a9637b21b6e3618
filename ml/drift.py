"""Do today's students still look like the students the model learnt from? (issue 20, item 9)

At training, :func:`feature_profile` records, per model input, how the training students'
values were spread: for a number, the shares between its training deciles (the edges kept); for
a yes/no or a category, the share of each value; and the share of missing values. Later,
:func:`drift_report` puts today's students into the same bins and compares:

- the **population stability index** (PSI) over the non-missing values,
  ``sum((now - then) * ln(now / then))`` over the bins (shares floored at 0.0001 so that an empty
  bin counts, but not infinitely). The usual reading: below 0.1 stable, 0.1 to 0.25 a moderate
  shift, above 0.25 a major one;
- the **missing-value shift**: the change in the share of students without a value (a column
  the export stopped filling shows here before anywhere else).

A major shift in any input, or a missing share that moved by more than 10 points, suggests
retraining: the model's risks rest on relationships it learnt from other students. The profile
holds only shares and decile edges of the training rows (no student's values), and protected
attributes are never profiled (they are no model inputs).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from ml.schema import FeatureSpec

PSI_MODERATE = 0.1
PSI_MAJOR = 0.25
MISSING_SHIFT = 0.10
MIN_SHARE = 1e-4
MAX_CATEGORIES = 50
OTHER = "(other)"


def _numbers(column: pd.Series) -> np.ndarray:
    values = pd.to_numeric(column, errors="coerce")
    return values.to_numpy(dtype=float)


def _labels(column: pd.Series) -> pd.Series:
    return column.map(lambda v: None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v))


def _profile_one(spec: FeatureSpec, column: pd.Series) -> dict:
    if spec.kind == "numeric":
        values = _numbers(column)
        present = values[~np.isnan(values)]
        missing = 1.0 - (len(present) / len(values)) if len(values) else 0.0
        if not len(present):
            return {"kind": "numeric", "missing": missing, "edges": [], "shares": []}
        edges = sorted(set(np.quantile(present, np.linspace(0.1, 0.9, 9)).round(10).tolist()))
        counts = np.bincount(np.searchsorted(edges, present, side="right"), minlength=len(edges) + 1)
        return {"kind": "numeric", "missing": missing, "edges": edges,
                "shares": (counts / counts.sum()).round(6).tolist()}
    labels = _labels(column)
    present = labels.dropna()
    missing = 1.0 - (len(present) / len(labels)) if len(labels) else 0.0
    counts = present.value_counts()
    kept = counts.iloc[:MAX_CATEGORIES]
    shares = {str(value): round(float(n) / max(1, len(present)), 6) for value, n in kept.items()}
    if len(counts) > MAX_CATEGORIES:
        shares[OTHER] = round(float(counts.iloc[MAX_CATEGORIES:].sum()) / len(present), 6)
    return {"kind": "categorical", "missing": missing, "categories": shares}


def feature_profile(frame: pd.DataFrame, specs: Sequence[FeatureSpec]) -> dict:
    """The training rows' spread per model input (``frame``: one column per spec key)."""
    return {"rows": len(frame), "features": {
        spec.key: _profile_one(spec, frame[spec.key]) for spec in specs
        if not spec.protected and spec.key in frame.columns}}


def _psi(expected: Iterable[float], actual: Iterable[float]) -> float:
    total = 0.0
    for then, now in zip(expected, actual, strict=True):
        then, now = max(then, MIN_SHARE), max(now, MIN_SHARE)
        total += (now - then) * math.log(now / then)
    return total


def _compare_one(reference: dict, column: pd.Series) -> dict:
    if reference["kind"] == "numeric":
        values = _numbers(column)
        present = values[~np.isnan(values)]
        missing = 1.0 - (len(present) / len(values)) if len(values) else 0.0
        if not reference["shares"] or not len(present):
            psi = None
        else:
            counts = np.bincount(np.searchsorted(reference["edges"], present, side="right"),
                                 minlength=len(reference["edges"]) + 1)
            psi = _psi(reference["shares"], (counts / counts.sum()).tolist())
    else:
        labels = _labels(column)
        present = labels.dropna()
        missing = 1.0 - (len(present) / len(labels)) if len(labels) else 0.0
        known = reference["categories"]
        if not known or not len(present):
            psi = None
        else:
            counts = present.map(lambda v: v if v in known else OTHER).value_counts()
            names = sorted(set(known) | set(counts.index))
            psi = _psi([known.get(name, 0.0) for name in names],
                       [float(counts.get(name, 0)) / len(present) for name in names])
    shift = missing - reference["missing"]
    if psi is not None and psi > PSI_MAJOR:
        status = "major"
    elif abs(shift) > MISSING_SHIFT:
        status = "missing"
    elif psi is not None and psi > PSI_MODERATE:
        status = "moderate"
    else:
        status = "stable"
    return {"psi": None if psi is None else round(psi, 4), "missing_then": round(reference["missing"], 4),
            "missing_now": round(missing, 4), "status": status}


def drift_report(profile: dict, frame: pd.DataFrame) -> dict:
    """Today's rows (``frame``) against a training profile: per feature PSI, missing shares and a
    status, worst first, and whether retraining is suggested."""
    features = []
    for key, reference in (profile.get("features") or {}).items():
        column = frame[key] if key in frame.columns else pd.Series([None] * len(frame), dtype=object)
        features.append({"key": key, **_compare_one(reference, column)})
    order = {"major": 0, "missing": 1, "moderate": 2, "stable": 3}
    features.sort(key=lambda f: (order[f["status"]], -(f["psi"] or 0.0), f["key"]))
    return {"rows_then": profile.get("rows", 0), "rows_now": len(frame), "features": features,
            "retrain_suggested": any(f["status"] in ("major", "missing") for f in features)}
