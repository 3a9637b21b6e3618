"""Reads of the model registry and of stored predictions, always for one institution.

Dashboards read :func:`latest_predictions` (one indexed row per current student, already
ranked and flagged); a student's risk over time comes from :func:`prediction_history`.
"""

from __future__ import annotations

import contextlib

from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Mod
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from institutions.access import object_for_input_id
from institutions.models import Institution, Job, JobKind, Membership, Role
from ml.capacity import precision_recall_at_share
from ml.drift import drift_report
from ml.realised import realised_performance
from students.models import FeatureStage, Student
from students.selectors import current_students, feature_definition_list, feature_labels_shown
from students.stages import feature_stage_list, feature_stages_in_use

from .frames import features_frame
from .model_card_text import model_card_sections
from .models import (
    FeedbackReason,
    LatestPrediction,
    ModelStatus,
    ModelVersion,
    Prediction,
    PredictionSettings,
    RiskFeedback,
)
from .outcome_mapping import outcome_mapping_get


def prediction_settings_get(*, institution: Institution) -> PredictionSettings:
    """The institution's settings, or the defaults (unsaved) if its admins never changed them."""
    found = PredictionSettings.objects.for_institution(institution).first()
    return found or PredictionSettings(institution=institution)


def model_version_list(*, institution: Institution, stage: FeatureStage | None = None) -> QuerySet[ModelVersion]:
    """Every version (of ``stage``, if given), newest first, without the artifact bytes (they can be megabytes)."""
    versions = ModelVersion.objects.for_institution(institution).defer("artifact").select_related(
        "created_by", "decided_by", "gate_overridden_by", "stage"
    ).order_by("-number")
    return versions.filter(model_version_stage_q(institution=institution, stage=stage)) if stage else versions


def model_version_stage_q(*, institution: Institution, stage: FeatureStage) -> Q:
    """The versions of ``stage``; a version stored without a stage is the earliest stage's."""
    earliest = feature_stage_list(institution=institution)[0]
    return Q(stage=stage) | Q(stage__isnull=True) if stage.pk == earliest.pk else Q(stage=stage)


def model_version_live(*, institution: Institution, stage: FeatureStage | None = None) -> ModelVersion | None:
    """The live version of ``stage``; without one, the live version of the latest stage that has
    one (the model that scores the students until scoring picks a stage per student)."""
    live = model_version_list(institution=institution, stage=stage).filter(status=ModelStatus.LIVE)
    return live.order_by(F("stage__position").desc(nulls_last=True), "-number").first()


def model_version_live_by_stage(*, institution: Institution) -> list[tuple[FeatureStage, ModelVersion | None]]:
    """Every stage a model is trained for (and any other with a live model), earliest first, with its live version."""
    stages = feature_stage_list(institution=institution)
    live = {version.stage_id or stages[0].pk: version
            for version in model_version_list(institution=institution).filter(status=ModelStatus.LIVE)}
    in_use = {stage.pk for stage in feature_stages_in_use(institution=institution)}
    return [(stage, live.get(stage.pk)) for stage in stages if stage.pk in in_use or stage.pk in live]


def model_version_latest_candidate(*, institution: Institution, stage: FeatureStage | None = None
                                   ) -> ModelVersion | None:
    return model_version_list(institution=institution, stage=stage).filter(status=ModelStatus.CANDIDATE).first()


def model_version_rollback_target(*, institution: Institution, stage: FeatureStage | None = None
                                  ) -> ModelVersion | None:
    """The version of ``stage`` that was live before its current one: what "roll back" returns to.
    Without a stage: the stage of the live model that scores the students."""
    if stage is None:
        live = model_version_live(institution=institution)
        stage = (model_version_stage(institution=institution, version=live) if live
                 else feature_stage_list(institution=institution)[-1])
    return model_version_list(institution=institution, stage=stage).filter(
        status=ModelStatus.RETIRED, promoted_at__isnull=False
    ).order_by("-promoted_at").first()


def model_version_stage(*, institution: Institution, version: ModelVersion) -> FeatureStage:
    """The stage ``version`` was trained for (the earliest for a version stored without one)."""
    return version.stage or feature_stage_list(institution=institution)[0]


def latest_predictions(*, institution: Institution) -> QuerySet[LatestPrediction]:
    """Each current student's latest prediction with rank, percentile, band and flag; rank order.

    One row per current student (students who left are removed by the next scoring run). Join
    the student cheaply with ``.select_related("student")``; filter with ``flagged=True``,
    ``band="high"``, ``student__advisor=user``...
    """
    return LatestPrediction.objects.for_institution(institution).order_by("-risk", "student_id")


