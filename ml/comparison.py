"""Comparing a candidate model with the live one on students neither was fitted on.

The candidate's holdout is unseen by the candidate, but after new data or a re-import most of
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
from sklearn.model_selection import StratifiedKFold

from ml.boosting import fit_booster
from ml.calibration import ISOTONIC_MIN_SCORES, fit_calibrator
from ml.encoding import FeatureEncoder
from ml.errors import DataInsufficientError
from ml.intervals import BOOTSTRAP_RESAMPLES, CONFIDENCE, paired_bootstrap
from ml.metrics import classification_metrics
from ml.trained_model import TrainedModel
from ml.training import check_enough_data

SEARCH_KEYS = ("num_leaves", "min_child_samples", "feature_fraction", "bagging_fraction", "lambda_l2",
               "lambda_l1", "min_split_gain")


def _refit_params(model: TrainedModel, y: np.ndarray) -> tuple[dict[str, Any], int]:
    """The model's LightGBM parameters and tree count, its class weighting recomputed for ``y``."""
    stored = dict(model.metadata.get("parameters") or {})
    missing = [key for key in ("num_boost_round", *SEARCH_KEYS) if key not in stored]
    if missing:
        raise ValueError(f"the model's artifact does not record its parameters ({', '.join(missing)})")
    rounds = int(stored.pop("num_boost_round"))
    if float(stored.get("scale_pos_weight", 1.0)) != 1.0:  # "balanced" class weighting
        positives = float(y.sum())
        stored["scale_pos_weight"] = (len(y) - positives) / positives
    return stored, rounds


def refit_configuration(model: TrainedModel, frame: pd.DataFrame, outcome: Sequence[int] | pd.Series,
                        ) -> TrainedModel:
    """``model``'s configuration fitted afresh on these rows (no search: its choices, new data).

    Category levels and fill values are re-derived from the rows (label-free, as in training),
    the booster is fitted with the model's parameters and number of trees, and its calibration
    method is fitted on out-of-fold scores of the same rows. A feature the rows lack counts as
    not recorded. The result is a model that has seen nothing but ``frame``.
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
    encoder = FeatureEncoder.fit(frame, specs, min_category_count=config.category_threshold(len(frame)),
                                 derive_ratios=config.derive_ratios)
    matrix = encoder.transform(frame)
    params, rounds = _refit_params(model, y)

    folds = StratifiedKFold(max(2, config.inner_folds), shuffle=True, random_state=config.seed)
    oof_raw = np.zeros(len(y))
    for train_idx, test_idx in folds.split(matrix, y):
        booster = fit_booster(matrix[train_idx], y[train_idx], params, rounds)
        oof_raw[test_idx] = booster.predict(matrix[test_idx], raw_score=True)
    method = model.calibrator.method
    if method == "isotonic" and len(y) < ISOTONIC_MIN_SCORES:
        method = "sigmoid"  # as training does: isotonic steps fit noise on fewer scores
    booster = fit_booster(matrix, y, params, rounds)
    return TrainedModel(
        schema=model.schema,
        encoder=encoder,
        model_text=booster.model_to_string(),
        calibrator=fit_calibrator(method, oof_raw, y),
        threshold=model.threshold,
        config=config,
        metadata={"parameters": {**params, "num_boost_round": rounds},
                  "calibration_method": method},
    )


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
    candidate_risk, live_risk = candidate.predict_risk(held_frame), refit.predict_risk(held_frame)
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
