"""LightGBM fitting and the bounded, seeded hyperparameter search.

The search is small on purpose: an institution retrains weekly on two shared cores, and a
regularised default already does most of the work. Candidates are scored by inner
cross-validated log loss (which rewards both ranking and honest probabilities); the winner's
out-of-fold scores are kept so calibration is fitted on predictions the booster never saw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

# Depth is capped so that exact TreeSHAP stays fast and memory-bounded at scoring time.
MAX_DEPTH = 8
# LightGBM trains single-threaded. Its OpenMP threads synchronise on every histogram and
# busy-wait; on a shared two-core machine (a Celery worker next to the web server and database,
# or a niced job) a second thread makes training 4-15x *slower*: measured 1.5 s with one thread
# against 19 s with two for 200 rounds on 64,000 students, and 2 s against 8-35 s for a
# 400-student training, under a load average of 4-7.
TRAINING_THREADS = 1
# Prediction and TreeSHAP split rows between threads without per-step synchronisation and do
# scale with a second core, but only on batches large enough to amortise starting the threads.
PARALLEL_PREDICTION_MIN_ROWS = 5_000


def prediction_threads(n_rows: int, n_jobs: int) -> int:
    return n_jobs if n_rows >= PARALLEL_PREDICTION_MIN_ROWS else 1

DEFAULT_CANDIDATE: dict[str, Any] = {
    "num_leaves": 15,
    "min_child_samples": 20,
    "feature_fraction": 0.7,
    "bagging_fraction": 0.8,
    "lambda_l2": 1.0,
    "lambda_l1": 0.0,
    "min_split_gain": 0.0,
    "class_weighting": "none",
}

SEARCH_SPACE: dict[str, list[Any]] = {
    "num_leaves": [4, 7, 15, 31, 63],
    "min_child_samples": [10, 20, 40, 80],
    "feature_fraction": [0.3, 0.5, 0.7, 0.9],
    "bagging_fraction": [0.6, 0.8, 1.0],
    "lambda_l2": [0.0, 0.3, 1.0, 3.0, 10.0, 30.0],
    "lambda_l1": [0.0, 0.1, 1.0],
    "min_split_gain": [0.0, 0.01, 0.1],
    "class_weighting": ["none", "balanced"],
}


def lightgbm_params(candidate: dict[str, Any], *, y: np.ndarray, seed: int,
                    learning_rate: float) -> dict[str, Any]:
    """Full LightGBM parameters for a search candidate; deterministic given the seed."""
    positives = float(np.sum(y))
    negatives = float(len(y) - positives)
    scale_pos_weight = 1.0
    if candidate.get("class_weighting") == "balanced" and positives > 0:
        scale_pos_weight = negatives / positives
    return {
        "objective": "binary",
        "metric": "binary_logloss",
        "learning_rate": learning_rate,
        "num_leaves": int(candidate["num_leaves"]),
        "max_depth": MAX_DEPTH,
        "min_child_samples": int(candidate["min_child_samples"]),
        "feature_fraction": float(candidate["feature_fraction"]),
        "bagging_fraction": float(candidate["bagging_fraction"]),
        "bagging_freq": 1 if candidate["bagging_fraction"] < 1.0 else 0,
        "lambda_l2": float(candidate["lambda_l2"]),
        "lambda_l1": float(candidate["lambda_l1"]),
        "min_split_gain": float(candidate["min_split_gain"]),
        "scale_pos_weight": scale_pos_weight,
        "seed": seed,
        "bagging_seed": seed,
        "feature_fraction_seed": seed,
        "data_random_seed": seed,
        "deterministic": True,
        "force_col_wise": True,
        "num_threads": TRAINING_THREADS,
        "verbosity": -1,
        "feature_pre_filter": False,
    }


def search_candidates(n: int, seed: int) -> list[dict[str, Any]]:
    """The default candidate followed by n-1 distinct random draws (reproducible for a seed)."""
    rng = np.random.default_rng(seed)
    candidates = [dict(DEFAULT_CANDIDATE)]
    seen = {tuple(sorted(DEFAULT_CANDIDATE.items()))}
    attempts = 0
    while len(candidates) < n and attempts < 50 * n:
        attempts += 1
        draw = {key: values[int(rng.integers(len(values)))] for key, values in SEARCH_SPACE.items()}
        signature = tuple(sorted(draw.items()))
        if signature not in seen:
            seen.add(signature)
            candidates.append(draw)
    return candidates


def fit_booster(X: np.ndarray, y: np.ndarray, params: dict[str, Any], num_rounds: int) -> lgb.Booster:
    dataset = lgb.Dataset(X, label=y, params={"verbosity": -1}, free_raw_data=True)
    return lgb.train(params, dataset, num_boost_round=max(1, num_rounds))


@dataclass
class SearchResult:
    """What the inner search decided, and the evidence for the model card."""

    candidate: dict[str, Any]
    num_rounds: int
    oof_raw: np.ndarray
    oof_index: np.ndarray
    trials: list[dict[str, Any]]
    tuning_rows: int


def search_hyperparameters(
    X: np.ndarray,
    y: np.ndarray,
    *,
    iterations: int,
    inner_folds: int,
    seed: int,
    learning_rate: float,
    max_rounds: int,
    early_stopping_rounds: int,
    max_rows: int,
) -> SearchResult:
    """Inner-CV random search with early stopping; returns the winner and its out-of-fold scores.

    Large data is tuned on a stratified subsample of ``max_rows`` rows: hyperparameters
    transfer well from tens of thousands of rows, and this keeps retraining within minutes.
    """
    rng = np.random.default_rng(seed)
    rows = np.arange(len(y))
    if len(rows) > max_rows:
        chosen = []
        for label in (0, 1):
            members = rows[y == label]
            take = max(1, round(max_rows * len(members) / len(rows)))
            chosen.append(rng.choice(members, size=min(take, len(members)), replace=False))
        rows = np.sort(np.concatenate(chosen))
    X_tune, y_tune = X[rows], y[rows]
    minority = int(min(y_tune.sum(), len(y_tune) - y_tune.sum()))
    folds = list(
        StratifiedKFold(max(2, min(inner_folds, minority)), shuffle=True, random_state=seed).split(X_tune, y_tune)
    )
    datasets = []
    for train_idx, valid_idx in folds:
        train_set = lgb.Dataset(X_tune[train_idx], label=y_tune[train_idx],
                                params={"verbosity": -1, "feature_pre_filter": False}, free_raw_data=False)
        valid_set = lgb.Dataset(X_tune[valid_idx], label=y_tune[valid_idx], reference=train_set,
                                free_raw_data=False)
        datasets.append((train_set, valid_set))

    trials: list[dict[str, Any]] = []
    best: tuple[float, int, np.ndarray] | None = None
    best_candidate: dict[str, Any] = {}
    for candidate in search_candidates(iterations, seed):
        oof = np.zeros(len(y_tune))
        losses, rounds = [], []
        for (train_idx, valid_idx), (train_set, valid_set) in zip(folds, datasets, strict=True):
            params = lightgbm_params(candidate, y=y_tune[train_idx], seed=seed, learning_rate=learning_rate)
            booster = lgb.train(
                params,
                train_set,
                num_boost_round=max_rounds,
                valid_sets=[valid_set],
                callbacks=[lgb.early_stopping(early_stopping_rounds, verbose=False)],
            )
            iteration = booster.best_iteration or max_rounds
            oof[valid_idx] = booster.predict(X_tune[valid_idx], num_iteration=iteration, raw_score=True)
            rounds.append(iteration)
            losses.append(_log_loss_from_raw(y_tune[valid_idx], oof[valid_idx]))
        mean_loss = float(np.mean(losses))
        mean_rounds = round(float(np.mean(rounds)))
        auc = float(roc_auc_score(y_tune, oof))
        trials.append({**candidate, "cv_log_loss": mean_loss, "cv_roc_auc": auc, "rounds": mean_rounds})
        if best is None or mean_loss < best[0]:
            best = (mean_loss, mean_rounds, oof)
            best_candidate = candidate
    assert best is not None
    # The final booster sees 1/inner_folds more rows than each inner one; scale the rounds gently.
    scaled_rounds = max(1, math.ceil(best[1] * (len(folds) / (len(folds) - 1)) ** 0.5))
    return SearchResult(
        candidate=best_candidate,
        num_rounds=scaled_rounds,
        oof_raw=best[2],
        oof_index=rows,
        trials=trials,
        tuning_rows=len(rows),
    )


def _log_loss_from_raw(y: np.ndarray, raw: np.ndarray) -> float:
    # log(1 + e^-z) for positives, log(1 + e^z) for negatives, computed stably
    return float(np.mean(np.logaddexp(0.0, np.where(y > 0, -raw, raw))))