def latest_predictions_explained(*, institution: Institution) -> QuerySet[LatestPrediction]:
    """:func:`latest_predictions` with what the API shows of each: the student's external id, the
    explanation (the prediction's factors) and the model version's number, in the same query."""
    return latest_predictions(institution=institution).select_related("student", "prediction", "model_version")


def latest_prediction_for_student(*, institution: Institution, student: Student) -> LatestPrediction | None:
    return latest_predictions_explained(institution=institution).filter(student=student).first()


def prediction_history(*, institution: Institution, student: Student) -> QuerySet[Prediction]:
    """Every stored prediction of the student, newest first (its risk over time)."""
    return Prediction.objects.for_institution(institution).filter(student=student).select_related(
        "model_version"
    ).order_by("-created_at", "-id")


def prediction_job_list(*, institution: Institution) -> QuerySet[Job]:
    return Job.objects.for_institution(institution).filter(
        kind__in=(JobKind.RETRAIN, JobKind.RESCORE, JobKind.HISTORY_RETENTION, JobKind.ROSTER_IMPORT)
    ).select_related("created_by").order_by("-created_at", "-id")


def prediction_counts(*, institution: Institution) -> dict[str, int]:
    latest = latest_predictions(institution=institution)
    return {
        "scored": latest.count(),
        "flagged": latest.filter(flagged=True).count(),
        "high": latest.filter(band="high").count(),
    }


SCHEDULED_TASKS = {
    "rescore": "predictions.tasks.scheduled_rescore",
    "retrain": "predictions.tasks.scheduled_retrain",
}


def periodic_task_name(institution: Institution, kind: str) -> str:
    return f"predictions:{kind}:institution-{institution.pk}"


def prediction_schedule_list(*, institution: Institution) -> list[dict]:
    """The institution's beat entries (rescore, retrain) with their last run, for the schedule page."""
    from django_celery_beat.models import PeriodicTask

    rows = []
    for kind in SCHEDULED_TASKS:
        task = PeriodicTask.objects.filter(name=periodic_task_name(institution, kind)).select_related(
            "crontab"
        ).first()
        rows.append({"kind": kind, "task": task, "last_run_at": task.last_run_at if task else None})
    return rows


METRIC_COLUMNS = (
    ("roc_auc_mean", "ROC-AUC"),
    ("pr_auc_mean", "PR-AUC"),
    ("brier_mean", "Brier"),
    ("ece_pooled", _("Calibration error")),
    ("precision_at_top_10pct", _("Precision, top 10%")),
    ("recall_at_top_20pct", _("Recall, top 20%")),
)
MODEL_NAMES = {
    "lightgbm": _("LightGBM (this model)"), "logistic_regression": _("Logistic regression"),
    "decision_tree": _("Decision tree"), "random_forest": _("Random forest"), "svm": _("Support vector machine"),
}
FAIRNESS_METRIC_NAMES = {
    "selection_rate": _("Share flagged"), "tpr": _("Leavers caught (TPR)"), "fpr": _("Stayers flagged (FPR)"),
    "precision": _("Flags that were right (precision)"), "calibration_gap": _("Calibration gap"),
}


def _gate_sentence(text: dict) -> str:
    params = {key: gettext(value) if key in text.get("translate", ()) else value
              for key, value in (text.get("params") or {}).items()}
    return gettext(text["msgid"]) % params


def gate_in_reader_language(gate: dict) -> dict:
    """The gate's verdict with each check's label and detail in the page's language, composed from
    the sentences the gate stored (services.training.gate_text); a check stored before those keeps
    its English text."""
    checks = []
    for check in gate.get("checks") or []:
        text = check.get("text")
        # An unexpected stored shape keeps its English text, rather than no text.
        with contextlib.suppress(KeyError, TypeError, ValueError):
            if text:
                check = {**check, "label": _gate_sentence(text["label"]),
                         "detail": "; ".join(_gate_sentence(part) for part in text["detail"])}
        checks.append(check)
    return {**gate, "checks": checks}


