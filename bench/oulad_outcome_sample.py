"""Write tests/data/oulad_day60_outcomes_sample.csv: the OULAD day-60 features of a sample of
enrolments of every final result, failures included (tests/data/README.md describes the file).

    .venv/bin/python bench/oulad_outcome_sample.py     # reads /work/shared/data/oulad

600 enrolments drawn at random (seed 20) from each of the four presentations among everyone
still registered at day 60; the features are ``_data.load_oulad_results``'s.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _data import ROOT, load_oulad_results

PER_PRESENTATION = 600
SEED = 20
TARGET = ROOT / "tests" / "data" / "oulad_day60_outcomes_sample.csv"


def main() -> None:
    features, result, cohort = load_oulad_results(60)
    info = features.assign(code_presentation=cohort, final_result=result)
    sample = info.groupby("code_presentation").sample(PER_PRESENTATION, random_state=SEED).sort_index()
    sample.insert(0, "enrolment", [f"{module}-{presentation}-{index}" for module, presentation, index in
                                   zip(sample["code_module"], sample["code_presentation"], sample.index, strict=True)])
    sample.to_csv(TARGET, index=False, float_format="%.6g")
    print(f"{len(sample)} rows written to {TARGET}: {sample['final_result'].value_counts().to_dict()}")


if __name__ == "__main__":
    main()
