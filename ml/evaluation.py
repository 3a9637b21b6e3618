"""Nested cross-validation of the whole training procedure, with baselines on the same folds.

Each outer fold runs ``fit_pipeline`` on its training part — search, tree count, calibration
method and category levels all chosen there — and only predicts its test part. The figures are
therefore what the procedure achieves on students it has never seen, which is the only kind of
figure worth putting in front of an institution.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.model_selection import StratifiedKFold

from ml.baselines import baseline_scores
from ml.config import TrainingConfig
from ml.metrics import classification_metrics, rank_metrics, summarise_folds
from ml.pipeline import fit_pipeline
from ml.schema import FeatureSpec

SUMMARY_METRICS = ("roc_auc", "pr_auc", "brier", "ece", "log_loss")


@dataclass
class CrossValidationResult:
    """Out-of-fold predictions and metrics of LightGBM and the baselines on the same folds."""

    oof_risk: np.ndarray
    oof_uncalibrated: np.ndarray
    fold_metrics: list[dict[str, Any]]
    fold_details: list[dict[str, Any]]
    pooled: dict[str, Any]
    pooled_uncalibrated: dict[str, Any]
    fold_summary: dict[str, Any]
    baselines: dict[str, dict[str, Any]] = field(default_factory=dict)

    def comparison(self) -> dict[str, dict[str, Any]]:
        """Per model: fold summary and pooled metrics, LightGBM first (for printing side by side)."""
        rows = {"lightgbm": {"fold_summary": self.fold_summary, "pooled": self.pooled}}
        rows.update({name: {"fold_summary": e["fold_summary"], "pooled": e["pooled"]}
                     for name, e in self.baselines.items()})
        return rows


def _metrics(y: np.ndarray, scores: np.ndarray, is_probability: bool, config: TrainingConfig,
             **kwargs: Any) -> dict[str, Any]:
    if is_probability:
        return classification_metrics(y, scores, top_k_fractions=config.top_k_fractions, **kwargs)
    return rank_metrics(y, scores, top_k_fractions=config.top_k_fractions)


def nested_cross_validation(
    frame: pd.DataFrame,
    y: np.ndarray,
    specs: Sequence[FeatureSpec],
    config: TrainingConfig,
    *,
    progress: Callable[[float, str], None] | None = None,
    span: tuple[float, float] = (0.0, 1.0),
) -> CrossValidationResult:
    """Stratified ``config.n_folds``-fold CV of the full procedure; outer folds are only predicted."""
    outer = StratifiedKFold(config.n_folds, shuffle=True, random_state=config.seed)
    folds = list(outer.split(np.zeros(len(y)), y))
    oof_risk = np.zeros(len(y))
    oof_uncalibrated = np.zeros(len(y))
    fold_metrics: list[dict[str, Any]] = []
    fold_details: list[dict[str, Any]] = []
    baseline_oof = {name: np.zeros(len(y)) for name in config.baselines}
    baseline_folds: dict[str, list[dict[str, Any]]] = {name: [] for name in config.baselines}
    baseline_is_probability: dict[str, bool] = {}
    baseline_details: dict[str, dict[str, Any]] = {}
    for number, (train_idx, test_idx) in enumerate(folds, start=1):
        if progress is not None:
            progress(span[0] + (span[1] - span[0]) * (number - 1) / len(folds),
                     f"cross-validating (fold {number} of {len(folds)})")
        fitted = fit_pipeline(frame.iloc[train_idx], y[train_idx], specs, config)
        raw = fitted.raw_score(frame.iloc[test_idx])
        risk = fitted.calibrator.apply(raw)
        oof_risk[test_idx] = risk
        oof_uncalibrated[test_idx] = expit(raw)
        metrics = _metrics(y[test_idx], risk, True, config, with_reliability=False)
        metrics["brier_uncalibrated"] = float(np.mean((expit(raw) - y[test_idx]) ** 2))
        fold_metrics.append(metrics)
        fold_details.append({
            "fold": number,
            "train_rows": len(train_idx),
            "test_rows": len(test_idx),
            "calibration_method": fitted.calibrator.method,
            "calibration_cv_brier": fitted.calibration_report["cv_brier_by_method"],
            "chosen_parameters": fitted.search.candidate,
            "num_boost_round": fitted.search.num_rounds,
        })
        if not config.baselines:
            continue
        X_train = fitted.encoder.transform(frame.iloc[train_idx])
        X_test = fitted.encoder.transform(frame.iloc[test_idx])
        for name in config.baselines:
            scores, is_probability, detail = baseline_scores(name, X_train, y[train_idx], X_test, config)
            baseline_oof[name][test_idx] = scores
            baseline_is_probability[name] = is_probability
            baseline_details[name] = detail
            baseline_folds[name].append(_metrics(y[test_idx], scores, is_probability, config,
                                                 with_reliability=False))

    baselines = {
        name: {
            "fold_summary": summarise_folds(baseline_folds[name], SUMMARY_METRICS),
            "pooled": _metrics(y, baseline_oof[name], baseline_is_probability[name], config,
                               with_reliability=False),
            "gives_probabilities": baseline_is_probability[name],
            **baseline_details[name],
        }
        for name in config.baselines
    }
    return CrossValidationResult(
        oof_risk=oof_risk,
        oof_uncalibrated=oof_uncalibrated,
        fold_metrics=fold_metrics,
        fold_details=fold_details,
        pooled=classification_metrics(y, oof_risk, top_k_fractions=config.top_k_fractions,
                                      capacity=config.capacity),
        pooled_uncalibrated=classification_metrics(y, oof_uncalibrated, top_k_fractions=config.top_k_fractions),
        fold_summary=summarise_folds(fold_metrics, [*SUMMARY_METRICS, "brier_uncalibrated"]),
        baselines=baselines,
    )
