"""Training settings an institution (or the platform default) chooses.

Defaults are meant to be safe for an institution that changes nothing: protected attributes
left out of the inputs, a bounded and seeded search, and honest nested evaluation.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

BASELINE_NAMES: tuple[str, ...] = ("logistic_regression", "decision_tree", "random_forest", "svm",
                                   "lightgbm_searched", "logistic_regression_searched", "random_forest_searched")
# What a model card compares against by default. The three random-searched families
# ("*_searched") took 70-230 s per outer fold each on UCI on the shared machine, too slow for a
# weekly retrain by default; the benchmark and an institution's config can ask for them.
DEFAULT_BASELINES: tuple[str, ...] = ("logistic_regression", "decision_tree", "random_forest", "svm")
SEARCHED_BASELINES: tuple[str, ...] = ("lightgbm_searched", "logistic_regression_searched", "random_forest_searched")
CALIBRATION_METHODS: tuple[str, ...] = ("none", "sigmoid", "isotonic")


@dataclass(frozen=True)
class TrainingConfig:
    """How ``train_model`` trains, evaluates and flags.

    ``flag_threshold`` fixes the risk above which a student is flagged; when it is None the
    threshold is chosen so that ``capacity`` students (or ``flag_fraction`` of them when no
    capacity is known) would be flagged among the training population.
    """

    seed: int = 42
    include_protected: bool = False
    n_folds: int = 5
    inner_folds: int = 3
    search_iterations: int = 8
    flag_threshold: float | None = None
    capacity: int | None = None
    flag_fraction: float = 0.2
    top_k_fractions: tuple[float, ...] = (0.1, 0.2)
    min_students_per_outcome: int = 30
    holdout_fraction: float = 0.2
    derive_ratios: bool = True
    min_category_count: int = 10
    min_category_share: float = 0.002
    tuning_max_rows: int = 20_000
    max_boost_rounds: int = 2000
    early_stopping_rounds: int = 50
    learning_rate: float = 0.03
    calibration_methods: tuple[str, ...] = ("sigmoid", "isotonic")
    # Where cohorts are known, calibrators are fitted on the newest cohort(s) of the rows with at
    # least this many students, and this many of each outcome (ml.calibration.newest_cohort_rows).
    calibration_min_rows: int = 300
    calibration_min_each: int = 30
    baselines: tuple[str, ...] = DEFAULT_BASELINES
    baseline_search_draws: int = 20
    baseline_max_train_rows: int = 20_000
    svm_kernel_max_rows: int = 5_000
    importance_sample_rows: int = 5_000
    n_jobs: int = 2
    large_data_rows: int = 20_000
    min_fairness_group_size: int = 30
    # Boosters averaged (different seeds) in every fit the platform scores with; see
    # ml.boosting.fit_ensemble. 1 turns seed averaging off.
    ensemble_members: int = 8
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.n_folds < 2 or self.inner_folds < 2:
            raise ValueError("n_folds and inner_folds must be at least 2")
        if self.search_iterations < 1:
            raise ValueError("search_iterations must be at least 1 (the default candidate)")
        if self.flag_threshold is not None and not 0.0 < self.flag_threshold < 1.0:
            raise ValueError("flag_threshold must be between 0 and 1")
        if self.capacity is not None and self.capacity < 1:
            raise ValueError("capacity must be a positive number of students")
        if not 0.0 < self.holdout_fraction < 0.5:
            raise ValueError("holdout_fraction must be between 0 and 0.5")
        if self.ensemble_members < 1:
            raise ValueError("ensemble_members must be at least 1")
        if self.min_fairness_group_size < 1:
            raise ValueError("min_fairness_group_size must be at least 1")
        unknown = set(self.calibration_methods) - set(CALIBRATION_METHODS)
        if unknown or not self.calibration_methods:
            raise ValueError(f"calibration_methods must be drawn from {CALIBRATION_METHODS}")
        unknown = set(self.baselines) - set(BASELINE_NAMES)
        if unknown:
            raise ValueError(f"unknown baselines {sorted(unknown)}; known: {BASELINE_NAMES}")

    def category_threshold(self, n_rows: int) -> int:
        """Students a category needs to get its own one-hot column; rarer ones count as "other".

        Grows with the data (0.2% of rows) so that 100,000 students do not turn every rare
        occupation code into a column of its own.
        """
        return max(self.min_category_count, math.ceil(self.min_category_share * n_rows))

    def scaled_for(self, n_rows: int) -> TrainingConfig:
        """The settings used for ``n_rows`` development students.

        Below ``large_data_rows`` this is the configuration itself. Above it, nested
        cross-validation repeats the search six times on two cores, so the search is made
        cheaper — a faster learning rate with at most 300 rounds, two inner folds, tuning on a
        6,000-row sample — and baselines train on a 5,000-row sample, keeping a retrain of
        100,000 students within two minutes. The model card records the settings used.
        """
        if n_rows < self.large_data_rows:
            return self
        return replace(
            self,
            learning_rate=max(self.learning_rate, 0.1),
            max_boost_rounds=min(self.max_boost_rounds, 300),
            early_stopping_rounds=min(self.early_stopping_rounds, 20),
            inner_folds=2,
            tuning_max_rows=min(self.tuning_max_rows, 6_000),
            baseline_max_train_rows=min(self.baseline_max_train_rows, 5_000),
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, tuple):
                data[key] = list(value)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingConfig:
        values = dict(data)
        for key in ("top_k_fractions", "calibration_methods", "baselines"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)
