"""Comparing a candidate model with the live one on students neither was fitted on.

The candidate's holdout is unseen by the candidate's development fit (whose risks for it are
stored: the model kept is then refitted on every student), but after new data or a re-import most of
those students were usually in the live model's training rows: the live model then scores
itself on students it memorised (0.99 against 0.95 cross-validated in one institution) and no
retrained candidate can match it. So the live model is not judged as stored. Its configuration
(the features it reads, its LightGBM parameters and number of trees, its calibration method) is
fitted again on the candidate's training rows, exactly the rows the candidate learned from, and
both are scored on the candidate's holdout, which neither has seen. The comparison then asks
what an administrator wants to know: on the data we have now, is the new model at least as good
as the old recipe? A paired bootstrap on those rows puts intervals on both models' figures and
on their difference.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ml.errors import DataInsufficientError
from ml.intervals import BOOTSTRAP_RESAMPLES, CONFIDENCE, paired_bootstrap
from ml.metrics import classification_metrics
from ml.trained_model import TrainedModel
from ml.training import check_enough_data, fit_configuration

SEARCH_KEYS = ("num_leaves", "min_child_samples", "feature_fraction", "bagging_fraction", "lambda_l2",
               "lambda_l1", "min_split_gain")


def _refit_entry(entry: dict[str, Any], y: np.ndarray) -> tuple[dict[str, Any], int]:
    """Recorded LightGBM parameters and tree count, the class weighting recomputed for ``y``."""
    stored = dict(entry)
    missing = [key for key in ("num_boost_round", *SEARCH_KEYS) if key not in stored]
    if missing:
        raise ValueError(f"the model's artifact does not record its parameters ({', '.join(missing)})")
    rounds = int(stored.pop("num_boost_round"))
    if float(stored.get("scale_pos_weight", 1.0)) != 1.0:  # "balanced" class weighting
        positives = float(y.sum())
        stored["scale_pos_weight"] = (len(y) - positives) / positives
    return stored, rounds


def _refit_members(model: TrainedModel, y: np.ndarray) -> list[tuple[dict[str, Any], int]]:
    """The model's averaged boosters (a model stored before seed averaging records one)."""
    recorded = model.metadata.get("ensemble") or [model.metadata.get("parameters") or {}]
    return [_refit_entry(entry, y) for entry in recorded]


def refit_configuration(model: TrainedModel, frame: pd.DataFrame, outcome: Sequence[int] | pd.Series,
                        ) -> TrainedModel:
    """``model``'s configuration fitted afresh on these rows (no search: its choices, new data).

    Category levels and fill values are re-derived from the rows (label-free, as in training),
    the booster is fitted with the model's parameters and number of trees, and its calibration
    method is fitted on out-of-fold scores of the same rows, with the same seed averaging as
    training. A feature the rows lack counts as not recorded. The result is a model that has
    seen nothing but ``frame``.
    """
    y = np.asarray(outcome, dtype=int)
    if len(y) != len(frame):
        raise ValueError("outcome and frame must have the same number of rows")
    config = model.config
    check_enough_data(y, max(2, config.inner_folds), where=" to refit the live model's configuration")
    specs = model.encoder.specs
    absent = [spec.key for spec in specs if spec.key not in frame.columns]
    if absent:
        frame = frame.assign(**{key: pd.Series([None] * len(frame), index=frame.index, dtype=object)
                                for key in absent})
    members = _refit_members(model, y)
    best_params, best_rounds = _refit_entry(model.metadata.get("parameters") or {}, y)
    fitted = fit_configuration(frame, y, specs, config, members, model.calibrator.method)
    return TrainedModel(
        schema=model.schema,
        encoder=fitted.encoder,
        model_text=fitted.model_text,
        calibrator=fitted.calibrator,
        threshold=model.threshold,
        config=config,
        metadata={"parameters": {**best_params, "num_boost_round": best_rounds},
                  "ensemble": [{**params, "num_boost_round": rounds} for params, rounds in members],
                  "calibration_method": fitted.calibrator.method},
    )


def candidate_holdout_risk(candidate: TrainedModel, held_frame: pd.DataFrame) -> np.ndarray:
    """The candidate's risks for its holdout from the fit that never saw those students.

    The stored model is refitted on every student, the holdout included, so its own predictions
    for the holdout would flatter it; training keeps the development fit's risks for the gate. A
    model stored before that refit (no ``holdout_risk``) never saw its holdout and is asked.
    """
    stored = candidate.metadata.get("holdout_risk")
    if stored is None:
        return candidate.predict_risk(held_frame)
    if len(stored) != len(held_frame):
        raise ValueError("the candidate's stored holdout risks do not match its holdout students")
    return np.asarray(stored, dtype=float)


def compare_on_unseen_rows(
    candidate: TrainedModel,
    live: TrainedModel,
    frame: pd.DataFrame,
    outcome: pd.Series,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    confidence: float = CONFIDENCE,
) -> dict[str, Any]:
    """The candidate against the live model's configuration, both judged on the candidate's holdout.

    ``frame``/``outcome`` are the rows the candidate was trained from (its ``holdout_index``
    labels among them). The live configuration is refitted on the rest and both models score the
    holdout. Returns plain metrics of both (``candidate``, ``live``) and the paired bootstrap
    (``intervals``: each model's ROC-AUC and Brier score and candidate minus live).
    Raises DataInsufficientError when the rows cannot support the refit or the comparison.
    """
    if not outcome.index.equals(frame.index):
        raise ValueError("outcome must be indexed like the frame")
    holdout = pd.Index(candidate.holdout_index)
    if holdout.empty or not holdout.isin(frame.index).all():
        raise DataInsufficientError("the candidate's holdout students are not all in the data it was compared on")
    training = ~frame.index.isin(holdout)
    refit = refit_configuration(live, frame[training], outcome[training].to_numpy())
    held_frame, held_y = frame.loc[holdout], outcome.loc[holdout].to_numpy(dtype=int)
    check_enough_data(held_y, 1, where=" among the evaluation students")
    candidate_risk, live_risk = candidate_holdout_risk(candidate, held_frame), refit.predict_risk(held_frame)
    config = candidate.config
    metrics = {name: classification_metrics(held_y, risk, top_k_fractions=config.top_k_fractions,
                                            capacity=config.capacity, with_reliability=False)
               for name, risk in (("candidate", candidate_risk), ("live", live_risk))}
    return {
        "rows": len(held_y),
        "training_rows": int(training.sum()),
        "candidate": metrics["candidate"],
        "live": metrics["live"],
        "intervals": paired_bootstrap(held_y, candidate_risk, live_risk, resamples=resamples,
                                      confidence=confidence, seed=config.seed),
        "live_refit": {"parameters": refit.metadata["parameters"],
                       "calibration_method": refit.metadata["calibration_method"],
                       "features": list(refit.feature_keys)},
    }
