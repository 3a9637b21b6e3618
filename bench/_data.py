"""Real data for the ml benchmarks and tests: UCI dropout and OULAD as institutions would load them.

The UCI columns come from the product's own schema (``students.uci_schema``, plain Python), so the
benchmark measures the model on exactly the features the demo institution declares. The
``out_of`` hints (units approved out of units enrolled, ...) are off by default: a
``FeatureDefinition`` cannot hold them, so the product never trains with them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ml import FeatureSpec  # noqa: E402
from students.uci_schema import UCI_COLUMNS  # noqa: E402

UCI_PATHS = (ROOT / "students" / "demo_data" / "uci_dropout.csv", Path("/work/shared/data/uci-dropout/data.csv"))
OULAD_DIR = Path("/work/shared/data/oulad")

# Counts that are part of another count of the same semester: approved, evaluated, credited and
# not-evaluated units are all out of the units enrolled.
UCI_OUT_OF = {
    f"units_{sem}_{part}": f"units_{sem}_enrolled"
    for sem in ("1st", "2nd")
    for part in ("approved", "credited", "without_evaluations")
}


def uci_path() -> Path | None:
    return next((path for path in UCI_PATHS if path.exists()), None)


def uci_schema(*, out_of_hints: bool = False) -> list[FeatureSpec]:
    specs = []
    for column in UCI_COLUMNS:
        specs.append(FeatureSpec(
            key=column.key, label=column.label, kind=column.kind,  # type: ignore[arg-type]
            min_value=column.min_value, max_value=column.max_value,
            categories=sorted(column.code_labels, key=int) if column.kind == "categorical" and column.code_labels
            else None,
            category_labels=dict(column.code_labels), unit=column.unit, protected=column.protected,
            actionable=column.actionable, out_of=UCI_OUT_OF.get(column.key) if out_of_hints else None,
        ))
    return specs


# What a student registers for in the first semester (units enrolled, units credited from earlier
# studies) is on file the day they enrol; everything else about curricular units is a result.
FIRST_SEMESTER_REGISTRATION = ("units_1st_enrolled", "units_1st_credited")


def is_curricular_unit(key: str) -> bool:
    return key.startswith("units_")


def enrolment_time_schema(schema: list[FeatureSpec], *, with_registration: bool = True) -> list[FeatureSpec]:
    """Features known on the day a student enrols: no semester results.

    ``with_registration`` keeps the first-semester registration (units enrolled and credited); the
    strict variant drops every curricular-unit column.
    """
    keep = set(FIRST_SEMESTER_REGISTRATION) if with_registration else set()
    return [spec for spec in schema if not is_curricular_unit(spec.key) or spec.key in keep]


def load_uci(path: Path | None = None) -> tuple[pd.DataFrame, pd.Series]:
    """Dropout (1) vs Graduate (0) students, columns renamed to schema keys; Enrolled rows dropped."""
    path = path or uci_path()
    if path is None:
        raise FileNotFoundError("UCI dropout data not found")
    raw = pd.read_csv(path, sep=";", encoding="utf-8-sig")
    raw.columns = [str(c).strip() for c in raw.columns]
    raw = raw[raw["Target"].isin(["Dropout", "Graduate"])].reset_index(drop=True)
    frame = pd.DataFrame(index=pd.RangeIndex(len(raw), name="student"))
    for column in UCI_COLUMNS:
        values = raw[column.header.strip()]
        if column.kind == "categorical":
            frame[column.key] = values.astype(int).astype(str).astype(object)
        elif column.kind == "boolean":
            frame[column.key] = values.astype(int).astype(bool)
        else:
            frame[column.key] = values.astype(float)
    outcome = pd.Series((raw["Target"] == "Dropout").astype(int).to_numpy(), index=frame.index, name="dropped_out")
    return frame, outcome


# -- OULAD -----------------------------------------------------------------------------------------
OULAD_PROTECTED = {"gender", "age_band", "disability"}


def oulad_schema() -> list[FeatureSpec]:
    return [
        FeatureSpec("code_module", "Module", "categorical"),
        FeatureSpec("gender", "Gender", "categorical", categories=["F", "M"], protected=True),
        FeatureSpec("region", "Region", "categorical"),
        FeatureSpec("highest_education", "Highest previous education", "categorical"),
        FeatureSpec("imd_band", "Deprivation band of home area (IMD)", "categorical"),
        FeatureSpec("age_band", "Age band", "categorical", categories=["0-35", "35-55", "55<="], protected=True),
        FeatureSpec("num_of_prev_attempts", "Previous attempts at this module", "numeric", min_value=0),
        FeatureSpec("studied_credits", "Credits being studied", "numeric", min_value=0, unit="credits"),
        FeatureSpec("disability", "Declared disability", "boolean", protected=True),
        FeatureSpec("date_registration", "Registered (days before start)", "numeric", unit="days"),
        FeatureSpec("assessments_due", "assessments due so far", "numeric", min_value=0),
        FeatureSpec("assessments_missed", "assessments due so far not submitted", "numeric", min_value=0,
                    actionable=True, out_of="assessments_due"),
        FeatureSpec("assessments_late", "assessments submitted late", "numeric", min_value=0, actionable=True,
                    out_of="assessments_due"),
        FeatureSpec("mean_score", "Mean assessment score so far, relative to classmates", "numeric",
                    min_value=-100, max_value=100, unit="points", actionable=True),
        FeatureSpec("weighted_score", "Weighted score over the assessments due so far", "numeric", min_value=0,
                    max_value=100, actionable=True),
        FeatureSpec("days_since_last_submission", "Days since last submission", "numeric", unit="days"),
    ]


def load_oulad(cutoff_day: int = 60, directory: Path = OULAD_DIR) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """Withdrawn (1) vs Pass/Distinction (0) from what is known by ``cutoff_day`` of each presentation.

    Students who had already unregistered by the cut-off are left out: their outcome is known, so
    there is nothing to predict (and keeping them would leak the label into the features).
    Returns (features, outcome, cohort = code_presentation such as "2014J").
    """
    features, result, cohort = load_oulad_results(cutoff_day, directory, results=("Withdrawn", "Pass", "Distinction"))
    return features, (result == "Withdrawn").astype(int).rename("withdrawn"), cohort


OULAD_RESULTS = ("Withdrawn", "Fail", "Pass", "Distinction")


def load_oulad_results(cutoff_day: int = 60, directory: Path = OULAD_DIR, *, results: tuple[str, ...] = OULAD_RESULTS,
                       ) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """Every student still registered at ``cutoff_day`` whose final result is one of ``results``
    (by default all four, failures included: the students a product scores on day 60).
    Returns (features, final_result, cohort = code_presentation)."""
    info = pd.read_csv(directory / "studentInfo.csv")
    registration = pd.read_csv(directory / "studentRegistration.csv")
    assessments = pd.read_csv(directory / "assessments.csv")
    submissions = pd.read_csv(directory / "studentAssessment.csv")
    key = ["code_module", "code_presentation", "id_student"]
    data = info.merge(registration, on=key, how="left")
    data = data[data["final_result"].isin(list(results))]
    data = data[~(data["date_unregistration"] <= cutoff_day)]
    data["imd_band"] = data["imd_band"].replace({"10-20": "10-20%"})

    due = assessments[(assessments["date"] <= cutoff_day) & (assessments["assessment_type"] != "Exam")]
    due_counts = due.groupby(["code_module", "code_presentation"]).agg(
        assessments_due=("id_assessment", "count"), weight_due=("weight", "sum"))
    done = submissions.merge(assessments, on="id_assessment")
    done = done[(done["date_submitted"] <= cutoff_day) & (done["assessment_type"] != "Exam")]
    done = done.assign(
        late=(done["date_submitted"] > done["date"]).astype(int),
        weighted=np.where(done["date"] <= cutoff_day, done["score"] * done["weight"], 0.0),
        due_by_cutoff=(done["date"] <= cutoff_day).astype(int),
    )
    per_student = done.groupby(key).agg(
        submitted_due=("due_by_cutoff", "sum"),
        assessments_late=("late", "sum"),
        mean_score=("score", "mean"),
        weighted_score=("weighted", "sum"),
        last_submission=("date_submitted", "max"),
    )
    data = data.merge(due_counts, on=["code_module", "code_presentation"], how="left")
    data = data.merge(per_student, on=key, how="left")
    data["assessments_due"] = data["assessments_due"].fillna(0.0)
    # Missed rather than submitted: a submission count rises and falls with each module's calendar,
    # the number of due assessments not handed in does not.
    data["assessments_missed"] = data["assessments_due"] - data["submitted_due"].fillna(0.0)
    data["assessments_late"] = data["assessments_late"].fillna(0.0)
    # Score earned over the weight of everything due so far (unsubmitted work counts as 0): a
    # cumulative sum would fall whenever a module moves a deadline past the cut-off.
    data["weighted_score"] = np.where(
        data["weight_due"] > 0, data["weighted_score"].fillna(0.0) / data["weight_due"], np.nan
    )
    data["days_since_last_submission"] = np.where(
        data["last_submission"].notna(), cutoff_day - data["last_submission"], np.nan
    )
    # Marking differs between presentations of a module (BBB's mean score by day 60 fell from 80 to
    # 64 in 2014J); a score relative to the same presentation's classmates means the same thing in
    # every presentation, and is computable for a current cohort before any outcome is known.
    data["mean_score"] = data["mean_score"] - data.groupby(["code_module", "code_presentation"])[
        "mean_score"].transform("mean")
    data["disability"] = data["disability"].map({"Y": True, "N": False})
    data = data.reset_index(drop=True)
    data.index.name = "enrolment"
    result = data["final_result"].rename("final_result")
    cohort = data["code_presentation"].rename("presentation")
    features = data[[spec.key for spec in oulad_schema()]].copy()
    for spec in oulad_schema():
        if spec.kind == "categorical":
            features[spec.key] = features[spec.key].astype(object)
    return features, result, cohort


def resample_uci(n_rows: int, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """n_rows students drawn with replacement from the UCI rows, grades jittered slightly.

    For speed benchmarks at institution scale (100,000 students): realistic value
    distributions and tree paths, without identical duplicates.
    """
    frame, outcome = load_uci()
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(frame), size=n_rows)
    sample = frame.iloc[picks].reset_index(drop=True)
    for key in ("admission_grade", "previous_qualification_grade", "units_1st_grade", "units_2nd_grade"):
        noise = rng.normal(0.0, 0.5, size=n_rows)
        sample[key] = np.where(sample[key] > 0, (sample[key] + noise).round(2), sample[key])
    sample.index.name = "student"
    return sample, pd.Series(outcome.to_numpy()[picks], index=sample.index, name="dropped_out")
