"""Training, the promotion gate, scoring and scheduling: every write of the predictions app.

Scoring is written for crash safety. A run works through the students in chunks; each chunk
is one transaction that stores the chunk's predictions, moves the students' latest-prediction
rows and records the job's progress together. A worker killed mid-run leaves whole chunks or
nothing; the redelivered task skips students that already have a prediction for this run
(``unique(institution, job, student)`` guarantees it could not store them twice anyway).
"""

from __future__ import annotations

import csv
import io
import logging
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import orjson
from django.db import connection, connections, transaction
from django.utils import timezone

import ml
from institutions.jobs import job_create, job_dispatch, job_progress
from institutions.models import Institution, Job, JobKind
from institutions.webhooks import webhook_emit, webhook_subscribed_events
from students.models import Student
from students.selectors import current_students

from . import frames, sql
from .model_store import artifact_sha256, load_model, remember_model
from .models import (
    FlagRule,
    LatestPrediction,
    ModelStatus,
    ModelTrigger,
    ModelVersion,
    Prediction,
    PredictionSettings,
    RiskBand,
)
from .selectors import (
    SCHEDULED_TASKS,
    model_version_live,
    model_version_rollback_target,
    periodic_task_name,
    prediction_settings_get,
)

logger = logging.getLogger(__name__)

SCORING_CHUNK_SIZE = 2000
TOP_FACTORS = 5


class ModelDecisionError(ValueError):
    """A promote/reject/rollback that does not apply to the version's current state."""


# --- settings -------------------------------------------------------------------------------


def prediction_settings_update(*, institution: Institution, data: dict) -> PredictionSettings:
    """Validate and save the institution's prediction settings, then bring its schedules in line."""
    settings = prediction_settings_get(institution=institution)
    for name, value in data.items():
        setattr(settings, name, value)
    settings.full_clean(exclude=["institution"])
    with transaction.atomic():
        settings.save()
        prediction_schedule_sync(institution=institution, settings=settings)
    return settings


# --- requests for work ----------------------------------------------------------------------


def retrain_request(
    *, institution: Institution, created_by=None, triggered_by: str = "user"
) -> tuple[Job, bool]:
    """Queue a retrain, or join the one already queued or running. Returns ``(job, created)``."""
    job, created = job_create(
        institution=institution, kind=JobKind.RETRAIN, created_by=created_by, triggered_by=triggered_by,
        join_active=True,
    )
    if created:
        job_dispatch(job)
    return job, created


def rescore_request(
    *, institution: Institution, full: bool = False, created_by=None, triggered_by: str = "user"
) -> tuple[Job, bool]:
    """Queue a rescore (incremental unless ``full``), or join the active one."""
    job, created = job_create(
        institution=institution, kind=JobKind.RESCORE, params={"full": bool(full)}, created_by=created_by,
        triggered_by=triggered_by, join_active=True,
    )
    if created:
        job_dispatch(job)
    return job, created


def rescore_after_import(*, institution: Institution, import_job_id: int) -> Job | None:
    """An import committed changes: queue an (incremental) rescore if there is a model to score with."""
    settings = prediction_settings_get(institution=institution)
    if not settings.rescore_after_import or model_version_live(institution=institution) is None:
        return None
    job, _ = rescore_request(institution=institution, triggered_by="import")
    return job


# --- training and the promotion gate --------------------------------------------------------


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


def _lock_versions(institution: Institution) -> None:
    # Serialise decisions per institution: two admins promoting at once cannot both win.
    list(ModelVersion.objects.for_institution(institution).select_for_update().values_list("pk", flat=True))


def model_version_promote(
    *, institution: Institution, version: ModelVersion, user=None, note: str = "", rescore: bool = True
) -> ModelVersion:
    """Make ``version`` the live model (the previous live one is retired) and queue a rescore."""
    with transaction.atomic():
        _lock_versions(institution)
        version = ModelVersion.objects.for_institution(institution).defer("artifact").get(pk=version.pk)
        if version.status == ModelStatus.LIVE:
            raise ModelDecisionError(f"model v{version.number} is already live")
        if version.status == ModelStatus.REJECTED and user is None:
            raise ModelDecisionError(f"model v{version.number} was rejected")
        now = timezone.now()
        ModelVersion.objects.for_institution(institution).filter(status=ModelStatus.LIVE).update(
            status=ModelStatus.RETIRED, updated_at=now
        )
        ModelVersion.objects.for_institution(institution).filter(pk=version.pk).update(
            status=ModelStatus.LIVE, promoted_at=now, decided_by=user, decided_at=now,
            decision_note=note[:300], updated_at=now,
        )
        if rescore:
            rescore_request(institution=institution, created_by=user, triggered_by="promotion")
        # With a live model the schedules matter: make sure beat has them (the defaults until an
        # admin changes them), not only once someone has saved the settings page.
        prediction_schedule_sync(institution=institution, settings=prediction_settings_get(institution=institution))
    version.refresh_from_db()
    return version