def model_version_report(version: ModelVersion) -> dict:
    """What the model page shows of one version, read from its model card (as ml wrote it)."""
    card = version.model_card or {}
    comparison = version.baselines or []
    metric_rows = [
        {"name": MODEL_NAMES.get(row.get("model"), row.get("model")), "is_model": row.get("model") == "lightgbm",
         "values": [row.get(key) for key, _ in METRIC_COLUMNS]}
        for row in comparison
    ]
    reliability = [b for b in ((card.get("calibration") or {}).get("reliability") or []) if b.get("count")]
    fairness_audit = (version.fairness or {}).get("cross_validated") or (version.fairness or {}).get("holdout") or {}
    features = card.get("features") or {}
    # The institution's label of each feature in the reader's language, else the card's.
    labels = {f["feature"]: f.get("label") or f["feature"]
              for f in [*(features.get("used") or []), *(features.get("excluded") or [])]}
    labels.update(feature_labels_shown(institution=version.institution))
    fairness_rows = []
    for attribute, report in (fairness_audit.get("attributes") or {}).items():
        for metric, entry in (report.get("largest_gap") or {}).items():
            fairness_rows.append({
                "attribute": labels.get(attribute, attribute), "metric": FAIRNESS_METRIC_NAMES.get(metric, metric),
                "gap": entry.get("gap") if entry else None,
                "interval": entry.get("interval") if entry else None,
                "highest": entry.get("highest_group") if entry else None,
                "lowest": entry.get("lowest_group") if entry else None,
                "highest_size": entry.get("highest_size") if entry else None,
                "lowest_size": entry.get("lowest_size") if entry else None,
                "measured_on": entry.get("measured_on") if entry else None,
            })
    dom_id = f"model-v{version.number}"
    sections = model_card_sections(card, labels)
    return {
        "number": version.number,
        "dom_id": dom_id,
        "calibration_data_id": f"{dom_id}-calibration-data",
        "importance_data_id": f"{dom_id}-importance-data",
        "metric_columns": [{"key": key, "label": label} for key, label in METRIC_COLUMNS],
        "metric_rows": metric_rows,
        "calibration": {
            "predicted": [b["mean_predicted"] for b in reliability],
            "observed": [b["observed_rate"] for b in reliability],
            "counts": [b["count"] for b in reliability],
        } if reliability else None,
        "calibration_rows": [
            {"predicted": b["mean_predicted"], "observed": b["observed_rate"], "count": b["count"]}
            for b in reliability
        ],
        "importance": [
            {"label": labels.get(item.get("feature")) or item.get("label") or item.get("feature"),
             "value": item.get("mean_abs_shap")}
            for item in (card.get("global_importance") or [])[:15]
        ],
        "fairness": fairness_rows,
        "fairness_groups": _fairness_group_tables(fairness_audit, labels),
        "proxy_check": _proxy_check_rows(version, card.get("proxy_check") or {}, labels),
        "fairness_min_group_size": fairness_audit.get("min_group_size"),
        "gate": gate_in_reader_language(version.gate or {}),
        "gate_comparison": _gate_comparison_rows((version.gate or {}).get("comparison")),
        "card_sections": sections,
    }


FAIRNESS_GROUP_METRICS = ("selection_rate", "tpr", "fpr", "precision")
# AUC at or above which the inputs carry the attribute strongly / noticeably (docs/model_card.md).
PROXY_STRONG_AUC = 0.8
PROXY_NOTICEABLE_AUC = 0.6


def _proxy_reading(auc: float | None, interval: list | None) -> str:
    if auc is None:
        return gettext("not measured")
    low = interval[0] if interval else auc
    if auc >= PROXY_STRONG_AUC:
        return gettext("strongly: the model can effectively use this attribute through other inputs")
    if auc >= PROXY_NOTICEABLE_AUC and low > 0.5:
        return gettext("partly: other inputs carry some of this attribute")
    if low > 0.5:
        return gettext("weakly: other inputs carry little of this attribute")
    return gettext("not detectably: no better than chance")


def _proxy_check_rows(version: ModelVersion, proxies: dict, card_labels: dict[str, str]) -> list[dict]:
    """Per protected attribute, how well the inputs predict it, with labels from the schema instead of codes."""
    if not proxies:
        return []
    definitions = {d.key: d for d in feature_definition_list(institution=version.institution)}

    def label(key: str) -> str:
        return card_labels.get(key) or key  # the schema's label in the reader's language first (see above)

    rows = []
    for attribute, entry in proxies.items():
        definition = definitions.get(attribute)
        category_labels = definition.category_labels if definition else {}
        values = [category_labels.get(str(value), str(value)) for value in entry.get("classes") or []]
        if entry.get("pooled_other"):
            values.append(gettext("other values pooled"))
        tops = entry.get("top_inputs") or []
        shares = entry.get("top_input_shares") or []
        rows.append({
            "attribute": label(attribute),
            "auc": entry.get("auc"),
            "interval": entry.get("interval"),
            "reading": _proxy_reading(entry.get("auc"), entry.get("interval")),
            "top_inputs": [{"label": label(key), "share": 100 * shares[i] if i < len(shares) else None}
                           for i, key in enumerate(tops)],
            "rows": entry.get("rows"),
            "values": values if entry.get("kind") == "categorical" else [],
            "binarised": entry.get("binarised"),
            "reason": entry.get("reason"),
        })
    return rows


