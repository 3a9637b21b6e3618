"""The model families other dropout tools use, trained on exactly the same folds as LightGBM.

They exist so that every model card can say what LightGBM beat (or did not). Each uses standard,
reasonable settings rather than a search: they are reference points, not products. On large
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


def _make_model(name: str, n_train: int, config: TrainingConfig) -> Any:
    seed = config.seed
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
    final_step = model.steps[-1][1] if isinstance(model, Pipeline) else model
    if hasattr(final_step, "predict_proba"):
        scores, is_probability = model.predict_proba(test)[:, 1], True
    else:
        scores, is_probability = model.decision_function(test), False
    detail = {"train_rows": len(rows), "estimator": type(final_step).__name__}
    return np.asarray(scores, dtype=float), is_probability, detail
