"""Per-student explanations: exact TreeSHAP, folded back to the institution's features, in words.

SHAP values are computed on the model matrix (one-hot parts, derived ratios) and summed back to
the original feature each part came from, so an advisor sees "Course", not "Course=9254". The
values are in log-odds and, with the base value, add up to the booster's raw score; the
calibrated risk shown beside them is a monotone map of that raw score, so the signs read the
same way.

Points of the shown risk. Log-odds are not what an advisor reads: the same +1 moves a 50% risk
by about 23 points and a 99% risk by under 1. Each factor is therefore also given in percentage
points of the shown (calibrated) risk (``risk_points``): the student's whole move from the base
risk (the calibrated risk at the SHAP base value, the starting point every explanation shares)
to the shown risk is shared among the features in proportion to their log-odds. The points then
add up exactly to shown risk minus base risk, keep every factor's sign and keep the factors'
ratios; a factor's points are its log-odds times the average slope of the calibration curve on
this student's own path from the base value to their raw score (secant slope), so they never
blow up, even when the raw score lies close to the base value.

Sentences that contradict what was observed. SHAP says what a value adds *given the rest of the
record*: a low admission grade can "lower" the risk of a student whose semester results already
carry the bad news, while such students leave far more often than average. "Admission grade:
100 - lowers risk" would then be read as the opposite of the truth. So the model keeps, per
feature, the dropout rate observed in its training data per value group (``observed_rates``:
quantile bins, categories), and a factor whose direction disagrees with its group's rate (the
group's 95% Wilson interval lies wholly on the other side of the overall rate) is phrased with
that rate instead of "lowers risk" / "raises risk".

Words as data. Each factor keeps the value's parts (``shown``: a count out of another, a number
and its unit, a category, yes/no, not recorded) beside the English sentence (``text``), so the
Django layer can compose the sentence in the reader's language with the institution's labels
(``predictions.factor_sentences``); nothing here depends on a language.

Speed: ``ml.treeshap`` computes the same values as shap's TreeExplainer once per tree cell
(rows that take the same direction at every split of a tree share that tree's values) from
precomputed per-leaf tables, many times faster on batches (tests and ``bench/explain_speed.py``
check both claims). For a handful of rows its per-call set-up dominates, so tiny batches (the
what-if panel) use LightGBM's own TreeSHAP (``pred_contrib``), which gives the same values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from ml import treeshap
from ml.boosting import prediction_threads
from ml.intervals import wilson_interval
from ml.schema import FeatureSpec, category_string, is_missing

# From this many rows on, ml.treeshap beats LightGBM's pred_contrib despite its per-call set-up.
FAST_EXPLAINER_MIN_ROWS = 32
# Numeric features are grouped into at most this many quantile bins for their observed rates.
OBSERVED_RATE_BINS = 5
# Below this distance from the base value the secant slope is replaced by the local slope.
FLAT_PATH = 1e-9
OBSERVED_RATE_CONFIDENCE = 0.95


class TreeShapComputer:
    """Exact TreeSHAP for one booster; the flattened trees and leaf tables are built once and reused."""

    def __init__(self, booster: lgb.Booster, n_jobs: int) -> None:
        self.booster = booster
        self.n_jobs = n_jobs
        self._trees: treeshap.FlatTrees | None = None
        self._fast_supported = True

    def _flat_trees(self) -> treeshap.FlatTrees | None:
        if self._trees is None and self._fast_supported:
            try:
                self._trees = treeshap.flatten_booster(self.booster)
            except treeshap.UnsupportedTree:  # categorical splits: LightGBM's own TreeSHAP handles them
                self._fast_supported = False
        return self._trees

    def shap_values(self, matrix: np.ndarray) -> tuple[np.ndarray, float]:
        """([n, n_columns] SHAP values in log-odds, base value) for a model matrix."""
        if len(matrix) == 0:
            return np.zeros((0, self.booster.num_feature())), self.expected_value()
        trees = self._flat_trees() if len(matrix) >= FAST_EXPLAINER_MIN_ROWS else None
        if trees is not None:
            return treeshap.shap_values(trees, matrix, self.n_jobs), trees.base_value
        contributions = self.booster.predict(matrix, pred_contrib=True,
                                             num_threads=prediction_threads(len(matrix), self.n_jobs))
        return contributions[:, :-1], float(contributions[0, -1])

    def expected_value(self) -> float:
        probe = np.zeros((1, self.booster.num_feature()))
        return float(self.booster.predict(probe, pred_contrib=True, num_threads=1)[0, -1])


def format_number(value: float) -> str:
    """Numbers as a person writes them: 2 not 2.0, 13.67 not 13.666666666666666."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.2f}".rstrip("0").rstrip(".")