def _fairness_group_tables(audit: dict, labels: dict[str, str]) -> list[dict]:
    """Per protected attribute, every group with its size, leavers and stayers, and its rates with intervals."""
    minimum = audit.get("min_group_size") or 0
    tables = []
    for attribute, report in (audit.get("attributes") or {}).items():
        rows = []
        for group, figures in (report.get("groups") or {}).items():
            intervals = figures.get("intervals") or {}
            rows.append({
                "group": group, "count": figures.get("count"), "leavers": figures.get("leavers"),
                "stayers": figures.get("stayers"), "small": (figures.get("count") or 0) < minimum,
                "rates": [{"value": figures.get(metric), "interval": intervals.get(metric)}
                          for metric in FAIRNESS_GROUP_METRICS],
            })
        tables.append({"attribute": labels.get(attribute, attribute), "rows": rows})
    return tables


def _gate_comparison_rows(comparison: dict | None) -> dict | None:
    """The gate's candidate-vs-live figures with their intervals, as rows of one table."""
    intervals = (comparison or {}).get("intervals")
    if not intervals:
        return None
    rows = [
        {"metric": label, "better": better, "candidate": intervals["candidate"][key],
         "live": intervals["reference"][key], "difference": intervals["difference"][key]}
        for key, label, better in (("roc_auc", "ROC-AUC", "higher"), ("brier", gettext("Brier score"), "lower"))
    ]
    return {"rows": rows, "live_version": comparison.get("live_version"), "rows_count": comparison.get("rows"),
            "training_rows": comparison.get("training_rows"), "evaluation_rows": comparison.get("evaluation_rows"),
            "method": intervals.get("method"), "confidence": round(100 * intervals.get("confidence", 0.95))}


def access_model_version(*, institution: Institution, number: int | str) -> ModelVersion:
    """The institution's model version with ``number`` from input (versions are numbered per
    institution); another institution's, a missing one and a malformed number raise the same Http404."""
    return object_for_input_id(model_version_list(institution=institution), number, field="number")


def risk_feedback_counts(*, institution: Institution) -> dict[int, dict]:
    """Per model version number: advisors' feedback in total and per reason (every reason listed)."""
    counts: dict[int, dict] = {}
    rows = (RiskFeedback.objects.for_institution(institution).values("model_version__number", "reason")
            .annotate(n=Count("id")).order_by())
    for row in rows:
        entry = counts.setdefault(row["model_version__number"], {
            "total": 0, "students": 0, "by_reason": [[value, label, 0] for value, label in FeedbackReason.choices]})
        entry["total"] += row["n"]
        for item in entry["by_reason"]:
            if item[0] == row["reason"]:
                item[2] += row["n"]
    students = (RiskFeedback.objects.for_institution(institution).values("model_version__number")
                .annotate(n=Count("student", distinct=True)).order_by())
    for row in students:
        counts[row["model_version__number"]]["students"] = row["n"]
    return counts


def risk_feedback_for_student(*, institution: Institution, student: Student) -> QuerySet[RiskFeedback]:
    return RiskFeedback.objects.for_institution(institution).filter(student=student).select_related(
        "author", "model_version"
    )


def _term_capacity(institution: Institution, settings: PredictionSettings) -> tuple[int, int]:
    """(students the advisors can contact this term, advisors): advisors x per advisor when set."""
    advisors = Membership.objects.for_institution(institution).filter(role=Role.ADVISOR).count()
    per_advisor = settings.flag_capacity_per_advisor
    return (advisors * per_advisor if per_advisor and advisors else settings.flag_capacity), advisors


def flag_capacity_effective(*, institution: Institution, settings: PredictionSettings) -> dict:
    """How many students the capacity rule flags now, and why: the term's capacity (or advisors x
    students per advisor), never more than the current students, and with a minimum risk only
    those at or above it (the top k by risk are then exactly the first ``k`` in rank order)."""
    capacity, advisors = _term_capacity(institution, settings)
    per_advisor = settings.flag_capacity_per_advisor
    latest = LatestPrediction.objects.for_institution(institution)
    scored = latest.count()
    eligible = latest.filter(risk__gte=settings.flag_min_risk).count() if settings.flag_min_risk else scored
    return {"capacity": capacity, "advisors": advisors, "per_advisor": per_advisor, "scored": scored,
            "min_risk": settings.flag_min_risk, "eligible": eligible, "k": min(capacity, eligible)}


