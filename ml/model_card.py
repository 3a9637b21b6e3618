"""The model card as data: what the web app renders on a model's page.

Written for an administrator deciding whether to trust and promote a model: what it was trained
on, how it was evaluated (and why the figures are honest), what it beat, how well its risks are
calibrated, how it treats each protected group, what drives it, and what it must not be used
for. ``docs/model_card.md`` explains how to read each part.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ml.config import TrainingConfig
from ml.encoding import FeatureEncoder
from ml.schema import FeatureSpec

if TYPE_CHECKING:
    from ml.evaluation import CrossValidationResult
    from ml.pipeline import FittedPipeline

MODEL_CARD_VERSION = 1

# The card's sentences are kept twice: as data (``statements``: a code per sentence with its
# figures) and in English (``intended_use``, ``out_of_scope``, ``limitations``), so the web app
# can word them in the reader's language (predictions/model_card_text.py) while ml stays free of it.
INTENDED_USE_CODE = "early_support"
INTENDED_USE = (
    "Rank and flag currently enrolled students of this institution by their risk of dropping out, so "
    "that advisors can offer support early and spend their limited time where it matters most. The "
    "risk and its factors are a prompt for a conversation, not a verdict."
)

OUT_OF_SCOPE_TEXT = {
    "decisions": "Admission, funding, grading or disciplinary decisions about a student.",
    "other_students": "Students of another institution, or of programmes and cohorts unlike those it was trained on.",
    "judging_students": "Judging a student's ability or worth: it predicts an outcome that support can change.",
}
OUT_OF_SCOPE = list(OUT_OF_SCOPE_TEXT.values())

# The limitations that take no figures, by code.
FIXED_LIMITATIONS = {
    "past_students": "Trained on this institution's past students only; it reflects how students left in the past, "
                     "including any past inequities in support.",
    "calibration_drift": "Risks are calibrated on past cohorts. If the student population, programmes or data entry "
                         "change, calibration can drift: compare new cohorts' outcomes with the reliability table.",
    "explanations_not_causes": "Explanations describe what the model uses, not causes. Changing an actionable factor "
                               "in a what-if shows the model's response, not a guaranteed effect of an intervention.",
    "no_out_of_time": "No out-of-time check: without a cohort/entry term the holdout is a random sample, which can "
                      "overstate how well the model will do on next year's students.",
    "proxies": "Protected attributes are left out of the inputs, but other features can act as proxies for them; the "
               "fairness audit is the check on outcomes, not the exclusion.",
}


def limitation_text(entry: dict[str, Any], labels: dict[str, str] | None = None) -> str:
    """One limitation (a ``statements["limitations"]`` entry) in English; ``labels`` names features."""
    labels = labels or {}
    code = entry["code"]
    if code in FIXED_LIMITATIONS:
        return FIXED_LIMITATIONS[code]
    if code == "small_training_set":
        return (f"Small training set ({entry['rows']} students, {entry['dropped_out']} dropped out): metrics vary "
                "noticeably between folds; read the fold spread before trusting a single figure.")
    if code == "small_fairness_groups":
        name = labels.get(entry["attribute"], entry["attribute"])
        return (f"Fairness for {name}: groups {', '.join(entry['groups'])} have fewer than "
                f"{entry['min_group_size']} students: their figures are reported but too unstable to count in the "
                "largest gaps or the promotion gate.")
    if code == "strong_proxies":
        strong = [f"{labels.get(item['feature'], item['feature'])} (ROC-AUC {item['auc']:.2f})"
                  for item in entry["attributes"]]
        return ("The inputs predict " + ", ".join(strong) + " well (proxy check): the model can effectively use "
                "these attributes through other inputs; the fairness audit is where their effect on flags is measured.")
    raise ValueError(f"unknown limitation {code!r}")


def _comparison_row(name: str, fold_summary: dict[str, Any], pooled: dict[str, Any]) -> dict[str, Any]:
    def mean(metric: str) -> float | None:
        entry = fold_summary.get(metric)
        return entry["mean"] if entry else None

    def std(metric: str) -> float | None:
        entry = fold_summary.get(metric)
        return entry["std"] if entry else None

    top = pooled.get("top_k", {})
    return {
        "model": name,
        "roc_auc_mean": mean("roc_auc"),
        "roc_auc_std": std("roc_auc"),
        "pr_auc_mean": mean("pr_auc"),
        "brier_mean": mean("brier"),
        "ece_pooled": pooled.get("ece"),
        "precision_at_top_10pct": top.get("top_10pct", {}).get("precision"),
        "recall_at_top_20pct": top.get("top_20pct", {}).get("recall"),
    }


def _limitations(*, n_rows: int, positives: int, holdout_info: dict[str, Any], config: TrainingConfig,
                 excluded: Sequence[dict[str, str]], fairness: dict[str, Any]) -> list[dict[str, Any]]:
    notes: list[dict[str, Any]] = [{"code": "past_students"}, {"code": "calibration_drift"},
                                   {"code": "explanations_not_causes"}]
    if n_rows < 1000 or min(positives, n_rows - positives) < 100:
        notes.append({"code": "small_training_set", "rows": n_rows, "dropped_out": positives})
    if holdout_info.get("kind") != "out_of_time":
        notes.append({"code": "no_out_of_time"})
    if not config.include_protected and any(e["reason"].startswith("protected") for e in excluded):
        notes.append({"code": "proxies"})
    for section in fairness.values():
        if not section:
            continue
        for name, attribute in section["attributes"].items():
            if attribute["small_groups"]:
                notes.append({"code": "small_fairness_groups", "attribute": name,
                              "groups": [str(group) for group in attribute["small_groups"]],
                              "min_group_size": section.get("min_group_size", config.min_fairness_group_size)})
        break
    return notes


def build_model_card(
    *,
    config: TrainingConfig,
    specs: Sequence[FeatureSpec],
    used_specs: Sequence[FeatureSpec],
    excluded: Sequence[dict[str, str]],
    encoder: FeatureEncoder,
    n_rows: int,
    y: np.ndarray,
    dev_rows: int,
    holdout_info: dict[str, Any],
    cohort_range: dict[str, Any] | None,
    cv: CrossValidationResult,
    holdout_metrics: dict[str, Any],
    final: FittedPipeline,
    threshold: float,
    threshold_rule: str,
    fairness: dict[str, Any],
    importance: Sequence[dict[str, Any]],
    fingerprint: str,
    versions: dict[str, str],
    scaled_for_large_data: bool = False,
) -> dict[str, Any]:
    positives = int(np.sum(y))
    limitations = _limitations(n_rows=n_rows, positives=positives, holdout_info=holdout_info, config=config,
                               excluded=excluded, fairness=fairness)
    fold_summary, pooled, pooled_uncalibrated = cv.fold_summary, cv.pooled, cv.pooled_uncalibrated
    fold_details, baselines = cv.fold_details, cv.baselines
    comparison = [_comparison_row("lightgbm", fold_summary, pooled)]
    comparison += [_comparison_row(name, entry["fold_summary"], entry["pooled"]) for name, entry in baselines.items()]
    derived = [
        {
            "feature": column.source,
            "derived": f"{column.source} / {column.denominator}",
            "why": "declared in the schema as a count out of another count (out_of)",
        }
        for column in encoder.columns
        if column.role == "ratio"
    ]
    return {
        "card_version": MODEL_CARD_VERSION,
        "model": {
            "type": "LightGBM gradient-boosted decision trees with a calibrated probability output",
            "target": "1 = dropped out, 0 = completed",
            "flag_threshold": threshold,
            "flag_threshold_rule": threshold_rule,
        },
        "data": {
            "rows": n_rows,
            "dropped_out": positives,
            "completed": n_rows - positives,
            "dropout_rate": positives / n_rows if n_rows else None,
            "development_rows": dev_rows,
            "holdout_rows": holdout_info["rows"],
            "cohorts": cohort_range,
            "fingerprint_sha256": fingerprint,
        },
        "features": {
            "used": [
                {"feature": s.key, "label": s.label, "kind": s.kind, "actionable": s.actionable,
                 "protected": s.protected}
                for s in used_specs
            ],
            "excluded": list(excluded),
            "derived": derived,
            "model_columns": encoder.n_columns,
            "encoding": (
                "Categories shared by fewer than "
                f"{config.category_threshold(dev_rows)} training students are grouped with unseen ones as 'other'; "
                "missing values are encoded explicitly. Choices use feature values only, never outcomes."
            ),
        },
        "evaluation": {
            "method": (
                f"Nested cross-validation: {config.n_folds} stratified outer folds; in each, the hyperparameter "
                f"search ({config.search_iterations} candidates, {config.inner_folds}-fold inner CV), the number "
                "of trees, the calibration method and the category levels were chosen on the training part "
                "only, and the outer fold was only predicted. The holdout was never used for any choice."
            ),
            "folds": config.n_folds,
            "cross_validated": {"fold_summary": fold_summary, "pooled": pooled, "folds": list(fold_details)},
            "holdout": {**holdout_info, "metrics": holdout_metrics},
        },
        "baselines": {
            "note": "Same outer folds and inputs as LightGBM; standard settings, no search.",
            "comparison": comparison,
            "models": baselines,
        },
        "calibration": {
            "method": final.calibrator.method,
            "chosen_by": "lowest cross-validated Brier score on out-of-fold scores of the training rows",
            "cv_brier_by_method": final.calibration_report["cv_brier_by_method"],
            "methods_by_fold": [d["calibration_method"] for d in fold_details],
            "brier_uncalibrated_pooled": pooled_uncalibrated["brier"],
            "brier_calibrated_pooled": pooled["brier"],
            "ece_uncalibrated_pooled": pooled_uncalibrated["ece"],
            "ece_calibrated_pooled": pooled["ece"],
            "reliability": pooled.get("reliability"),
        },
        "fairness": {
            "threshold": threshold,
            "protected_attributes": [s.key for s in specs if s.protected],
            "protected_in_inputs": bool(config.include_protected),
            **fairness,
        },
        "global_importance": list(importance),
        "intended_use": INTENDED_USE,
        "out_of_scope": OUT_OF_SCOPE,
        "limitations": [limitation_text(entry) for entry in limitations],
        "statements": {"intended_use": INTENDED_USE_CODE, "out_of_scope": list(OUT_OF_SCOPE_TEXT),
                       "limitations": limitations},
        "parameters": {
            "lightgbm": final.params,
            "search": {
                "iterations": config.search_iterations,
                "inner_folds": config.inner_folds,
                "tuning_rows": final.search.tuning_rows,
                "trials": final.search.trials,
            },
            "config": config.to_dict(),
            "scaled_for_large_data": scaled_for_large_data,
            "scaling_note": (
                f"More than {config.large_data_rows:,} development students: the search used the faster "
                "large-data settings shown in config (see TrainingConfig.scaled_for)."
                if scaled_for_large_data else None
            ),
        },
        "library_versions": versions,
        "training_fingerprint": fingerprint,
    }