def model_version_reject(*, institution: Institution, version: ModelVersion, user=None, note: str = "") -> ModelVersion:
    with transaction.atomic():
        _lock_versions(institution)
        version = ModelVersion.objects.for_institution(institution).defer("artifact").get(pk=version.pk)
        if version.status != ModelStatus.CANDIDATE:
            raise ModelDecisionError(f"only a candidate can be rejected; model v{version.number} is {version.status}")
        now = timezone.now()
        ModelVersion.objects.for_institution(institution).filter(pk=version.pk).update(
            status=ModelStatus.REJECTED, decided_by=user, decided_at=now, decision_note=note[:300], updated_at=now
        )
    version.refresh_from_db()
    return version


def model_version_rollback(*, institution: Institution, user=None) -> ModelVersion:
    """Put the previously live version back in production, in one action."""
    target = model_version_rollback_target(institution=institution)
    if target is None:
        raise ModelDecisionError("there is no earlier live version to roll back to")
    return model_version_promote(institution=institution, version=target, user=user, note="rollback")


# --- scoring --------------------------------------------------------------------------------


def risk_band(risk: float, settings: PredictionSettings) -> str:
    if risk >= settings.band_high_from:
        return RiskBand.HIGH
    if risk >= settings.band_medium_from:
        return RiskBand.MEDIUM
    return RiskBand.LOW


@dataclass
class RescoreOutcome:
    current: int
    scored: int
    unchanged: int
    flagged: int
    model_version: int | None
    message: str = ""
    timings: dict[str, float] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {"current": self.current, "scored": self.scored, "unchanged": self.unchanged, "flagged": self.flagged}


def predictions_rescore(
    *, institution: Institution, job: Job, full: bool = False, chunk_size: int = SCORING_CHUNK_SIZE,
) -> RescoreOutcome:
    """Score current students with the live model; ``full`` rescoring everyone, else only changes.

    A student is rescored when the model changed or the values the model reads changed (their
    fingerprint differs from the latest prediction's). Re-running the same job (a redelivered
    task) continues after the last committed chunk. Rank, percentile, band and flag are then
    recomputed for every current student.
    """
    started = time.monotonic()
    live = model_version_live(institution=institution)
    if live is None:
        current = current_students(institution=institution).count()
        return RescoreOutcome(current, 0, 0, 0, None, "No live model yet: train a model first.")
    model = load_model(live)
    settings = prediction_settings_get(institution=institution)
    keys = [spec.key for spec in model.schema]
    # Only what the model reads: a change to a value it ignores (a protected attribute) is no reason to rescore.
    fingerprints = frames.current_student_fingerprints(institution=institution, keys=list(model.feature_keys))

    # Band and flag as they stood before this run, for the student.flagged / risk_band_changed
    # webhooks; read only when an endpoint listens (a full snapshot of current students).
    standing_events = webhook_subscribed_events(institution=institution) & set(STANDING_EVENTS)
    standing_before = _standing(institution) if standing_events else {}
    done = set(Prediction.objects.for_institution(institution).filter(job=job).values_list("student_id", flat=True))
    previous = {
        student_id: (version_id, fingerprint)
        for student_id, version_id, fingerprint in LatestPrediction.objects.for_institution(institution)
        .values_list("student_id", "model_version_id", "input_fingerprint")
    }
    todo = [
        (student_id, fingerprint) for student_id, fingerprint in fingerprints
        if student_id not in done and (full or previous.get(student_id) != (live.pk, fingerprint))
    ]
    stored = len(done)
    job_progress(job, done=stored, total=stored + len(todo), stage=f"scoring with model v{live.number}")
    timings = {"plan": time.monotonic() - started, "load": 0.0, "explain": 0.0, "write_wait": 0.0}
    chunks = [todo[start:start + chunk_size] for start in range(0, len(todo), chunk_size)]
    with _ChunkPipeline() as pipeline:

        def read(index: int) -> Future | None:
            if index >= len(chunks):
                return None
            return pipeline.read(frames.student_feature_values, institution=institution,
                                 ids=[student_id for student_id, _ in chunks[index]])

        next_values = read(0)
        for index, chunk in enumerate(chunks):
            ids = [student_id for student_id, _ in chunk]
            mark = time.monotonic()
            values = next_values.result()
            next_values = read(index + 1)
            timings["load"] += time.monotonic() - mark
            mark = time.monotonic()
            explanations = model.explain(frames.features_frame([values[i] for i in ids], keys), top_k=TOP_FACTORS)
            timings["explain"] += time.monotonic() - mark
            stored += len(chunk)
            mark = time.monotonic()
            pipeline.write(_store_chunk, institution=institution, job=job, version=live, settings=settings,
                           chunk=chunk, explanations=explanations, done_after=stored)
            timings["write_wait"] += time.monotonic() - mark
    job_progress(job, done=stored, stage="ranking")
    mark = time.monotonic()
    with transaction.atomic():
        # Students who graduated, left or went inactive are no longer ranked or flagged.
        LatestPrediction.objects.for_institution(institution).exclude(
            student_id__in=current_students(institution=institution).values("id")
        ).delete()
        flagged = latest_predictions_rank(institution=institution, settings=settings)
        if standing_events:
            _standing_webhooks_emit(institution=institution, before=standing_before, events=standing_events,
                                    job=job, version=live)
    timings["rank"] = time.monotonic() - mark
    return RescoreOutcome(len(fingerprints), len(todo), len(fingerprints) - len(todo), flagged, live.number,
                          timings={key: round(value, 2) for key, value in timings.items()})


