"""The model families other dropout tools use, trained on exactly the same folds as LightGBM.

They exist so that every model card can say what LightGBM beat (or did not). The plain ones use
standard, reasonable settings; the ``*_searched`` ones (a LightGBM, a logistic regression and a
random forest) each get a 20-draw random search of their own by inner cross-validated ROC-AUC on
the outer fold's training part, which is what a careful analyst would try first: the platform's
own search has to be at least as good as those. On large
data, their training rows are capped (stratified subsample) so that a retrain stays within
minutes on two cores; the model card records the cap. Kernel SVM cost grows with the square of
the rows, so above ``svm_kernel_max_rows`` an approximate RBF kernel (Nystroem) is used.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.kernel_approximation import Nystroem
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import RandomizedSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC
from sklearn.tree import DecisionTreeClassifier

from ml.config import TrainingConfig
from ml.encoding import MISSING_SENTINEL


def _impute_sentinels(matrix: np.ndarray, medians: np.ndarray) -> np.ndarray:
    """Linear and kernel models would read the tree sentinel as a huge number; use medians."""
    out = matrix.copy()
    rows, cols = np.nonzero(out == MISSING_SENTINEL)
    out[rows, cols] = medians[cols]
    return out


def _column_medians(matrix: np.ndarray) -> np.ndarray:
    masked = np.where(matrix == MISSING_SENTINEL, np.nan, matrix)
    with np.errstate(all="ignore"):
        medians = np.nanmedian(masked, axis=0) if len(masked) else np.zeros(matrix.shape[1])
    return np.nan_to_num(medians, nan=0.0)


def _subsample(y: np.ndarray, max_rows: int, seed: int) -> np.ndarray:
    rows = np.arange(len(y))
    if len(rows) <= max_rows:
        return rows
    rng = np.random.default_rng(seed)
    picks = []
    for label in (0, 1):
        members = rows[y == label]
        take = max(1, round(max_rows * len(members) / len(rows)))
        picks.append(rng.choice(members, size=min(take, len(members)), replace=False))
    return np.sort(np.concatenate(picks))


# Random search spaces of the searched baselines (draws per search: config.baseline_search_draws).
SEARCHED_SPACES: dict[str, dict[str, list[Any]]] = {
    "lightgbm_searched": {
        "n_estimators": [100, 200, 400, 800],
        "learning_rate": [0.01, 0.02, 0.05, 0.1],
        "num_leaves": [4, 7, 15, 31, 63],
        "min_child_samples": [5, 10, 20, 40, 80],
        "subsample": [0.6, 0.8, 1.0],
        "colsample_bytree": [0.3, 0.5, 0.7, 0.9, 1.0],
        "reg_lambda": [0.0, 0.1, 1.0, 10.0],
    },
    "logistic_regression_searched": {
        "logisticregression__C": [float(c) for c in np.logspace(-3, 2, 21)],
        "logisticregression__class_weight": [None, "balanced"],
    },
    "random_forest_searched": {
        "max_features": ["sqrt", 0.2, 0.33, 0.5, 0.7],
        "min_samples_leaf": [1, 2, 4, 8, 16],
        "max_depth": [None, 6, 10, 16],
        "class_weight": [None, "balanced_subsample"],
    },
}


def _searched_model(name: str, config: TrainingConfig) -> Any:
    seed = config.seed
    if name == "lightgbm_searched":
        import lightgbm as lgb

        estimator: Any = lgb.LGBMClassifier(subsample_freq=1, n_jobs=1, random_state=seed, verbose=-1)
    elif name == "logistic_regression_searched":
        estimator = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    else:
        estimator = RandomForestClassifier(n_estimators=150, n_jobs=1, random_state=seed)
    return RandomizedSearchCV(
        estimator, SEARCHED_SPACES[name], n_iter=config.baseline_search_draws, scoring="roc_auc",
        cv=StratifiedKFold(config.inner_folds, shuffle=True, random_state=seed), refit=True,
        random_state=seed, n_jobs=1,
    )


def _make_model(name: str, n_train: int, config: TrainingConfig) -> Any:
    seed = config.seed
    if name in SEARCHED_SPACES:
        return _searched_model(name, config)
    if name == "logistic_regression":
        return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000))
    if name == "decision_tree":
        return DecisionTreeClassifier(max_depth=6, min_samples_leaf=20, random_state=seed)
    if name == "random_forest":
        return RandomForestClassifier(
            n_estimators=300, min_samples_leaf=2, max_features="sqrt", n_jobs=config.n_jobs, random_state=seed
        )
    if name == "svm":
        if n_train <= config.svm_kernel_max_rows:
            return make_pipeline(StandardScaler(), SVC(kernel="rbf", C=1.0, gamma="scale", random_state=seed))
        return make_pipeline(
            StandardScaler(),
            Nystroem(kernel="rbf", n_components=150, random_state=seed),
            LinearSVC(C=0.1, random_state=seed),
        )
    raise ValueError(f"unknown baseline {name!r}")


def baseline_scores(
    name: str, X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, config: TrainingConfig
) -> tuple[np.ndarray, bool, dict[str, Any]]:
    """Scores for the test rows, whether they are probabilities, and how the model was trained."""
    rows = _subsample(y_train, config.baseline_max_train_rows, config.seed)
    medians = _column_medians(X_train[rows])
    train = _impute_sentinels(X_train[rows], medians)
    test = _impute_sentinels(X_test, medians)
    model = _make_model(name, len(rows), config)
    model.fit(train, y_train[rows])
    chosen: dict[str, Any] | None = None
    if isinstance(model, RandomizedSearchCV):
        chosen = {key.split("__")[-1]: value for key, value in model.best_params_.items()}
        model = model.best_estimator_
    final_step = model.steps[-1][1] if isinstance(model, Pipeline) else model
    if hasattr(final_step, "predict_proba"):
        scores, is_probability = model.predict_proba(test)[:, 1], True
    else:
        scores, is_probability = model.decision_function(test), False
    detail: dict[str, Any] = {"train_rows": len(rows), "estimator": type(final_step).__name__}
    if chosen is not None:
        detail["search_draws"] = config.baseline_search_draws
        detail["chosen_parameters"] = chosen
    return np.asarray(scores, dtype=float), is_probability, detail
