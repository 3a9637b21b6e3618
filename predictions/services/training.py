"""Training a candidate version and the promotion gate it must pass to go live on its own."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from django.db import transaction
from django.utils import timezone

import ml
from institutions.models import Institution, Job

from .. import frames
from ..model_store import artifact_sha256, load_model, remember_model
from ..models import FlagRule, ModelTrigger, ModelVersion, PredictionSettings
from ..selectors import model_version_live, prediction_settings_get
from .promotion import model_version_promote


def _next_version_number(institution: Institution) -> int:
    last = ModelVersion.objects.for_institution(institution).order_by("-number").values_list(
        "number", flat=True
    ).first()
    return (last or 0) + 1


def _training_config(settings: PredictionSettings, *, search_iterations: int | None) -> ml.TrainingConfig:
    return ml.TrainingConfig(
        search_iterations=search_iterations or settings.search_iterations,
        flag_threshold=settings.flag_threshold if settings.flag_rule == FlagRule.THRESHOLD else None,
        capacity=settings.flag_capacity if settings.flag_rule == FlagRule.CAPACITY else None,
    )


def model_version_train(
    *,
    institution: Institution,
    trigger: str = ModelTrigger.USER,
    created_by=None,
    job: Job | None = None,
    search_iterations: int | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> ModelVersion:
    """Train a candidate on the students with known outcomes, store it, and run the gate.

    Raises ``ml.DataInsufficientError`` (nothing stored) when there are too few outcomes.
    """
    settings = prediction_settings_get(institution=institution)
    specs = frames.feature_specs(institution=institution)
    data = frames.training_data(institution=institution, keys=[spec.key for spec in specs])
    model = ml.train_model(
        data.frame, data.outcome, specs, _training_config(settings, search_iterations=search_iterations),
        cohort=data.cohort, progress=progress,
    )
    artifact = model.to_artifact()
    card = model.model_card
    with transaction.atomic():
        version = ModelVersion.objects.for_institution(institution).create(
            number=_next_version_number(institution),
            artifact=artifact,
            artifact_sha256=artifact_sha256(artifact),
            artifact_bytes=len(artifact),
            training_size=len(data.outcome),
            training_counts=data.counts,
            feature_keys=list(model.feature_keys),
            metrics=_headline_metrics(card),
            holdout_metrics=_json_metrics(model.holdout_metrics or {}),
            baselines=(card.get("baselines") or {}).get("comparison", []),
            fairness=card.get("fairness") or {},
            model_card=card,
            threshold=model.threshold,
            trigger=trigger,
            created_by=created_by,
            job=job,
        )
    remember_model(version, model)
    gate = model_gate_evaluate(institution=institution, candidate=version, model=model, data=data, settings=settings)
    ModelVersion.objects.for_institution(institution).filter(pk=version.pk).update(gate=gate)
    version.gate = gate
    if gate["passed"] and settings.auto_promote:
        model_version_promote(institution=institution, version=version, note="passed the promotion gate")
        version.refresh_from_db()
    return version


# The gate bounds equalised-odds gaps: how differently groups' leavers are caught (TPR) and
# groups' stayers are flagged needlessly (FPR). The selection-rate gap is shown on the model card
# but not gated: where groups really leave at different rates, flagging them at equal rates would
# mean missing students. Precision and calibration gaps are too noisy on small groups to gate on.
GATE_FAIRNESS_METRICS = ("tpr", "fpr")


def _largest_fairness_gaps(fairness: dict) -> dict[str, float]:
    """``{"<attribute>: <metric>": gap}`` from ml's fairness audit (``attributes.*.largest_gap``)."""
    gaps: dict[str, float] = {}
    # Cross-validated figures cover every training row; the holdout alone is often too small.
    audit = fairness.get("cross_validated") or fairness.get("holdout") or fairness
    for attribute, report in (audit.get("attributes") or {}).items():
        for metric in GATE_FAIRNESS_METRICS:
            entry = (report.get("largest_gap") or {}).get(metric)
            if entry and isinstance(entry.get("gap"), int | float) and math.isfinite(entry["gap"]):
                gaps[f"{attribute}: {metric}"] = float(entry["gap"])
    return gaps


def model_gate_evaluate(
    *, institution: Institution, candidate: ModelVersion, model, data: frames.TrainingData,
    settings: PredictionSettings,
) -> dict:
    """The promotion gate: minimum training size, AUC against the live model, fairness gaps.

    Candidate and live model are compared on the same rows: the candidate's holdout (students
    its final fit never saw).
    """
    checks = []
    checks.append({
        "name": "training_size",
        "label": "Enough students with a known outcome",
        "passed": candidate.training_size >= settings.min_training_size,
        "detail": f"{candidate.training_size} students (minimum {settings.min_training_size})",
    })
    live = model_version_live(institution=institution)
    comparison = None
    if live is not None and live.pk != candidate.pk:
        holdout = list(model.holdout_index)
        frame, outcome = data.frame.loc[holdout], data.outcome.loc[holdout]
        live_metrics = load_model(live).evaluate(frame, outcome)
        candidate_metrics = model.evaluate(frame, outcome)
        drop = float(live_metrics["roc_auc"]) - float(candidate_metrics["roc_auc"])
        comparison = {"live_version": live.number, "rows": len(outcome),
                      "live": _json_metrics(live_metrics), "candidate": _json_metrics(candidate_metrics)}
        checks.append({
            "name": "auc_vs_live",
            "label": f"Not worse than live model v{live.number} on the same holdout",
            "passed": drop <= settings.max_auc_drop,
            "detail": f"ROC-AUC {candidate_metrics['roc_auc']:.3f} vs {live_metrics['roc_auc']:.3f} "
                      f"(allowed drop {settings.max_auc_drop:.3f})",
        })
    gaps = _largest_fairness_gaps(candidate.fairness)
    worst = max(gaps.items(), key=lambda item: item[1]) if gaps else None
    checks.append({
        "name": "fairness",
        "label": "Fairness gaps within bounds",
        "passed": worst is None or worst[1] <= settings.max_fairness_gap,
        "detail": (f"largest gap {worst[1]:.3f} ({worst[0]}); bound {settings.max_fairness_gap:.3f}"
                   if worst else "no protected attribute to audit"),
    })
    return {"passed": all(check["passed"] for check in checks), "checks": checks, "comparison": comparison,
            "evaluated_at": timezone.now().isoformat()}


def _headline_metrics(card: dict) -> dict:
    """The LightGBM row of the model card's comparison table, named plainly (roc_auc, pr_auc...)."""
    rows = (card.get("baselines") or {}).get("comparison") or []
    row = next((r for r in rows if r.get("model") == "lightgbm"), {})
    return {
        "roc_auc": row.get("roc_auc_mean"), "roc_auc_std": row.get("roc_auc_std"), "pr_auc": row.get("pr_auc_mean"),
        "brier": row.get("brier_mean"), "ece": row.get("ece_pooled"),
        "precision_at_top_10pct": row.get("precision_at_top_10pct"),
        "recall_at_top_20pct": row.get("recall_at_top_20pct"),
    }


def _json_metrics(metrics: dict) -> dict:
    return {key: float(value) for key, value in metrics.items() if isinstance(value, int | float | np.floating)}