def shown_parts(spec: FeatureSpec, value: Any, denominator: Any = None) -> dict[str, Any]:
    """The value as an advisor should read it, as data: the Django layer words it in the reader's
    language (``predictions.factor_sentences``); :func:`display_value` words it in English.

    ``{"kind": "missing"}``, ``{"kind": "boolean", "value": bool}``, ``{"kind": "category", "code",
    "label"}``, ``{"kind": "count_of", "count", "of"}`` (a count out of another, "2 of 6"),
    ``{"kind": "number", "number", "unit"}`` or ``{"kind": "text", "text"}`` (a value that is no number).
    """
    if is_missing(value):
        return {"kind": "missing"}
    if spec.kind == "categorical":
        code = category_string(value)
        return {"kind": "category", "code": code, "label": spec.category_label(code)} if code is not None \
            else {"kind": "missing"}
    if spec.kind == "boolean":
        if isinstance(value, str):
            return {"kind": "boolean", "value": value.strip().lower() in {"true", "yes", "y", "1", "t"}}
        return {"kind": "boolean", "value": bool(value)}
    try:
        number = float(value)
    except (TypeError, ValueError):
        return {"kind": "text", "text": str(value)}
    if spec.out_of is not None and denominator is not None and not is_missing(denominator):
        try:
            return {"kind": "count_of", "count": _plain_number(number), "of": _plain_number(float(denominator))}
        except (TypeError, ValueError):
            pass
    return {"kind": "number", "number": _plain_number(number), "unit": spec.unit}


def _plain_number(value: float) -> float | int:
    """2 not 2.0, 13.67 not 13.666666666666666: what is shown, kept as a JSON number."""
    return int(value) if float(value).is_integer() else round(float(value), 2)


def display_value(spec: FeatureSpec, value: Any, denominator: Any = None) -> str:
    """The value as an advisor should read it, in English."""
    return english_value(shown_parts(spec, value, denominator))


def english_value(shown: Mapping[str, Any]) -> str:
    kind = shown["kind"]
    if kind == "missing":
        return "not recorded"
    if kind == "boolean":
        return "yes" if shown["value"] else "no"
    if kind == "category":
        return shown["label"]
    if kind == "count_of":
        return f"{format_number(shown['count'])} of {format_number(shown['of'])}"
    if kind == "number":
        return f"{format_number(shown['number'])}{(' ' + shown['unit']) if shown['unit'] else ''}"
    return shown["text"]


def format_points(points: float) -> str:
    """Percentage points as a person reads them: "12 points", "0.4 points", "1 point"."""
    size = abs(points)
    shown = f"{size:.0f}" if size >= 9.95 else f"{size:.1f}".rstrip("0").rstrip(".")
    if shown in {"0", ""}:
        return "under 0.1 points"
    return f"{shown} point" + ("" if shown == "1" else "s")


def factor_text(
    spec: FeatureSpec, shown: Mapping[str, Any], contribution: float, points: float | None = None,
    observed: Mapping[str, Any] | None = None,
) -> str:
    """One factor in an English sentence: "2 of 6 first-semester units approved — raises risk by 12 points".

    ``shown`` is :func:`shown_parts` of the value. ``observed`` (from :func:`observed_rate_for`) is
    the training data's dropout rate for students with this value; when it contradicts the factor's
    direction the sentence says so instead. The Django layer composes the same sentence in the
    reader's language from the factor's data (``predictions.factor_sentences``); this English one is
    stored beside it.
    """
    shown_value = english_value(shown)
    subject = f"{shown_value} {spec.label}" if shown["kind"] == "count_of" else f"{spec.label}: {shown_value}"
    raises = contribution > 0
    if observed is not None and observed_contradicts(observed, raises=raises):
        sign = "+" if raises else "−"
        weight = f"{sign}{format_points(points)}" if points is not None else ("counts upward" if raises else
                                                                              "counts downward")
        omen = "a good sign" if raises else "a warning sign"
        rate, overall = 100 * observed["rate"], 100 * observed["overall_rate"]
        return (f"{subject} — {weight} given the rest of this record (on its own {omen}: {rate:.0f}% of "
                f"{observed['count']} such students left, against {overall:.0f}% overall)")
    effect = "raises risk" if raises else "lowers risk"
    if points is not None:
        effect += f" by {format_points(points)}"
    return f"{subject} — {effect}"