def flag_share_expected(*, institution: Institution, settings: PredictionSettings) -> float | None:
    """The share of current students the capacity rule flags (None under the threshold rule or
    with nobody current): what a model is judged at on students it was not trained on."""
    if settings.flag_rule != "capacity":
        return None
    capacity, _ = _term_capacity(institution, settings)
    current = current_students(institution=institution).count()
    return min(1.0, capacity / current) if current else None


def capacity_quality(*, version: ModelVersion | None, share: float | None, min_risk: float | None) -> dict | None:
    """Precision and recall of ``version`` when it flags ``share`` of students, on its held-out
    students (None for versions trained before their holdout ranking was kept)."""
    ranking = ((version.model_card or {}).get("holdout_ranking") if version else None) or None
    if ranking is None or share is None:
        return None
    return precision_recall_at_share(ranking["outcomes"], ranking["risks"], share, min_risk=min_risk)


def flagging_summary(*, institution: Institution, settings: PredictionSettings, version: ModelVersion | None) -> dict:
    """What the settings page and a version's page say about flags: the rule, how many are flagged
    and why, and (capacity rule) the version's held-out precision and recall at that share."""
    summary = {"rule": settings.flag_rule, "threshold": settings.flag_threshold,
               "flagged": latest_predictions(institution=institution).filter(flagged=True).count()}
    quality = None
    if settings.flag_rule == "capacity":
        summary.update(flag_capacity_effective(institution=institution, settings=settings))
        quality = capacity_quality(version=version, share=flag_share_expected(institution=institution,
                                                                              settings=settings),
                                   min_risk=settings.flag_min_risk)
    return {"flagging": summary, "quality": quality}


DRIFT_SAMPLE = 20_000


def model_drift(*, institution: Institution, version: ModelVersion) -> dict | None:
    """Today's students against ``version``'s training students, per input (ml.drift): PSI,
    missing shares, a status, and whether retraining is suggested; ``None`` for a version trained
    before profiles were recorded. Reads at most DRIFT_SAMPLE current students (every n-th by id)."""
    profile = (version.model_card or {}).get("feature_profile")
    if not profile or not profile.get("features"):
        return None
    students = current_students(institution=institution)
    total = students.count()
    step = max(1, -(-total // DRIFT_SAMPLE))
    if step > 1:
        students = students.annotate(sample_slot=Mod("id", step)).filter(sample_slot=0)
    keys = list(profile["features"])
    frame = features_frame([values or {} for values in students.values_list("features", flat=True)], keys)
    report = drift_report(profile, frame)
    labels = dict(feature_definition_list(institution=institution).values_list("key", "label"))
    for feature in report["features"]:
        feature["label"] = labels.get(feature["key"], feature["key"])
    report["current_students"] = total
    return report


def _period(day) -> str:
    return f"{day.year} H{1 if day.month <= 6 else 2}"


def model_realised(*, institution: Institution, version: ModelVersion) -> dict:
    """Did ``version``'s predictions come true? For every student it scored while they studied
    whose outcome (left or completed) was recorded later, the last risk it showed them before
    that day, against the outcome (ml.realised): overall and per half-year of the outcomes, with
    precision and recall at the share the institution flags."""
    shown = (Prediction.objects.for_institution(institution)
             .filter(student=OuterRef("pk"), model_version=version, created_at__date__lt=OuterRef("outcome_date"))
             .order_by("-created_at").values("risk")[:1])
    # The outcomes the institution trains on, in the classes it trains them as.
    mapping = outcome_mapping_get(institution=institution)
    rows = list(Student.objects.for_institution(institution)
                .filter(mapping.known_filter(), outcome_date__isnull=False)
                .annotate(shown=Subquery(shown)).exclude(shown=None)
                .order_by("outcome_date", "pk").values_list("outcome", "outcome_date", "shown"))
    settings = prediction_settings_get(institution=institution)
    share = flag_share_expected(institution=institution, settings=settings)
    periods: dict[str, tuple[list[float], list[int]]] = {}
    for outcome, day, risk in rows:
        risks, outcomes = periods.setdefault(_period(day), ([], []))
        risks.append(risk)
        outcomes.append(mapping.label(outcome))
    every = ([r for _, _, r in rows], [mapping.label(o) for o, _, _ in rows])
    return {
        "version": version.number, "flag_share": share, "floor": settings.realised_auc_floor,
        "overall": realised_performance(*every, flag_share=share),
        "periods": [{"period": name, **realised_performance(*values, flag_share=share)}
                    for name, values in sorted(periods.items())],
    }
