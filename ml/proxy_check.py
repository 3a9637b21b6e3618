"""The proxy check: how well the model's inputs predict each protected attribute.

Leaving a protected attribute (gender, age, marital status...) out of the inputs does not keep it
out of the model when other inputs carry it: on the UCI data the inputs predict marital status and
age almost perfectly. For each protected attribute this fits a small LightGBM on the model's own
encoded inputs (never the attribute itself) to predict the attribute, and reports its
cross-validated ROC-AUC (one-vs-rest, macro-averaged over the values when there are more than
two), a bootstrap interval on it, and the inputs the proxy model leans on most.

Bounded on purpose: at most ``max_rows`` students (a seeded sample), 3 folds, a few dozen shallow
trees, one thread. A numeric attribute (age) is split at its median; values shared by fewer than
``MIN_CLASS_ROWS`` students are pooled into one "other" value; students with the attribute not
recorded are left out. ``docs/model_card.md`` explains how to read it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold

from ml.encoding import FeatureEncoder, boolean_values, category_values, numeric_values
from ml.explanation import format_number
from ml.intervals import CONFIDENCE, _count_rows, weighted_auc
from ml.schema import FeatureSpec

MAX_ROWS = 5_000
FOLDS = 3
RESAMPLES = 200
MIN_CLASS_ROWS = 10
MAX_CLASSES = 8  # the most common values; the rest are pooled (bounds the multiclass cost)
TOP_INPUTS = 3
OTHER = "__other__"

PROXY_PARAMS: dict[str, Any] = {
    "learning_rate": 0.1,
    "num_leaves": 7,
    "max_depth": 4,
    "min_child_samples": 20,
    "feature_fraction": 0.8,
    "lambda_l2": 1.0,
    "num_threads": 1,
    "deterministic": True,
    "force_col_wise": True,
    "verbosity": -1,
}
PROXY_ROUNDS = 60


def attribute_target(spec: FeatureSpec, column: pd.Series) -> tuple[np.ndarray, dict[str, Any]]:
    """The attribute as class labels (object array, None where not recorded) and how it was read."""
    if spec.kind == "categorical":
        return np.asarray(category_values(column), dtype=object), {"kind": "categorical"}
    if spec.kind == "boolean":
        values = boolean_values(column)
        labels = np.array([None if np.isnan(v) else ("yes" if v else "no") for v in values], dtype=object)
        return labels, {"kind": "boolean"}
    values = numeric_values(column)
    present = values[~np.isnan(values)]
    if len(present) == 0:
        return np.full(len(values), None, dtype=object), {"kind": "numeric"}
    median = float(np.median(present))
    # At or above the median, unless the median is the lowest value (then everyone would be "high").
    strictly = bool(median <= present.min())
    rule = "above" if strictly else "at or above"
    high = values > median if strictly else values >= median
    labels = np.array([None if np.isnan(v) else ("high" if h else "low") for v, h in zip(values, high, strict=True)],
                      dtype=object)
    return labels, {"kind": "numeric", "median": median,
                    "binarised": f"split at the median: {rule} {format_number(median)} against below"}


def _classes(labels: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Integer classes: the most common values kept, rare ones pooled into "other"."""
    counts = pd.Series(labels).value_counts()
    kept = [str(v) for v, c in counts.items() if c >= MIN_CLASS_ROWS][:MAX_CLASSES]
    names = sorted(kept)
    pooled = [v for v in counts.index if str(v) not in kept]
    if pooled and int(counts[pooled].sum()) >= MIN_CLASS_ROWS:
        names.append(OTHER)
    index = {name: i for i, name in enumerate(names)}
    fallback = index.get(OTHER, -1)
    return np.array([index.get(str(v), fallback) for v in labels], dtype=int), names


def _fast_levels(scores: np.ndarray) -> tuple[np.ndarray, int]:
    unique, levels = np.unique(scores, return_inverse=True)
    return levels, len(unique)


def macro_auc_with_interval(y: np.ndarray, scores: np.ndarray, *, resamples: int = RESAMPLES, seed: int = 0,
                            confidence: float = CONFIDENCE) -> tuple[float, list[float]]:
    """ROC-AUC of ``scores`` [n, k] for classes ``y`` (0..k-1): one-vs-rest macro (class 1 when k == 2),
    with a percentile interval over bootstrap resamples of the students."""
    k = scores.shape[1]
    targets = [1] if k == 2 else list(range(k))
    prepared = []
    for cls in targets:
        positive = y == cls
        levels, n_levels = _fast_levels(scores[:, cls])
        prepared.append((positive, levels[positive], levels[~positive], n_levels))

    def figure(weights: np.ndarray) -> np.ndarray:
        per_class = []
        for positive, pos_levels, neg_levels, n_levels in prepared:
            pos_w, neg_w = weights[:, positive], weights[:, ~positive]
            with np.errstate(invalid="ignore", divide="ignore"):
                per_class.append(weighted_auc(pos_levels, neg_levels, n_levels, pos_w, neg_w))
        return np.nanmean(np.column_stack(per_class), axis=1)

    n = len(y)
    point = float(figure(np.ones((1, n)))[0])
    rng = np.random.default_rng(seed)
    draws = []
    for start in range(0, resamples, 50):
        blocks = min(50, resamples - start)
        draws.append(figure(_count_rows(rng.integers(0, n, (blocks, n)), n)))
    values = np.concatenate(draws)
    values = values[~np.isnan(values)]
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return point, [float(low), float(high)]


