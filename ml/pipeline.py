"""One complete fit — encoder, tuned and averaged boosters, calibrator — on a given set of training rows.

The same function serves every outer fold of the evaluation and the final model, so the figures
on the model card describe exactly the procedure that produced the model in use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from ml.boosting import SearchResult, fit_ensemble, lightgbm_params, prediction_threads, search_hyperparameters
from ml.calibration import Calibrator, choose_calibrator
from ml.config import TrainingConfig
from ml.encoding import FeatureEncoder
from ml.schema import FeatureSpec


@dataclass
class FittedPipeline:
    """One complete fit (encoder, tuned booster, calibrator) on some training rows."""

    encoder: FeatureEncoder
    booster_text: str
    calibrator: Calibrator
    search: SearchResult
    calibration_report: dict[str, Any]
    params: dict[str, Any]
    n_jobs: int = 1
    # (LightGBM parameters, tree count) of each averaged booster (ml.boosting.fit_ensemble)
    members: list[tuple[dict[str, Any], int]] = field(default_factory=list)

    def raw_score(self, frame: pd.DataFrame) -> np.ndarray:
        booster = lgb.Booster(model_str=self.booster_text)
        matrix = self.encoder.transform(frame)
        threads = prediction_threads(len(matrix), self.n_jobs)
        return np.asarray(booster.predict(matrix, raw_score=True, num_threads=threads), dtype=float)


def fit_pipeline(frame: pd.DataFrame, y: np.ndarray, specs: Sequence[FeatureSpec],
                 config: TrainingConfig, calibration_rows: np.ndarray | None = None) -> FittedPipeline:
    """Encode, tune, calibrate and fit on these rows only (used for each outer fold and the final model).

    ``calibration_rows`` (a boolean mask over the rows) narrows the calibrator's scores to those
    rows (the newest cohorts: ml.calibration.newest_cohort_rows); the booster learns from all.
    """
    encoder = FeatureEncoder.fit(frame, specs, min_category_count=config.category_threshold(len(frame)),
                                 derive_ratios=config.derive_ratios)
    matrix = encoder.transform(frame)
    search = search_hyperparameters(
        matrix,
        y,
        iterations=config.search_iterations,
        inner_folds=config.inner_folds,
        seed=config.seed,
        learning_rate=config.learning_rate,
        max_rounds=config.max_boost_rounds,
        early_stopping_rounds=config.early_stopping_rounds,
        max_rows=config.tuning_max_rows,
        members=config.ensemble_members,
    )
    scores, outcomes = search.oof_raw, y[search.oof_index]
    if calibration_rows is not None:
        chosen = np.asarray(calibration_rows, dtype=bool)[search.oof_index]
        kept = outcomes[chosen]
        # A tuning sample of a very large table may leave too few of them; then every scored row.
        if min(kept.sum(), len(kept) - kept.sum()) >= config.calibration_min_each:
            scores, outcomes = scores[chosen], kept
    calibrator, report = choose_calibrator(
        scores, outcomes, methods=config.calibration_methods, seed=config.seed
    )
    params = lightgbm_params(search.candidate, y=y, seed=config.seed, learning_rate=config.learning_rate)
    members = member_params(search.members, y=y, config=config)
    booster_text = fit_ensemble(matrix, y, members)
    return FittedPipeline(
        encoder=encoder,
        booster_text=booster_text,
        calibrator=calibrator,
        search=search,
        calibration_report=report,
        params={**params, "num_boost_round": search.num_rounds},
        n_jobs=config.n_jobs,
        members=members,
    )


def member_params(members: Sequence[tuple[dict[str, Any], int]], *, y: np.ndarray, config: TrainingConfig,
                  ) -> list[tuple[dict[str, Any], int]]:
    """Full LightGBM parameters (class weighting for ``y``) and tree count of each ensemble member."""
    return [(lightgbm_params(candidate, y=y, seed=config.seed, learning_rate=config.learning_rate), rounds)
            for candidate, rounds in members]
