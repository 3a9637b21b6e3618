"""``train_model``: nested cross-validation, the final fit, and everything the model card needs.

The order of work matters for honesty. Every choice that could flatter the numbers —
hyperparameters, number of trees, calibration method, category levels — is made inside the
training part of each outer fold; the outer fold's rows are only predicted. The final model
repeats the same procedure on all development rows, and a holdout (the newest cohorts when a
cohort is known, else a stratified sample) is kept out of it so the platform's promotion gate
can compare the live and candidate models on rows neither was fitted on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from ml.artifact import data_fingerprint, library_versions, to_jsonable
from ml.config import TrainingConfig
from ml.encoding import boolean_values, category_values, numeric_values
from ml.errors import DataInsufficientError, SchemaError
from ml.evaluation import nested_cross_validation
from ml.explanation import format_number
from ml.fairness import fairness_audit
from ml.metrics import classification_metrics
from ml.model_card import build_model_card
from ml.pipeline import fit_pipeline
from ml.schema import FeatureSpec, validate_schema
from ml.trained_model import TrainedModel

ProgressCallback = Callable[[float, str], None]


# -- input checks ----------------------------------------------------------------------------------
def aligned(values: pd.Series | Any, frame: pd.DataFrame, name: str) -> pd.Series:
    """``values`` in the frame's row order: by index label when it carries the same students,
    else by position (a plain list or array)."""
    if len(values) != len(frame):
        raise ValueError(f"{name} has {len(values)} rows but the frame has {len(frame)}")
    if isinstance(values, pd.Series):
        if values.index.equals(frame.index):
            return values
        if values.index.is_unique and set(values.index) == set(frame.index):
            return values.reindex(frame.index)
        return pd.Series(values.to_numpy(), index=frame.index, name=values.name)
    return pd.Series(list(values), index=frame.index, name=name)


def _outcome_array(outcome: pd.Series, frame: pd.DataFrame) -> np.ndarray:
    series = aligned(outcome, frame, "outcome")
    if series.isna().any():
        raise ValueError(
            f"outcome is missing for {int(series.isna().sum())} students; train only on students with a known outcome"
        )
    values = pd.to_numeric(series.astype(object).map(lambda v: int(v) if isinstance(v, (bool, np.bool_)) else v),
                           errors="coerce")
    if values.isna().any() or not set(values.unique()) <= {0, 1}:
        raise ValueError("outcome must be 1 (dropped out) or 0 (completed) for every student")
    return values.to_numpy(dtype=int)


def check_enough_data(y: np.ndarray, minimum: int, *, where: str = "") -> None:
    """Refuse, in words an administrator understands, when one outcome is too rare to learn from."""
    dropped = int(y.sum())
    completed = int(len(y) - dropped)
    if min(dropped, completed) < minimum:
        raise DataInsufficientError(
            f"needs at least {minimum} students with each outcome{where}; "
            f"has {dropped} who dropped out and {completed} who completed"
        )


def choose_features(frame: pd.DataFrame, specs: Sequence[FeatureSpec],
                    config: TrainingConfig) -> tuple[list[FeatureSpec], list[dict[str, str]]]:
    """Decide inputs from the schema and label-free facts about the columns (never the outcome)."""
    used: list[FeatureSpec] = []
    excluded: list[dict[str, str]] = []
    min_count = config.category_threshold(len(frame))

    def exclude(spec: FeatureSpec, reason: str) -> None:
        excluded.append({"feature": spec.key, "label": spec.label, "reason": reason})

    for spec in specs:
        if spec.protected and not config.include_protected:
            exclude(spec, "protected attribute: left out of the inputs by the institution's setting "
                          "(still used for the fairness audit)")
            continue
        if spec.key not in frame.columns:
            exclude(spec, "not present in the training data")
            continue
        if spec.kind == "categorical":
            values = pd.Series(category_values(frame[spec.key]))
            present = values.dropna()
            if present.empty:
                exclude(spec, "no values recorded")
                continue
            counts = present.value_counts()
            missing = int(values.isna().sum())
            if counts.max() < min_count and missing < min_count:
                exclude(spec, f"every category is shared by fewer than {min_count} students")
                continue
            if len(counts) == 1 and missing == 0:
                exclude(spec, "the same value for every student")
                continue
        else:
            values_array = numeric_values(frame[spec.key]) if spec.kind == "numeric" else boolean_values(
                frame[spec.key]
            )
            present_values = values_array[~np.isnan(values_array)]
            if len(present_values) == 0:
                exclude(spec, "no values recorded")
                continue
            if np.all(present_values == present_values[0]) and len(present_values) == len(values_array):
                exclude(spec, "the same value for every student")
                continue
        used.append(spec)
    if not used:
        raise DataInsufficientError("no usable features: every feature is protected, constant or empty")
    return used, excluded


def split_holdout(y: np.ndarray, cohort: pd.Series | None, config: TrainingConfig,
                  ) -> tuple[np.ndarray, dict[str, Any]]:
    """Boolean mask of held-out rows: the newest cohorts when known (out-of-time), else stratified."""
    n = len(y)
    minimum_each = max(5, math.ceil(config.min_students_per_outcome / 3))
    if cohort is not None and cohort.notna().any():
        values = cohort.reset_index(drop=True)
        ordered = sorted(values.dropna().unique().tolist())
        mask = np.zeros(n, dtype=bool)
        chosen: list[Any] = []
        for value in reversed(ordered):
            if len(chosen) == len(ordered) - 1:
                break
            mask |= (values == value).to_numpy()
            chosen.append(value)
            held = y[mask]
            if (mask.mean() >= config.holdout_fraction * 0.5 and held.sum() >= minimum_each
                    and len(held) - held.sum() >= minimum_each):
                break
        remaining = y[~mask]
        enough_left = min(remaining.sum(), len(remaining) - remaining.sum()) >= config.min_students_per_outcome
        held = y[mask]
        enough_held = min(held.sum(), len(held) - held.sum()) >= minimum_each
        if enough_left and enough_held and mask.mean() <= 0.5:
            return mask, {
                "kind": "out_of_time",
                "cohorts": [to_jsonable(v) for v in sorted(chosen)],
                "training_cohorts": [to_jsonable(v) for v in ordered if v not in chosen],
                "rows": int(mask.sum()),
                "description": "the newest cohort(s), never seen by the final model",
            }
        reason = "the newest cohorts are too small or too one-sided for an out-of-time holdout"
    else:
        reason = "no cohort/entry term given"
    _, test_idx = train_test_split(np.arange(n), test_size=config.holdout_fraction, stratify=y,
                                   random_state=config.seed)
    mask = np.zeros(n, dtype=bool)
    mask[test_idx] = True
    return mask, {
        "kind": "stratified",
        "fraction": config.holdout_fraction,
        "rows": int(mask.sum()),
        "description": f"a stratified random {round(config.holdout_fraction * 100)}% sample ({reason})",
    }


def protected_groups(frame: pd.DataFrame, specs: Sequence[FeatureSpec]) -> dict[str, pd.Series]:
    """Group labels per protected attribute; numeric ones (age) are cut into quartile bands."""
    groups: dict[str, pd.Series] = {}
    for spec in specs:
        if not spec.protected or spec.key not in frame.columns:
            continue
        column = frame[spec.key]
        if spec.kind == "categorical":
            labels = [spec.category_label(v) if v is not None else None for v in category_values(column)]
            groups[spec.key] = pd.Series(labels, index=frame.index, dtype=object)
        elif spec.kind == "boolean":
            values = boolean_values(column)
            groups[spec.key] = pd.Series(
                [None if np.isnan(v) else ("yes" if v else "no") for v in values], index=frame.index, dtype=object
            )
        else:
            groups[spec.key] = numeric_bands(numeric_values(column), frame.index)
    return groups


def numeric_bands(values: np.ndarray, index: pd.Index, bands: int = 4) -> pd.Series:
    """Quartile bands named by the real values they hold ("17–19"), so groups read naturally."""
    present = ~np.isnan(values)
    labels = np.full(len(values), None, dtype=object)
    if present.sum() == 0:
        return pd.Series(labels, index=index, dtype=object)
    codes = pd.qcut(values[present], bands, labels=False, duplicates="drop")
    present_values = values[present]
    band_labels = np.empty(len(present_values), dtype=object)
    for code in np.unique(codes):
        members = present_values[codes == code]
        low, high = format_number(float(members.min())), format_number(float(members.max()))
        band_labels[codes == code] = low if low == high else f"{low}–{high}"
    labels[present] = band_labels
    return pd.Series(labels, index=index, dtype=object)


class _Progress:
    def __init__(self, callback: ProgressCallback | None) -> None:
        self.callback = callback

    def __call__(self, fraction: float, stage: str) -> None:
        if self.callback is not None:
            self.callback(float(min(max(fraction, 0.0), 1.0)), stage)


def _threshold_from_risks(oof_risk: np.ndarray, config: TrainingConfig, n_total: int) -> tuple[float, str]:
    if config.flag_threshold is not None:
        return float(config.flag_threshold), "fixed by the institution"
    if config.capacity is not None:
        fraction = min(1.0, config.capacity / max(n_total, 1))
        rule = f"flags about {config.capacity} students (advisor capacity) among {n_total}"
    else:
        fraction = config.flag_fraction
        rule = f"flags the highest-risk {round(fraction * 100)}% of students"
    threshold = float(np.quantile(oof_risk, 1.0 - fraction)) if fraction < 1.0 else float(oof_risk.min())
    return float(min(max(threshold, 1e-6), 1 - 1e-6)), rule


def train_model(
    frame: pd.DataFrame,
    outcome: pd.Series,
    schema: list[FeatureSpec],
    config: TrainingConfig | None = None,
    cohort: pd.Series | None = None,
    progress: ProgressCallback | None = None,
) -> TrainedModel:
    """Train, evaluate (nested CV + holdout), calibrate, audit and describe a dropout model.

    Raises DataInsufficientError when the data cannot support a model.
    """
    config = config or TrainingConfig()
    report = _Progress(progress)
    report(0.0, "checking data")
    specs = validate_schema(schema)
    if len(frame) == 0:
        raise DataInsufficientError(
            f"needs at least {config.min_students_per_outcome} students with each outcome; has no students"
        )
    if not frame.index.is_unique:
        raise SchemaError("the training frame's index must identify students uniquely")
    y = _outcome_array(outcome, frame)
    check_enough_data(y, config.min_students_per_outcome)
    if cohort is not None:
        cohort = aligned(cohort, frame, "cohort")
    used_specs, excluded = choose_features(frame, specs, config)

    holdout_mask, holdout_info = split_holdout(y, cohort, config)
    dev_positions = np.flatnonzero(~holdout_mask)
    dev_frame = frame.iloc[dev_positions]
    dev_y = y[dev_positions]
    check_enough_data(dev_y, config.min_students_per_outcome, where=" after setting aside the holdout")
    requested_config, config = config, config.scaled_for(len(dev_y))

    cv = nested_cross_validation(dev_frame, dev_y, used_specs, config, progress=report, span=(0.05, 0.78))
    oof_risk = cv.oof_risk

    # -- final model on all development rows -------------------------------------------------------
    report(0.78, "fitting the final model")
    final = fit_pipeline(dev_frame, dev_y, used_specs, config)
    threshold, threshold_rule = _threshold_from_risks(oof_risk, config, len(frame))
    model = TrainedModel(
        schema=specs,
        encoder=final.encoder,
        model_text=final.booster_text,
        calibrator=final.calibrator,
        threshold=threshold,
        config=config,
    )

    report(0.86, "evaluating on the holdout")
    holdout_positions = np.flatnonzero(holdout_mask)
    holdout_frame = frame.iloc[holdout_positions]
    holdout_y = y[holdout_positions]
    holdout_risk = model.predict_risk(holdout_frame)
    holdout_metrics = classification_metrics(holdout_y, holdout_risk, top_k_fractions=config.top_k_fractions,
                                             capacity=config.capacity)

    report(0.9, "measuring global importance")
    rng = np.random.default_rng(config.seed)
    sample_size = min(config.importance_sample_rows, len(dev_frame))
    sample_positions = np.sort(rng.choice(len(dev_frame), size=sample_size, replace=False))
    contributions, _ = model.explain_arrays(dev_frame.iloc[sample_positions])
    mean_abs = np.abs(contributions).mean(axis=0)
    spec_of = {spec.key: spec for spec in specs}
    importance = sorted(
        (
            {"feature": key, "label": spec_of[key].label, "mean_abs_shap": float(value)}
            for key, value in zip(model.feature_keys, mean_abs, strict=True)
        ),
        key=lambda item: -item["mean_abs_shap"],
    )

    report(0.94, "auditing fairness")
    groups_dev = protected_groups(dev_frame, specs)
    groups_holdout = protected_groups(holdout_frame, specs)
    min_group = config.min_fairness_group_size
    fairness = {
        "cross_validated": (fairness_audit(dev_y, oof_risk, groups_dev, threshold, min_group_size=min_group)
                            if groups_dev else None),
        "holdout": (fairness_audit(holdout_y, holdout_risk, groups_holdout, threshold, min_group_size=min_group)
                    if groups_holdout else None),
    }

    holdout_index = [to_jsonable(label) for label in frame.index[holdout_positions]]
    cohort_range = None
    if cohort is not None and cohort.notna().any():
        present = sorted(cohort.dropna().unique().tolist())
        cohort_range = {"first": to_jsonable(present[0]), "last": to_jsonable(present[-1]), "count": len(present)}

    fingerprint = data_fingerprint(frame, pd.Series(y, index=frame.index), cohort)
    card = build_model_card(
        config=config,
        specs=specs,
        used_specs=used_specs,
        excluded=excluded,
        encoder=final.encoder,
        n_rows=len(frame),
        y=y,
        dev_rows=len(dev_y),
        holdout_info=holdout_info,
        cohort_range=cohort_range,
        cv=cv,
        holdout_metrics=holdout_metrics,
        final=final,
        threshold=threshold,
        threshold_rule=threshold_rule,
        fairness=fairness,
        importance=importance,
        fingerprint=fingerprint,
        versions=library_versions(),
        scaled_for_large_data=config != requested_config,
    )
    model.metadata = to_jsonable({
        "model_card": card,
        "holdout_index": holdout_index,
        "holdout_metrics": holdout_metrics,
        "global_importance": importance,
        "training_fingerprint": fingerprint,
        "library_versions": library_versions(),
        "parameters": final.params,
    })
    report(1.0, "done")
    return model