def _one_attribute(matrix: np.ndarray, column_features: Sequence[str], y: np.ndarray, k: int,
                   *, seed: int, folds: int) -> dict[str, Any]:
    params = {**PROXY_PARAMS, "seed": seed}
    params.update({"objective": "binary"} if k == 2 else {"objective": "multiclass", "num_class": k})
    scores = np.zeros((len(y), k))
    gain = np.zeros(matrix.shape[1])
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    for train_idx, test_idx in splitter.split(matrix, y):
        booster = lgb.train(params, lgb.Dataset(matrix[train_idx], label=y[train_idx], params={"verbosity": -1}),
                            num_boost_round=PROXY_ROUNDS)
        predicted = booster.predict(matrix[test_idx], num_threads=1)
        if k == 2:
            scores[test_idx, 1] = predicted
            scores[test_idx, 0] = 1 - predicted
        else:
            scores[test_idx] = predicted
        gain += booster.feature_importance(importance_type="gain")
    auc, interval = macro_auc_with_interval(y, scores, seed=seed)
    by_feature: dict[str, float] = {}
    for source, value in zip(column_features, gain, strict=True):
        by_feature[source] = by_feature.get(source, 0.0) + float(value)
    total = sum(by_feature.values())
    ranked = sorted((item for item in by_feature.items() if item[1] > 0), key=lambda item: (-item[1], item[0]))
    return {
        "auc": auc,
        "interval": interval,
        "top_inputs": [key for key, _ in ranked[:TOP_INPUTS]],
        "top_input_shares": [value / total for _, value in ranked[:TOP_INPUTS]] if total else [],
    }


def proxy_check(frame: pd.DataFrame, encoder: FeatureEncoder, protected: Sequence[FeatureSpec], *,
                seed: int = 0, max_rows: int = MAX_ROWS, folds: int = FOLDS) -> dict[str, dict[str, Any]]:
    """Per protected attribute (a column of ``frame``), how well the model's inputs predict it.

    ``encoder`` is the model's fitted input encoder; the attribute's own columns are left out of
    the proxy model even when the institution includes protected attributes in the inputs.
    Returns ``{attribute: {"auc", "interval", "top_inputs", "top_input_shares", "rows", "classes",
    "kind", ...}}``; ``auc`` is None (with a ``reason``) when the attribute cannot be checked.
    """
    n = len(frame)
    positions = np.arange(n)
    if n > max_rows:
        positions = np.sort(np.random.default_rng(seed).choice(n, size=max_rows, replace=False))
    sample = frame.iloc[positions]
    full_matrix = encoder.transform(sample)
    sources = [column.source for column in encoder.columns]
    result: dict[str, dict[str, Any]] = {}
    for spec in protected:
        if spec.key not in frame.columns:
            continue
        labels, reading = attribute_target(spec, sample[spec.key])
        recorded = np.array([v is not None for v in labels], dtype=bool)
        keep_columns = [j for j, source in enumerate(sources) if source != spec.key]
        entry: dict[str, Any] = {"auc": None, "interval": None, "top_inputs": [], "top_input_shares": [],
                                 "rows": int(recorded.sum()), "sampled_from": n, **reading}
        y, names = _classes(labels[recorded])
        entry["classes"] = [name for name in names if name != OTHER]
        entry["pooled_other"] = OTHER in names
        rows_kept = y >= 0
        entry["rows"] = int(rows_kept.sum())
        counts = np.bincount(y[rows_kept], minlength=len(names)) if len(names) else np.array([])
        if len(names) < 2 or counts.min() < folds or not keep_columns:
            entry["reason"] = ("only one value is shared by enough students" if len(names) < 2
                               else "no other inputs" if not keep_columns else "too few students per value")
            result[spec.key] = entry
            continue
        matrix = full_matrix[np.flatnonzero(recorded)[rows_kept]][:, keep_columns]
        entry.update(_one_attribute(matrix, [sources[j] for j in keep_columns], y[rows_kept], len(names),
                                    seed=seed, folds=folds))
        result[spec.key] = entry
    return result
