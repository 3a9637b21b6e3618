"""Training settings an institution (or the platform default) chooses.

Defaults are meant to be safe for an institution that changes nothing: protected attributes
left out of the inputs, a bounded and seeded search, and honest nested evaluation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

BASELINE_NAMES: tuple[str, ...] = ("logistic_regression", "decision_tree", "random_forest", "svm")
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
    tuning_max_rows: int = 20_000
    max_boost_rounds: int = 2000
    early_stopping_rounds: int = 50
    learning_rate: float = 0.03
    calibration_methods: tuple[str, ...] = ("sigmoid", "isotonic")
    baselines: tuple[str, ...] = BASELINE_NAMES
    baseline_max_train_rows: int = 20_000
    svm_kernel_max_rows: int = 5_000
    importance_sample_rows: int = 5_000
    n_jobs: int = 2
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
        unknown = set(self.calibration_methods) - set(CALIBRATION_METHODS)
        if unknown or not self.calibration_methods:
            raise ValueError(f"calibration_methods must be drawn from {CALIBRATION_METHODS}")
        unknown = set(self.baselines) - set(BASELINE_NAMES)
        if unknown:
            raise ValueError(f"unknown baselines {sorted(unknown)}; known: {BASELINE_NAMES}")

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
