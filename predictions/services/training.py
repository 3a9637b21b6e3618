"""Training a candidate version and the promotion gate it must pass to go live on its own."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

import ml
from institutions.models import Institution, Job
from ml.drift import feature_profile
from students.models import FeatureStage
from students.stages import feature_stage_list, feature_stages_in_use

from .. import frames
from ..model_store import ArtifactIntegrityError, artifact_sha256, load_model, remember_model
from ..models import FlagRule, ModelTrigger, ModelVersion, PredictionSettings
from ..selectors import flag_share_expected, model_version_live, model_version_stage, prediction_settings_get
from .promotion import AUTO_PROMOTION_NOTE, model_version_promote


def _next_version_number(institution: Institution) -> int:
    last = ModelVersion.objects.for_institution(institution).order_by("-number").values_list(
        "number", flat=True
    ).first()
    return (last or 0) + 1


def _training_config(
    settings: PredictionSettings, *, search_iterations: int | None, flag_share: float | None = None,
    training_rows: int = 0,
) -> ml.TrainingConfig:
    """The capacity rule flags a share of *current* students; the model's threshold and fairness
    audit are set at that same share of the training students (``capacity`` among ``training_rows``),
    not at the absolute number among a population of another size."""
    capacity = None
    if settings.flag_rule == FlagRule.CAPACITY:
        capacity = max(1, round(flag_share * training_rows)) if flag_share and training_rows else settings.flag_capacity
    return ml.TrainingConfig(
        search_iterations=search_iterations or settings.search_iterations,
        flag_threshold=settings.flag_threshold if settings.flag_rule == FlagRule.THRESHOLD else None,
        capacity=capacity,
        min_fairness_group_size=settings.min_fairness_group_size,
    )


def _holdout_ranking(model, data: frames.TrainingData) -> dict | None:
    """The held-out students' outcomes in the model's risk order (and their risks): precision and
    recall at any number of flags, for the settings page and the card, without loading the model."""
    index = [label for label in model.holdout_index if label in data.outcome.index]
    if not index:
        return None
    risk = model.predict_risk(data.frame.loc[index, [spec.key for spec in model.schema]])
    outcome = data.outcome.loc[index].to_numpy(dtype=int)
    order = np.argsort(-risk, kind="stable")
    return {"outcomes": [int(v) for v in outcome[order]], "risks": [round(float(v), 6) for v in risk[order]]}


def model_version_train(
    *,
    institution: Institution,
    trigger: str = ModelTrigger.USER,
    created_by=None,
    job: Job | None = None,
    search_iterations: int | None = None,
    progress: Callable[[float, str], None] | None = None,
    stage: FeatureStage | None = None,
) -> ModelVersion:
    """Train a candidate for ``stage`` on the students with known outcomes, store it, and run the gate.

    The candidate reads only the features known at ``stage`` or earlier (default: the latest stage
    in use, whose model reads every input). Its gate compares it with the live model of the same
    stage. Raises ``ml.DataInsufficientError`` (nothing stored) when there are too few outcomes.
    """
    settings = prediction_settings_get(institution=institution)
    if stage is None:
        stage = (feature_stages_in_use(institution=institution) or feature_stage_list(institution=institution))[-1]
    specs = frames.feature_specs(institution=institution, stage=stage)
    keys = [spec.key for spec in specs]
    # The gate refits the live model's configuration on the same students, so read the features
    # it used too, even one no longer in the schema; the candidate learns from the schema's only.
    live = model_version_live(institution=institution, stage=stage)
    data = frames.training_data(
        institution=institution, keys=[*keys, *(key for key in (live.feature_keys if live else []) if key not in keys)]
    )
    flag_share = flag_share_expected(institution=institution, settings=settings)
    config = _training_config(settings, search_iterations=search_iterations, flag_share=flag_share,
                              training_rows=len(data.outcome))
    model = ml.train_model(data.frame[keys], data.outcome, specs, config, cohort=data.cohort, progress=progress)
    # Factor sentences are checked against what these students' outcomes showed (ml.explanation).
    model.record_observed_rates(data.frame[keys], data.outcome)
    model.metadata["model_card"]["holdout_ranking"] = _holdout_ranking(model, data)
    model.metadata["model_card"]["flag_share_trained_at"] = flag_share
    # Who was trained on: per class and per recorded outcome, with the institution's mapping.
    model.metadata["model_card"]["training_population"] = data.counts
    # The moment the model warns at and what it could know then (docs/model_card.md, "stage").
    model.metadata["model_card"]["stage"] = {"key": stage.key, "label": stage.label, "features_known": keys}
    # How the training students' inputs were spread: the model page compares today's students with it.
    model.metadata["model_card"]["feature_profile"] = feature_profile(
        data.frame[keys], [spec for spec in specs if spec.key in set(model.feature_keys)])
    artifact = model.to_artifact()
    card = model.model_card
    with transaction.atomic():
        version = ModelVersion.objects.for_institution(institution).create(
            number=_next_version_number(institution),
            stage=stage,
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
    gate = model_gate_evaluate(institution=institution, candidate=version, model=model, data=data, settings=settings,
                               stage=stage)
    ModelVersion.objects.for_institution(institution).filter(pk=version.pk).update(gate=gate)
    version.gate = gate
    if gate["passed"] and settings.auto_promote:
        model_version_promote(institution=institution, version=version, note=AUTO_PROMOTION_NOTE)
        version.refresh_from_db()
    return version


# The gate bounds equalised-odds gaps: how differently groups' leavers are caught (TPR) and
# groups' stayers are flagged needlessly (FPR). The selection-rate gap is shown on the model card
# but not gated: where groups really leave at different rates, flagging them at equal rates would
# mean missing students. Precision and calibration gaps are too noisy on small groups to gate on.
GATE_FAIRNESS_METRICS = ("tpr", "fpr")
GATE_FAIRNESS_LABELS = {"tpr": gettext_noop("leavers caught (TPR)"), "fpr": gettext_noop("stayers flagged (FPR)")}
# The words ml names the students a fairness metric is measured on (ml.fairness.MEASURED_ON).
MEASURED_ON_WORDS = (gettext_noop("students"), gettext_noop("leavers"), gettext_noop("stayers"),
                     gettext_noop("flagged students"))


def gate_text(msgid: str, translate: tuple[str, ...] = (), **params) -> dict:
    """One sentence of a gate check: its English text (stored as ``label``/``detail``, for the API
    and the logs) is ``msgid % params``; the pages say it in the reader's language from
    ``msgid`` and ``params`` (predictions.selectors.gate_in_reader_language), translating the
    params named in ``translate`` too (words such as a metric's name)."""
    return {"msgid": msgid, "params": params, "translate": list(translate)}


def _english(*texts: dict) -> str:
    return "; ".join(text["msgid"] % text["params"] for text in texts)


def _check(name: str, passed: bool, label: dict, detail: list[dict], **extra) -> dict:
    return {"name": name, "label": _english(label), "passed": passed, "detail": _english(*detail),
            "text": {"label": label, "detail": detail}, **extra}


def _fairness_audit_for_gate(fairness: dict) -> dict:
    # Cross-validated figures cover every training row; the holdout alone is often too small.
    return fairness.get("cross_validated") or fairness.get("holdout") or {}


def _fairness_gaps(fairness: dict) -> list[dict]:
    """Every gated gap of ml's audit (groups of at least the minimum size), largest first."""
    gaps = []
    for attribute, report in (_fairness_audit_for_gate(fairness).get("attributes") or {}).items():
        for metric in GATE_FAIRNESS_METRICS:
            entry = (report.get("largest_gap") or {}).get(metric)
            if entry and isinstance(entry.get("gap"), int | float) and math.isfinite(entry["gap"]):
                gaps.append({"attribute": attribute, "metric": metric, **entry})
    return sorted(gaps, key=lambda gap: -gap["gap"])


def _feature_labels(card: dict) -> dict[str, str]:
    features = card.get("features") or {}
    return {f["feature"]: f.get("label") or f["feature"]
            for f in [*(features.get("used") or []), *(features.get("excluded") or [])]}


def _small_groups(fairness: dict, labels: dict[str, str]) -> list[str]:
    audit = _fairness_audit_for_gate(fairness)
    return [
        f"{labels.get(attribute, attribute)} {group} ({report['groups'][group]['count']})"
        for attribute, report in (audit.get("attributes") or {}).items()
        for group in report.get("small_groups") or []
    ]


def _fairness_check(fairness: dict, settings: PredictionSettings, labels: dict[str, str]) -> dict:
    gaps = _fairness_gaps(fairness)
    minimum = _fairness_audit_for_gate(fairness).get("min_group_size", settings.min_fairness_group_size)
    small = _small_groups(fairness, labels)
    not_gated = [gate_text(gettext_noop("groups under %(minimum)s students are reported, not gated: %(groups)s"),
                           minimum=minimum, groups=", ".join(small))] if small else []
    label = gate_text(gettext_noop("Fairness gaps within bounds"))
    if not gaps:
        if not _fairness_audit_for_gate(fairness).get("attributes"):
            detail = gate_text(gettext_noop("no protected attribute to audit"))
        else:
            detail = gate_text(gettext_noop("no two groups of at least %(minimum)s students to compare"),
                               minimum=minimum)
        return _check("fairness", True, label, [detail, *not_gated], gaps=[])
    worst = gaps[0]
    interval = worst.get("interval")
    values = {
        "gap": f"{worst['gap']:.3f}", "metric": GATE_FAIRNESS_LABELS[worst["metric"]],
        "attribute": labels.get(worst["attribute"], worst["attribute"]),
        "highest": worst["highest_group"], "highest_size": worst["highest_size"],
        "measured_on": worst["measured_on"], "lowest": worst["lowest_group"], "lowest_size": worst["lowest_size"],
    }
    words = ("metric", "measured_on")
    if interval:
        gap = gate_text(gettext_noop("largest gap %(gap)s (95%% CI %(low)s to %(high)s) in %(metric)s for "
                                     "%(attribute)s: %(highest)s (%(highest_size)s %(measured_on)s) vs %(lowest)s "
                                     "(%(lowest_size)s)"),
                        words, low=f"{interval[0]:.3f}", high=f"{interval[1]:.3f}", **values)
    else:
        gap = gate_text(gettext_noop("largest gap %(gap)s in %(metric)s for %(attribute)s: %(highest)s "
                                     "(%(highest_size)s %(measured_on)s) vs %(lowest)s (%(lowest_size)s)"),
                        words, **values)
    bound = gate_text(gettext_noop("bound %(bound)s"), bound=f"{settings.max_fairness_gap:.3f}")
    return _check("fairness", worst["gap"] <= settings.max_fairness_gap, label, [gap, bound, *not_gated],
                  gaps=gaps)


@dataclass(frozen=True)
class _VersusLive:
    """A gate check of the candidate against the live model on one metric of ``ml.comparison``.
    ``label`` and ``measured`` are templates over ``live`` (its number), ``shown`` (both values with
    their intervals), ``rows`` and ``training_rows``; ``allowed``: the setting bounding how much worse."""

    name: str
    metric: str
    higher_is_better: bool
    label: str
    measured: str
    allowance: str
    allowed: str


AUC_VS_LIVE = _VersusLive(
    name="auc_vs_live", metric="roc_auc", higher_is_better=True,
    label=gettext_noop("Not worse than live model v%(live)s on students neither model was trained on"),
    measured=gettext_noop("ROC-AUC %(shown)s for v%(live)s's configuration refitted on the same %(training_rows)s "
                          "training students, on %(rows)s held-out students"),
    allowance=gettext_noop("allowed drop %(allowed)s"), allowed="max_auc_drop")
# The candidate's risks as probabilities: its Brier score (lower is better) may be at most
# ``max_brier_increase`` above the refitted live configuration's, on the same unseen students;
# judged on the value of the difference, with its paired interval shown, as the AUC check is.
BRIER_VS_LIVE = _VersusLive(
    name="brier_vs_live", metric="brier", higher_is_better=False,
    label=gettext_noop("Risks as well calibrated as live model v%(live)s's on the same students"),
    measured=gettext_noop("Brier score %(shown)s for v%(live)s's refitted configuration (lower is better)"),
    allowance=gettext_noop("allowed increase %(allowed)s"), allowed="max_brier_increase")


def _versus_live_check(check: _VersusLive, *, comparison: dict, live: ModelVersion,
                       settings: PredictionSettings) -> dict:
    """Passed when the candidate is at most the allowed amount worse than the live model on
    ``check.metric``; the detail shows both values and the paired difference with their intervals."""
    intervals = comparison["intervals"]
    candidate, reference, difference = (intervals[side][check.metric]
                                        for side in ("candidate", "reference", "difference"))
    worse = candidate["value"] - reference["value"]
    if check.higher_is_better:
        worse = -worse
    allowed = getattr(settings, check.allowed)
    shown = (f"{candidate['value']:.3f} ({candidate['low']:.3f}–{candidate['high']:.3f}) vs "
             f"{reference['value']:.3f} ({reference['low']:.3f}–{reference['high']:.3f})")
    paired = gate_text(gettext_noop("difference %(value)s (95%% CI %(low)s to %(high)s)"),
                       value=f"{difference['value']:+.3f}", low=f"{difference['low']:+.3f}",
                       high=f"{difference['high']:+.3f}")
    fields = {"live": live.number, "shown": shown, "rows": comparison["rows"],
              "training_rows": comparison["training_rows"]}
    return _check(check.name, worse <= allowed, gate_text(check.label, live=live.number),
                  [gate_text(check.measured, **fields), paired, gate_text(check.allowance, allowed=f"{allowed:.3f}")])


def model_gate_evaluate(
    *, institution: Institution, candidate: ModelVersion, model, data: frames.TrainingData,
    settings: PredictionSettings, stage: FeatureStage | None = None,
) -> dict:
    """The promotion gate: minimum training size, ROC-AUC and Brier score against the live model of
    the candidate's stage (``stage``, default the candidate's), fairness gaps.

    Candidate and live model are compared on students neither was trained on: the live model's
    configuration is refitted on the candidate's training rows and both score the candidate's
    holdout (``ml.comparison``; docs/model_card.md says why), with paired-bootstrap intervals.
    """
    checks = []
    checks.append(_check(
        "training_size", candidate.training_size >= settings.min_training_size,
        gate_text(gettext_noop("Enough students with a known outcome")),
        [gate_text(gettext_noop("%(size)s students (minimum %(minimum)s)"), size=candidate.training_size,
                   minimum=settings.min_training_size)],
    ))
    if stage is None:
        stage = model_version_stage(institution=institution, version=candidate)
    live = model_version_live(institution=institution, stage=stage)
    comparison = None
    if live is not None and live.pk != candidate.pk:
        try:
            result = ml.compare_on_unseen_rows(model, load_model(live), data.frame, data.outcome)
        except (ml.DataInsufficientError, ml.ArtifactFormatError, ArtifactIntegrityError, ValueError) as error:
            checks.append(_check(
                AUC_VS_LIVE.name, False, gate_text(AUC_VS_LIVE.label, live=live.number),
                [gate_text(gettext_noop("could not be compared, so an administrator decides: %(error)s"),
                           error=str(error))],
            ))
        else:
            holdout = (model.model_card.get("evaluation") or {}).get("holdout") or {}
            comparison = {
                "live_version": live.number,
                "method": "live_configuration_refitted",
                "evaluation_rows": holdout.get("description") or "the candidate's holdout",
                "evaluation_kind": holdout.get("kind"),
                "rows": result["rows"],
                "training_rows": result["training_rows"],
                "live": _json_metrics(result["live"]),
                "candidate": _json_metrics(result["candidate"]),
                "intervals": result["intervals"],
                "live_refit": result["live_refit"],
            }
            checks.extend(_versus_live_check(check, comparison=comparison, live=live, settings=settings)
                          for check in (AUC_VS_LIVE, BRIER_VS_LIVE))
    checks.append(_fairness_check(candidate.fairness, settings, _feature_labels(candidate.model_card or {})))
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
