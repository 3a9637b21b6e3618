"""A small synthetic institution whose dropout mechanism is known, for fast behavioural tests.

Dropout depends on units approved out of enrolled, tuition being up to date, the programme and
(weakly) age, with some missing values, so every feature kind and the out_of ratio are exercised.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml import FeatureSpec

PROGRAMMES = ["nursing", "law", "design", "engineering", "tourism"]


def synthetic_schema() -> list[FeatureSpec]:
    return [
        FeatureSpec("units_enrolled", "first-semester units enrolled", "numeric", min_value=0, max_value=12),
        FeatureSpec("units_approved", "first-semester units approved", "numeric", min_value=0, max_value=12,
                    actionable=True, out_of="units_enrolled"),
        FeatureSpec("admission_grade", "Admission grade", "numeric", min_value=0, max_value=200),
        FeatureSpec("tuition_up_to_date", "Tuition fees up to date", "boolean", actionable=True),
        FeatureSpec("programme", "Programme", "categorical", categories=PROGRAMMES,
                    category_labels={"nursing": "Nursing", "law": "Law", "design": "Design",
                                     "engineering": "Engineering", "tourism": "Tourism"}),
        FeatureSpec("age", "Age at enrolment", "numeric", min_value=15, max_value=80, unit="years", protected=True),
        FeatureSpec("gender", "Gender", "categorical", categories=["f", "m"], protected=True),
    ]


def synthetic_students(n: int = 1200, seed: int = 0) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """(features, outcome 1 = dropped out, cohort entry year) for n students."""
    rng = np.random.default_rng(seed)
    enrolled = rng.integers(4, 9, size=n).astype(float)
    ability = rng.normal(size=n)
    approved = np.clip(np.round(enrolled * (0.55 + 0.3 * ability + rng.normal(0, 0.15, n))), 0, enrolled)
    grade = np.clip(120 + 15 * ability + rng.normal(0, 10, n), 90, 190).round(1)
    tuition = rng.random(n) > 0.15
    programme = rng.choice(PROGRAMMES, size=n, p=[0.3, 0.25, 0.2, 0.15, 0.1])
    age = np.clip(18 + rng.gamma(1.5, 3, size=n), 17, 60).round()
    gender = rng.choice(["f", "m"], size=n)
    programme_effect = pd.Series(programme).map(
        {"nursing": -0.4, "law": 0.0, "design": 0.3, "engineering": 0.5, "tourism": 0.2}
    ).to_numpy()
    logit = (-0.3 - 4.0 * (approved / enrolled - 0.55) - 1.6 * tuition + programme_effect
             + 0.04 * (age - 20) - 0.01 * (grade - 120))
    outcome = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    grade[rng.random(n) < 0.05] = np.nan
    frame = pd.DataFrame(
        {
            "units_enrolled": enrolled,
            "units_approved": approved,
            "admission_grade": grade,
            "tuition_up_to_date": tuition,
            "programme": programme.astype(object),
            "age": age,
            "gender": gender.astype(object),
        },
        index=pd.RangeIndex(1000, 1000 + n, name="student_id"),
    )
    cohort = pd.Series(rng.choice([2019, 2020, 2021, 2022], size=n), index=frame.index, name="entry_year")
    return frame, pd.Series(outcome, index=frame.index, name="dropped_out"), cohort