class _ChunkPipeline:
    """Reads the next chunk and writes the previous one on other connections while one is explained.

    Explaining is CPU work in this process; reading and storing are mostly the database's work,
    so overlapping them shortens a large run. Each chunk is still written in its own transaction,
    in order, with at most one write in flight; an error in a read or write is raised here. Used
    only when the caller holds no transaction (another connection could not see its rows);
    otherwise everything runs inline.
    """

    def __init__(self) -> None:
        self.overlap = not connection.in_atomic_block
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chunk-writer") if self.overlap else None
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chunk-reader") if self.overlap else None
        self._pending: Future | None = None

    def __enter__(self) -> _ChunkPipeline:
        return self

    def read(self, load: Callable[..., dict], **kwargs) -> Future:
        if self._reader is None:
            future: Future = Future()
            future.set_result(load(**kwargs))
            return future
        return self._reader.submit(load, **kwargs)

    def write(self, store: Callable[..., None], **kwargs) -> None:
        if self._writer is None:
            store(**kwargs)
            return
        self._wait()
        self._pending = self._writer.submit(store, **kwargs)

    def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def __exit__(self, *exc_info) -> None:
        if not self.overlap:
            return
        try:
            if exc_info[0] is None:
                self._wait()
            elif self._pending is not None:
                self._pending.exception()  # let the chunk in flight commit or roll back before leaving
        finally:
            for executor in (self._writer, self._reader):
                executor.submit(connections.close_all).result()
                executor.shutdown()


def _store_chunk(
    *, institution: Institution, job: Job, version: ModelVersion, settings: PredictionSettings,
    chunk: Sequence[tuple[int, str]], explanations: Sequence[dict], done_after: int,
) -> None:
    """One transaction: the chunk's predictions, its students' latest rows, the job's progress.

    Idempotent: rows this run already stored for these students are replaced, never duplicated.
    """
    now = timezone.now()
    rows = [
        (student_id, fingerprint, float(explanation["risk"]), float(explanation["base_value"]),
         explanation["factors"])
        for (student_id, fingerprint), explanation in zip(chunk, explanations, strict=True)
    ]
    with transaction.atomic():
        _store_chunk_rows(institution=institution, job=job, version=version, settings=settings, rows=rows, now=now)
        job_progress(job, done=done_after)


def _store_chunk_rows(*, institution, job, version, settings, rows, now) -> None:
    # COPY into the connection's stage table, then one statement stores the history and latest
    # rows (predictions.sql.STAGE_STORE). Values travel as COPY data or parameters only.
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows(
        (student_id, repr(risk), risk_band(risk, settings), repr(base_value), orjson.dumps(factors).decode(),
         fingerprint)
        for student_id, fingerprint, risk, base_value, factors in rows
    )
    buffer.seek(0)
    with connection.cursor() as cursor:
        cursor.execute(sql.STAGE_CREATE)
        cursor.execute(sql.STAGE_EMPTY)
        cursor.copy_expert(sql.STAGE_COPY, buffer)
        cursor.execute(sql.STAGE_STORE, {"institution_id": institution.pk, "model_version_id": version.pk,
                                         "job_id": job.pk, "created_at": now})


