"""Turning an institution's feature frame into the numeric matrix the trees see, and back.

Categoricals are one-hot encoded rather than given to LightGBM as native categoricals: the fast
exact TreeSHAP implementation cannot read categorical splits, and one-hot parts fold back to
their feature exactly (a sum). Rare levels share the all-zero "other" pattern, which is also
where categories never seen in training land, so scoring never fails on a new code.

The matrix never contains NaN: "not recorded" is encoded explicitly, so the model and its
explanations treat it as a value of its own rather than as LightGBM's default direction. A
categorical gets its own "missing" level, and a numeric column that had gaps in training gets
a sentinel far below any real value (a split can isolate it); a column that never had gaps in
training gets the training median at scoring time, so one unexpected blank is scored as a
typical value rather than an extreme one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from ml.schema import FeatureSpec, category_string

ColumnRole = Literal["value", "category", "missing", "ratio"]

MISSING_SENTINEL = -1.0e9

_TRUE_STRINGS = frozenset({"true", "yes", "y", "1", "t"})
_FALSE_STRINGS = frozenset({"false", "no", "n", "0", "f"})


@dataclass(frozen=True)
class EncodedColumn:
    """One model input column and the original feature its SHAP value folds back to."""

    source: str
    role: ColumnRole
    category: str | None = None
    denominator: str | None = None
    fill: float = MISSING_SENTINEL


def numeric_values(series: pd.Series) -> np.ndarray:
    """Float values with NaN for missing or unparseable entries (a scoring run must not crash)."""
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def boolean_values(series: pd.Series) -> np.ndarray:
    """0/1 floats from bools, 0/1 numbers or yes/no strings; anything else counts as missing."""
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        return np.where(np.isnan(values), np.nan, (values != 0).astype(float))
    out = np.full(len(series), np.nan)
    for i, value in enumerate(series.tolist()):
        if isinstance(value, (bool, np.bool_)):
            out[i] = float(value)
        elif isinstance(value, (int, float, np.integer, np.floating)) and not pd.isna(value):
            out[i] = float(value != 0)
        elif isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in _TRUE_STRINGS:
                out[i] = 1.0
            elif lowered in _FALSE_STRINGS:
                out[i] = 0.0
    return out


def category_values(series: pd.Series) -> np.ndarray:
    """Object array of normalised category strings, None where missing.

    Normalises each distinct value once (factorize) rather than every row: 100,000 students
    have only a few dozen distinct codes per column.
    """
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    names = np.array([category_string(value) for value in uniques] + [None], dtype=object)
    return names[np.where(codes < 0, len(uniques), codes)]


def ratio_values(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, NaN where the denominator is missing or not positive."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = numerator / denominator
    return np.where(denominator > 0, ratio, np.nan)


def _fill_value(values: np.ndarray) -> float:
    """Sentinel when training saw gaps (the trees learn what a gap means), else the median."""
    if np.isnan(values).any() or len(values) == 0:
        return MISSING_SENTINEL
    return float(np.median(values))


class FeatureEncoder:
    """Schema-driven, label-free encoding fitted on training rows only.

    Fitting looks at feature values (never the outcome), so fitting it inside each training
    fold keeps the outer folds unseen by any feature choice.
    """

    def __init__(self, specs: Sequence[FeatureSpec], columns: Sequence[EncodedColumn]) -> None:
        self.specs = list(specs)
        self.columns = list(columns)
        self.feature_keys = [spec.key for spec in self.specs]
        self._spec_by_key = {spec.key: spec for spec in self.specs}
        self._levels: dict[str, list[str]] = {}
        for column in self.columns:
            if column.role == "category":
                self._levels.setdefault(column.source, []).append(str(column.category))

    @classmethod
    def fit(
        cls,
        frame: pd.DataFrame,
        specs: Sequence[FeatureSpec],
        *,
        min_category_count: int,
        derive_ratios: bool,
    ) -> FeatureEncoder:
        columns: list[EncodedColumn] = []
        used_keys = {spec.key for spec in specs}
        for spec in specs:
            if spec.kind == "categorical":
                raw = category_values(frame[spec.key])
                missing_count = int(sum(value is None for value in raw))
                counts = pd.Series(raw).dropna().value_counts()
                frequent = counts[counts >= min_category_count]
                allowed = set(spec.categories) if spec.categories is not None else None
                levels = [str(level) for level in frequent.index if allowed is None or level in allowed]
                columns.extend(EncodedColumn(spec.key, "category", level, fill=0.0) for level in sorted(levels))
                if missing_count >= min_category_count:
                    columns.append(EncodedColumn(spec.key, "missing", fill=1.0))
            else:
                values = numeric_values(frame[spec.key]) if spec.kind == "numeric" else boolean_values(
                    frame[spec.key]
                )
                columns.append(EncodedColumn(spec.key, "value", fill=_fill_value(values)))
        if derive_ratios:
            for spec in specs:
                if spec.out_of is not None and spec.out_of in used_keys:
                    ratio = ratio_values(numeric_values(frame[spec.key]), numeric_values(frame[spec.out_of]))
                    columns.append(
                        EncodedColumn(spec.key, "ratio", denominator=spec.out_of, fill=_fill_value(ratio))
                    )
        return cls(specs, columns)

    @property
    def n_columns(self) -> int:
        return len(self.columns)

    def column_names(self) -> list[str]:
        """Names for LightGBM; plain identifiers so model text stays valid whatever the keys are."""
        return [f"c{i}" for i in range(self.n_columns)]

    def describe_column(self, index: int) -> str:
        column = self.columns[index]
        if column.role == "category":
            return f"{column.source}={column.category}"
        if column.role == "ratio":
            return f"{column.source}/{column.denominator}"
        if column.role == "missing":
            return f"{column.source} missing"
        return column.source

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """The model matrix for ``frame``; columns absent from the frame count as missing."""
        n = len(frame)
        matrix = np.empty((n, self.n_columns), dtype=float)
        cache: dict[str, np.ndarray] = {}

        def raw(key: str) -> np.ndarray:
            if key not in cache:
                spec = self._spec_by_key[key]
                series = frame[key] if key in frame.columns else pd.Series([None] * n, dtype=object)
                if spec.kind == "numeric":
                    cache[key] = numeric_values(series)
                elif spec.kind == "boolean":
                    cache[key] = boolean_values(series)
                else:
                    cache[key] = category_values(series)
            return cache[key]

        for j, column in enumerate(self.columns):
            if column.role == "category":
                matrix[:, j] = (raw(column.source) == column.category).astype(float)
            elif column.role == "missing":
                matrix[:, j] = np.fromiter((v is None for v in raw(column.source)), dtype=float, count=n)
            else:
                if column.role == "value":
                    values = raw(column.source)
                else:
                    denominator = self._spec_by_key.get(str(column.denominator))
                    denominator_values = raw(denominator.key) if denominator is not None else np.full(n, np.nan)
                    values = ratio_values(raw(column.source), denominator_values)
                matrix[:, j] = np.where(np.isnan(values), column.fill, values)
        return matrix

    def fold_matrix(self) -> np.ndarray:
        """[n_columns, n_features] 0/1 matrix: contributions @ fold_matrix sums parts per feature."""
        index = {key: i for i, key in enumerate(self.feature_keys)}
        fold = np.zeros((self.n_columns, len(self.feature_keys)))
        for j, column in enumerate(self.columns):
            fold[j, index[column.source]] = 1.0
        return fold

    def levels(self, key: str) -> list[str]:
        return list(self._levels.get(key, []))

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": [spec.key for spec in self.specs],
            "columns": [asdict(column) for column in self.columns],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], specs_by_key: dict[str, FeatureSpec]) -> FeatureEncoder:
        specs = [specs_by_key[key] for key in data["features"]]
        columns = [EncodedColumn(**column) for column in data["columns"]]
        return cls(specs, columns)
