"""Per-student explanations: exact TreeSHAP, folded back to the institution's features, in words.

SHAP values are computed on the model matrix (one-hot parts, derived ratios) and summed back to
the original feature each part came from, so an advisor sees "Course", not "Course=9254". The
values are in log-odds and, with the base value, add up to the booster's raw score; the
calibrated risk shown beside them is a monotone map of that raw score, so the signs read the
same way.

Speed: ``ml.treeshap`` computes the same values as shap's TreeExplainer once per tree cell
(rows that take the same direction at every split of a tree share that tree's values) from
precomputed per-leaf tables, many times faster on batches (tests and ``bench/explain_speed.py``
check both claims). For a handful of rows its per-call set-up dominates, so tiny batches (the
what-if panel) use LightGBM's own TreeSHAP (``pred_contrib``), which gives the same values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from ml import treeshap
from ml.boosting import prediction_threads
from ml.schema import FeatureSpec, category_string, is_missing

# From this many rows on, ml.treeshap beats LightGBM's pred_contrib despite its per-call set-up.
FAST_EXPLAINER_MIN_ROWS = 32


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


def display_value(spec: FeatureSpec, value: Any, denominator: Any = None) -> str:
    """The value as an advisor should read it."""
    if is_missing(value):
        return "not recorded"
    if spec.kind == "categorical":
        code = category_string(value)
        return spec.category_label(code) if code is not None else "not recorded"
    if spec.kind == "boolean":
        if isinstance(value, str):
            return "yes" if value.strip().lower() in {"true", "yes", "y", "1", "t"} else "no"
        return "yes" if bool(value) else "no"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if spec.out_of is not None and denominator is not None and not is_missing(denominator):
        try:
            return f"{format_number(number)} of {format_number(float(denominator))}"
        except (TypeError, ValueError):
            pass
    return f"{format_number(number)}{(' ' + spec.unit) if spec.unit else ''}"


def factor_text(spec: FeatureSpec, shown_value: str, contribution: float) -> str:
    """One factor in a sentence: "2 of 6 first-semester units approved — raises risk"."""
    effect = "raises risk" if contribution > 0 else "lowers risk"
    if spec.out_of is not None and " of " in shown_value:
        return f"{shown_value} {spec.label} — {effect}"
    return f"{spec.label}: {shown_value} — {effect}"


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
) -> list[dict[str, Any]]:
    """Assemble per-row explanation dicts; display strings are computed only for shown factors."""
    n = len(frame)
    keys = [spec.key for spec in specs]
    raw_scores = contributions.sum(axis=1) + base_value
    chosen = top_factor_indices(contributions, top_k)
    columns = {key: (frame[key].tolist() if key in frame.columns else [None] * n) for key in keys}
    spec_of = {spec.key: spec for spec in specs}
    denominators = {
        spec.key: columns.get(spec.out_of) if spec.out_of else None for spec in specs
    }
    rows_contrib = contributions.tolist()
    results: list[dict[str, Any]] = []
    for i in range(n):
        row = rows_contrib[i]
        factors = []
        for j in chosen[i]:
            value = row[j]
            if value == 0.0:
                continue
            key = keys[j]
            spec = spec_of[key]
            raw_value = columns[key][i]
            denominator_column = denominators[key]
            shown = display_value(spec, raw_value, denominator_column[i] if denominator_column else None)
            factors.append(
                {
                    "feature": key,
                    "label": spec.label,
                    "value": _json_value(raw_value),
                    "display_value": shown,
                    "contribution": value,
                    "direction": "raises" if value > 0 else "lowers",
                    "actionable": spec.actionable,
                    "text": factor_text(spec, shown, value),
                }
            )
        results.append(
            {
                "risk": float(risk[i]),
                "base_value": base_value,
                "raw_score": float(raw_scores[i]),
                "contributions": dict(zip(keys, row, strict=True)),
                "factors": factors,
            }
        )
    return results


def _json_value(value: Any) -> Any:
    """Plain JSON-friendly value (numpy scalars unwrapped, missing as None)."""
    if is_missing(value):
        return None
    if hasattr(value, "item") and not isinstance(value, str):
        return value.item()
    return value