STANDING_EVENTS = ("student.flagged", "student.risk_band_changed")


def _standing(institution: Institution) -> dict[int, tuple[str, bool]]:
    return {
        student_id: (band, flagged)
        for student_id, band, flagged in LatestPrediction.objects.for_institution(institution).values_list(
            "student_id", "band", "flagged"
        )
    }


def _standing_webhooks_emit(
    *, institution: Institution, before: dict[int, tuple[str, bool]], events: set[str], job: Job,
    version: ModelVersion,
) -> int:
    """Tell subscribed systems who became flagged and whose band changed in this run.

    A student's first band is not a change; a student flagged before and still flagged is not
    newly flagged. Sent after the run's transaction commits (webhook_emit's contract).
    """
    changed = []
    for student_id, band, flagged, risk in LatestPrediction.objects.for_institution(institution).values_list(
        "student_id", "band", "flagged", "risk"
    ):
        old_band, old_flagged = before.get(student_id, (None, False))
        newly_flagged = flagged and not old_flagged
        band_changed = old_band is not None and old_band != band
        if newly_flagged or band_changed:
            changed.append((student_id, band, flagged, risk, old_band, newly_flagged, band_changed))
    external_ids = dict(
        Student.objects.for_institution(institution).filter(pk__in=[row[0] for row in changed]).values_list(
            "pk", "external_id"
        )
    )
    sent = 0
    for student_id, band, flagged, risk, old_band, newly_flagged, band_changed in changed:
        payload = {
            "student_id": student_id, "external_id": external_ids.get(student_id), "risk": round(risk, 4),
            "band": band, "previous_band": old_band, "flagged": flagged, "model_version": version.number,
            "job_id": job.pk,
        }
        if newly_flagged and "student.flagged" in events:
            webhook_emit(institution=institution, event="student.flagged", payload=payload)
            sent += 1
        if band_changed and "student.risk_band_changed" in events:
            webhook_emit(institution=institution, event="student.risk_band_changed", payload=payload)
            sent += 1
    return sent


def latest_predictions_rank(*, institution: Institution, settings: PredictionSettings) -> int:
    """Recompute rank, percentile, band and flag of every current student in one statement.

    Returns how many students are flagged. Set-based SQL (window functions), so ranking 100,000
    students is one statement, not 100,000 updates from Python; rows whose standing did not
    change are not rewritten.
    """
    params = {"institution_id": institution.pk, "updated_at": timezone.now(),
              "band_high_from": settings.band_high_from, "band_medium_from": settings.band_medium_from}
    if settings.flag_rule == FlagRule.CAPACITY:
        statement, params["flag_capacity"] = sql.LATEST_RANK_BY_CAPACITY, settings.flag_capacity
    else:
        statement, params["flag_threshold"] = sql.LATEST_RANK_BY_THRESHOLD, settings.flag_threshold
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
    return LatestPrediction.objects.for_institution(institution).filter(flagged=True).count()


# --- schedules ------------------------------------------------------------------------------



def prediction_schedule_sync(*, institution: Institution, settings: PredictionSettings) -> None:
    """Create, change or remove the institution's beat entries (django-celery-beat rows)."""
    import json

    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    for kind, frequency in (("rescore", settings.rescore_schedule), ("retrain", settings.retrain_schedule)):
        name = periodic_task_name(institution, kind)
        if frequency == "off":
            PeriodicTask.objects.filter(name=name).delete()
            continue
        # Retraining runs an hour after rescoring would, so the two never compete at night.
        hour = (settings.schedule_hour + (1 if kind == "retrain" else 0)) % 24
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute="0", hour=str(hour),
            day_of_week="1" if frequency == "weekly" else "*",
            day_of_month="1" if frequency == "monthly" else "*",
            month_of_year="*", timezone=institution.timezone,
        )
        PeriodicTask.objects.update_or_create(
            name=name,
            defaults={"task": SCHEDULED_TASKS[kind], "crontab": crontab, "interval": None,
                      "kwargs": json.dumps({"institution_id": institution.pk}), "enabled": True,
                      "description": f"{kind} for {institution.name} ({frequency})"},
        )
