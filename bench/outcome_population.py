"""OULAD with failures included: where the calibrator is fitted (issue 20, "the right population").

    nice -n 10 .venv/bin/python bench/outcome_population.py     # about 10 minutes on 2 cores

Every enrolment still registered at day 60 is trained on, failures included, as an institution
mapping Withdrawn and Fail to "did not complete" and Pass/Distinction to "completed" would:
``train_model`` as the platform runs it (presentation as cohort, so 2014J is the out-of-time
holdout), once with the calibrator fitted on every development row (as before) and once on the
newest cohort(s) of them (``ml.calibration.newest_cohort_rows``). Prints ROC-AUC, Brier score and
expected calibration error (ECE) on the 2014J holdout, and what students shown 90-100% did.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _data import load_oulad_results, oulad_schema

from ml import TrainingConfig, train_model

CONFIG = TrainingConfig(n_folds=3, search_iterations=4, baselines=())
EVERY_ROW = 10**9  # a calibration_min_rows no set of cohorts reaches: the calibrator sees every row


def main() -> None:
    frame, result, cohort = load_oulad_results(60)
    left = result.isin(["Withdrawn", "Fail"]).astype(int)
    held = (cohort == "2014J").to_numpy()
    print(f"OULAD day 60, everyone still registered: {len(frame)} enrolments {result.value_counts().to_dict()}; "
          f"2014J holdout {int(held.sum())}, did not complete {left[held].mean():.3f}")
    for name, config in (("calibrated on every development row", replace(CONFIG, calibration_min_rows=EVERY_ROW)),
                         ("calibrated on the newest cohort(s)", CONFIG)):
        start = time.perf_counter()
        model = train_model(frame, left, oulad_schema(), config, cohort=cohort)
        seconds = time.perf_counter() - start
        metrics = model.holdout_metrics
        risk = np.asarray(model.metadata["holdout_risk"])
        outcome = left.loc[model.metadata["holdout_index"]].to_numpy()
        top = risk >= 0.9
        fitted = model.model_card["calibration"]["development_fitted_on"]
        print(f"\n{name} [{seconds:.0f} s]: {fitted['description']}\n"
              f"  2014J: ROC-AUC {metrics['roc_auc']:.3f}, Brier {metrics['brier']:.4f}, ECE {metrics['ece']:.4f}, "
              f"mean risk {metrics['mean_risk']:.3f}\n"
              f"  shown 90-100%: {int(top.sum())} students, {outcome[top].mean():.2f} did not complete")


if __name__ == "__main__":
    main()
