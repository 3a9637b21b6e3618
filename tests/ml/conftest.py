"""Shared fixtures for the ml tests: one small synthetic model trained once per session.

Training is the slow part, so tests that only read a trained model share it; tests about
training itself train their own tiny models with a minimal search budget.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ml import TrainedModel, TrainingConfig, train_model
from tests.ml.synthetic_students import synthetic_schema, synthetic_students

REPO_ROOT = Path(__file__).resolve().parents[2]
UCI_CANDIDATES = (
    REPO_ROOT / "students" / "demo_data" / "uci_dropout.csv",
    Path("/work/shared/data/uci-dropout/data.csv"),
)

FAST_CONFIG = TrainingConfig(
    n_folds=3,
    inner_folds=2,
    search_iterations=2,
    learning_rate=0.1,
    max_boost_rounds=200,
    early_stopping_rounds=20,
    baselines=("logistic_regression", "decision_tree"),
)


@pytest.fixture(scope="session")
def synthetic_data() -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    return synthetic_students(1200, seed=0)


@pytest.fixture(scope="session")
def trained(synthetic_data: tuple[pd.DataFrame, pd.Series, pd.Series]) -> TrainedModel:
    frame, outcome, cohort = synthetic_data
    return train_model(frame, outcome, synthetic_schema(), FAST_CONFIG, cohort=cohort)


def uci_csv_path() -> Path:
    """The demo copy in the repo when present, else the shared data; skip when neither exists."""
    for path in UCI_CANDIDATES:
        if path.exists():
            return path
    pytest.skip("UCI dropout data not found (students/demo_data/uci_dropout.csv or /work/shared/data)")
