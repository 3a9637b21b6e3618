"""``train_model``: nested cross-validation, the final fit, and everything the model card needs.

The order of work matters for honesty. Every choice that could flatter the numbers —
hyperparameters, number of trees, calibration method, category levels — is made inside the
training part of each outer fold; the outer fold's rows are only predicted. The final model
repeats the same procedure on all development rows, and a holdout (the newest cohorts when a
cohort is known, else a stratified sample) is kept out of it: the holdout figures, the promotion
gate's comparison with the live model and the calibration method are decided on rows that model
never saw. Once the holdout has served, the model that is stored and scores students is refitted
with those choices on every row, holdout included (on 400-650 students, leaving a fifth out of the
final fit cost 0.015 ROC-AUC). Every fit averages a few boosters grown with different seeds, so a
retrain with another seed moves few students across the flag line.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, train_test_split

from ml.artifact import data_fingerprint, library_versions, to_jsonable
from ml.boosting import fit_ensemble, lightgbm_params
from ml.calibration import ISOTONIC_MIN_SCORES, Calibrator, fit_calibrator, newest_cohort_rows
from ml.config import TrainingConfig
from ml.encoding import FeatureEncoder, boolean_values, category_values, numeric_values
from ml.errors import DataInsufficientError, SchemaError
from ml.evaluation import nested_cross_validation
from ml.explanation import format_number
from ml.fairness import fairness_audit
from ml.metrics import classification_metrics
from ml.model_card import build_model_card, limitation_text
from ml.pipeline import fit_pipeline, member_params
from ml.proxy_check import proxy_check
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
                "description": "the newest cohort(s), unseen by the fit judged on them (the stored model is then "
                               "refitted on every student)",
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


@dataclass
class FittedConfiguration:
    """Chosen parameters fitted on some rows: encoder, averaged booster, calibrator and the
    out-of-fold raw scores the calibrator was fitted on."""

    encoder: FeatureEncoder
    model_text: str
    calibrator: Calibrator
    oof_raw: np.ndarray
    members: list[tuple[dict[str, Any], int]]


def fit_configuration(frame: pd.DataFrame, y: np.ndarray, specs: Sequence[FeatureSpec], config: TrainingConfig,
                      members: list[tuple[dict[str, Any], int]], method: str,
                      calibration_rows: np.ndarray | None = None) -> FittedConfiguration:
    """Fit decided ensemble members (parameters, tree count) and calibration method on these rows (no search).

    Category levels and fill values are derived from the rows (label-free); the calibrator is
    fitted on out-of-fold scores of the same kind of averaged booster that is returned, of the
    ``calibration_rows`` only when given (a boolean mask: the newest cohorts).
    """
    encoder = FeatureEncoder.fit(frame, specs, min_category_count=config.category_threshold(len(frame)),
                                 derive_ratios=config.derive_ratios)
    matrix = encoder.transform(frame)
    folds = StratifiedKFold(max(2, config.inner_folds), shuffle=True, random_state=config.seed)
    oof_raw = np.zeros(len(y))
    for train_idx, test_idx in folds.split(matrix, y):
        text = fit_ensemble(matrix[train_idx], y[train_idx], members)
        oof_raw[test_idx] = lgb.Booster(model_str=text).predict(matrix[test_idx], raw_score=True, num_threads=1)
    calibrating = np.ones(len(y), dtype=bool) if calibration_rows is None else np.asarray(calibration_rows, bool)
    if method == "isotonic" and calibrating.sum() < ISOTONIC_MIN_SCORES:
        method = "sigmoid"  # isotonic steps fit noise on fewer scores
    return FittedConfiguration(
        encoder=encoder,
        model_text=fit_ensemble(matrix, y, members),
        calibrator=fit_calibrator(method, oof_raw[calibrating], y[calibrating]),
        oof_raw=oof_raw,
        members=members,
    )


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

    # -- the development fit: judged on the holdout, which it never saw ---------------------------
    report(0.78, "fitting on the development rows")
    # Calibrated on the newest cohorts of the rows each fit learns from, where cohorts are known.
    dev_calibration, dev_calibration_info = newest_cohort_rows(
        None if cohort is None else cohort.iloc[dev_positions], dev_y,
        min_rows=config.calibration_min_rows, min_each=config.calibration_min_each)
    final = fit_pipeline(dev_frame, dev_y, used_specs, config, calibration_rows=dev_calibration)
    development_model = TrainedModel(schema=specs, encoder=final.encoder, model_text=final.booster_text,
                                     calibrator=final.calibrator, threshold=0.5, config=config)

    report(0.82, "evaluating on the holdout")
    holdout_positions = np.flatnonzero(holdout_mask)
    holdout_frame = frame.iloc[holdout_positions]
    holdout_y = y[holdout_positions]
    holdout_risk = development_model.predict_risk(holdout_frame)

    # -- the stored model: the same choices refitted on every row, holdout included ----------------
    report(0.85, "refitting on all students")
    # More rows support a few more trees; scaled as gently as the search scales its tree count.
    growth = (len(y) / len(dev_y)) ** 0.5
    all_members = [(params, max(1, math.ceil(rounds * growth)))
                   for params, rounds in member_params(final.search.members, y=y, config=config)]
    calibration_rows, calibration_info = newest_cohort_rows(
        cohort, y, min_rows=config.calibration_min_rows, min_each=config.calibration_min_each)
    refit = fit_configuration(frame, y, used_specs, config, all_members, final.calibrator.method,
                              calibration_rows=calibration_rows)
    all_params = lightgbm_params(final.search.candidate, y=y, seed=config.seed, learning_rate=config.learning_rate)
    all_rounds = max(1, math.ceil(final.search.num_rounds * growth))
    # A flag line chosen by rank comes from out-of-fold risks of every student (a fixed one is kept).
    threshold, threshold_rule = _threshold_from_risks(refit.calibrator.apply(refit.oof_raw), config, len(frame))
    model = TrainedModel(
        schema=specs,
        encoder=refit.encoder,
        model_text=refit.model_text,
        calibrator=refit.calibrator,
        threshold=threshold,
        config=config,
    )
    holdout_metrics = classification_metrics(holdout_y, holdout_risk, top_k_fractions=config.top_k_fractions,
                                             capacity=config.capacity)

    report(0.9, "measuring global importance")
    rng = np.random.default_rng(config.seed)
    sample_size = min(config.importance_sample_rows, len(frame))
    sample_positions = np.sort(rng.choice(len(frame), size=sample_size, replace=False))
    contributions, _ = model.explain_arrays(frame.iloc[sample_positions])
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

    report(0.96, "checking what the inputs carry of each protected attribute")
    protected_specs = [spec for spec in specs if spec.protected]
    proxies = proxy_check(frame, refit.encoder, protected_specs, seed=config.seed) if protected_specs else {}

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
        encoder=refit.encoder,
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
    card["proxy_check"] = proxies
    card["calibration"]["fitted_on"] = calibration_info
    card["calibration"]["development_fitted_on"] = dev_calibration_info
    spec_labels = {spec.key: spec.label for spec in specs}
    strong = [{"feature": key, "auc": entry["auc"]} for key, entry in proxies.items()
              if entry.get("auc") is not None and entry["auc"] >= 0.8]
    if strong:
        entry = {"code": "strong_proxies", "attributes": strong}
        card["statements"]["limitations"].append(entry)
        card["limitations"].append(limitation_text(entry, spec_labels))
    distinct = len({(tuple(sorted(p.items())), r) for p, r in all_members})
    card["final_model"] = {
        "rows": len(y),
        "includes_holdout": True,
        "boosters": len(all_members),
        "distinct_candidates": distinct,
        "members": [{"num_leaves": p["num_leaves"], "min_child_samples": p["min_child_samples"],
                     "feature_fraction": p["feature_fraction"], "lambda_l2": p["lambda_l2"],
                     "num_boost_round": r} for p, r in all_members],
        "calibration_method": refit.calibrator.method,
        "description": (
            f"Refitted on all {len(y)} students, the holdout included, once the holdout had judged the "
            f"development fit ({len(dev_y)} students): the average of {len(all_members)} boosters "
            f"({distinct} search candidate(s), each picked boosters grown with its own seed), and "
            f"{refit.calibrator.method} calibration fitted on out-of-fold scores of "
            f"{calibration_info['description']}."
        ),
    }
    model.metadata = to_jsonable({
        "model_card": card,
        "holdout_index": holdout_index,
        # The development fit's risks for the holdout: the stored model has seen these students, so
        # the promotion gate judges the candidate by these (ml.comparison).
        "holdout_risk": [float(value) for value in holdout_risk],
        "holdout_metrics": holdout_metrics,
        "global_importance": importance,
        "training_fingerprint": fingerprint,
        "library_versions": library_versions(),
        "parameters": {**all_params, "num_boost_round": all_rounds},
        "ensemble": [{**params, "num_boost_round": rounds} for params, rounds in all_members],
    })
    report(1.0, "done")
    return model