def risk_points(
    contributions: np.ndarray, raw_scores: np.ndarray, base_value: float, risk: np.ndarray, base_risk: float,
    calibrate: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """[n, m] contributions in percentage points of the shown risk; each row adds up to
    ``100 * (risk - base_risk)`` (see the module docstring for why proportional to log-odds)."""
    delta_raw = np.asarray(raw_scores, dtype=float) - base_value
    delta_risk = np.asarray(risk, dtype=float) - base_risk
    flat = np.abs(delta_raw) < FLAT_PATH
    slope = np.divide(delta_risk, delta_raw, out=np.zeros_like(delta_risk), where=~flat)
    if flat.any():
        step = 1e-4
        local = calibrate(np.array([base_value - step, base_value + step]))
        slope[flat] = (local[1] - local[0]) / (2 * step)
    return 100.0 * contributions * slope[:, None]


def observed_rates(frame: pd.DataFrame, outcome: Sequence[int] | np.ndarray, specs: Sequence[FeatureSpec]) -> dict:
    """Per feature, how many training students had each kind of value and how many of them left.

    Numeric features: up to ``OBSERVED_RATE_BINS`` quantile bins (edges between them); categories
    and yes/no values: one group each; not recorded: a group of its own. Counts only, as plain
    JSON, so the artifact can carry it.
    """
    y = np.asarray(outcome, dtype=int)
    features: dict[str, Any] = {}
    for spec in specs:
        if spec.key not in frame.columns:
            continue
        column = frame[spec.key]
        missing = column.map(is_missing).to_numpy(dtype=bool)
        entry: dict[str, Any] = {"kind": spec.kind, "missing": [int(missing.sum()), int(y[missing].sum())]}
        if spec.kind == "numeric":
            values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
            if spec.out_of is not None and spec.out_of in frame.columns:
                # "2 of 4" is compared with students who passed about half, not with others who passed 2.
                values = _ratio(values, pd.to_numeric(frame[spec.out_of], errors="coerce").to_numpy(dtype=float))
                missing = np.isnan(values)
                entry = {"kind": spec.kind, "ratio_of": spec.out_of,
                         "missing": [int(missing.sum()), int(y[missing].sum())]}
            present = ~np.isnan(values)
            if not present.any():
                continue
            quantiles = np.quantile(values[present], np.linspace(0, 1, OBSERVED_RATE_BINS + 1)[1:-1])
            edges = sorted({float(edge) for edge in quantiles})
            bins = np.searchsorted(edges, values[present], side="right")
            entry["edges"] = edges
            entry["bins"] = [[int((bins == b).sum()), int(y[present][bins == b].sum())] for b in range(len(edges) + 1)]
        else:
            groups: dict[str, list[int]] = {}
            for raw, left in zip(column.tolist(), y.tolist(), strict=True):
                if not is_missing(raw):
                    key = _group_key(spec, raw)
                    count = groups.setdefault(key, [0, 0])
                    count[0] += 1
                    count[1] += int(left)
            entry["groups"] = groups
        features[spec.key] = entry
    return {"overall": [len(y), int(y.sum())], "features": features}


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, NaN where the denominator is 0 or either is missing."""
    safe = np.where(denominator > 0, denominator, np.nan)
    return numerator / safe


def _group_key(spec: FeatureSpec, value: Any) -> str:
    return display_value(spec, value) if spec.kind == "boolean" else (category_string(value) or "")


def observed_rate_for(
    rates: Mapping[str, Any] | None, spec: FeatureSpec, value: Any, denominator: Any = None,
) -> dict[str, Any] | None:
    """The observed dropout rate of training students whose value falls with ``value`` (for a
    count out of another, with ``value / denominator``), or None when nothing was recorded."""
    if not rates or not rates.get("overall") or spec.key not in (rates.get("features") or {}):
        return None
    entry = rates["features"][spec.key]
    total, total_left = rates["overall"]
    if entry.get("ratio_of") and not is_missing(value):
        try:
            value = float(_ratio(np.array([float(value)]), np.array([float(denominator)]))[0])
        except (TypeError, ValueError):
            value = None
    if is_missing(value):
        count, left = entry["missing"]
    elif spec.kind == "numeric":
        try:
            number = float(value)
        except (TypeError, ValueError):
            return None
        count, left = entry["bins"][int(np.searchsorted(entry["edges"], number, side="right"))]
    else:
        count, left = (entry.get("groups") or {}).get(_group_key(spec, value), (0, 0))
    if count == 0 or total == 0:
        return None
    low, high = wilson_interval(left, count, confidence=OBSERVED_RATE_CONFIDENCE)
    return {"count": int(count), "rate": left / count, "low": low, "high": high, "overall_rate": total_left / total}


def observed_contradicts(observed: Mapping[str, Any], *, raises: bool) -> bool:
    """True when such students' observed rate is clearly on the other side of the average."""
    if raises:
        return observed["high"] < observed["overall_rate"]
    return observed["low"] > observed["overall_rate"]


def top_factor_indices(contributions: np.ndarray, top_k: int) -> np.ndarray:
    """[n, k] column indices of the largest |contribution| per row, largest first (vectorised)."""
    n, m = contributions.shape
    k = min(top_k, m)
    if k <= 0 or n == 0:
        return np.zeros((n, 0), dtype=int)
    magnitude = np.abs(contributions)
    part = np.argpartition(-magnitude, k - 1, axis=1)[:, :k] if k < m else np.tile(np.arange(m), (n, 1))
    order = np.argsort(-np.take_along_axis(magnitude, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def build_explanations(
    frame: pd.DataFrame,
    specs: Sequence[FeatureSpec],
    contributions: np.ndarray,
    base_value: float,
    risk: np.ndarray,
    top_k: int,
    *,
    base_risk: float | None = None,
    calibrate: Callable[[np.ndarray], np.ndarray] | None = None,
    rates: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Assemble per-row explanation dicts; display strings are computed only for shown factors.

    With ``base_risk`` and ``calibrate`` every contribution is also given in points of the shown
    risk; with ``rates`` (:func:`observed_rates`) contradicting sentences are rephrased.
    """
    n = len(frame)
    keys = [spec.key for spec in specs]
    raw_scores = contributions.sum(axis=1) + base_value
    chosen = top_factor_indices(contributions, top_k)
    columns = {key: (frame[key].tolist() if key in frame.columns else [None] * n) for key in keys}
    spec_of = {spec.key: spec for spec in specs}
    denominators = {
        spec.key: columns.get(spec.out_of) if spec.out_of else None for spec in specs
    }
    with_points = base_risk is not None and calibrate is not None
    points = (risk_points(contributions, raw_scores, base_value, risk, base_risk, calibrate).tolist()
              if with_points else None)
    rows_contrib = contributions.tolist()
    results: list[dict[str, Any]] = []
    for i in range(n):
        row = rows_contrib[i]
        row_points = points[i] if points is not None else None
        factors = []
        for j in chosen[i]:
            value = row[j]
            if value == 0.0:
                continue
            key = keys[j]
            spec = spec_of[key]
            raw_value = columns[key][i]
            denominator_column = denominators[key]
            shown = shown_parts(spec, raw_value, denominator_column[i] if denominator_column else None)
            factor_points = row_points[j] if row_points is not None else None
            observed = observed_rate_for(rates, spec, raw_value, denominator_column[i] if denominator_column else None)
            factor = {
                "feature": key,
                "label": spec.label,
                "value": _json_value(raw_value),
                "display_value": english_value(shown),
                "shown": shown,
                "contribution": value,
                "direction": "raises" if value > 0 else "lowers",
                "actionable": spec.actionable,
                "text": factor_text(spec, shown, value, factor_points, observed),
            }
            if factor_points is not None:
                factor["points"] = factor_points
            if observed is not None:
                factor["observed"] = {
                    "count": observed["count"], "rate": observed["rate"], "overall_rate": observed["overall_rate"],
                    "contradicts": observed_contradicts(observed, raises=value > 0),
                }
            factors.append(factor)
        explanation = {
            "risk": float(risk[i]),
            "base_value": base_value,
            "raw_score": float(raw_scores[i]),
            "contributions": dict(zip(keys, row, strict=True)),
            "factors": factors,
        }
        if row_points is not None:
            explanation["base_risk"] = float(base_risk)
            explanation["points"] = dict(zip(keys, row_points, strict=True))
        results.append(explanation)
    return results


def _json_value(value: Any) -> Any:
    """Plain JSON-friendly value (numpy scalars unwrapped, missing as None)."""
    if is_missing(value):
        return None
    if hasattr(value, "item") and not isinstance(value, str):
        return value.item()
    return value
