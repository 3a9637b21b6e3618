"""A rescore run: score current students with the live model, then re-rank them.

Scoring is written for crash safety. A run works through the students in chunks (see
``chunk_store``); a worker killed mid-run leaves whole chunks or nothing, and the redelivered
task skips students that already have a prediction for this run (``unique(institution, job,
student)`` guarantees it could not store them twice anyway).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from django.db import transaction

from institutions.jobs import job_progress
from institutions.models import Institution, Job
from institutions.webhooks import webhook_emit, webhook_subscribed_events
from students.models import Student
from students.selectors import current_students

from .. import frames
from ..model_store import load_model
from ..models import LatestPrediction, ModelVersion, Prediction
from ..selectors import model_version_live, prediction_settings_get
from .chunk_store import ChunkPipeline, prediction_chunk_store
from .fanout import rescore_chunks_forget, rescore_fanned_out, rescore_fans_out
from .ranking import latest_predictions_prune, latest_predictions_rank

logger = logging.getLogger(__name__)

SCORING_CHUNK_SIZE = 2000
TOP_FACTORS = 5


@dataclass
class RescoreOutcome:
    current: int
    scored: int
    unchanged: int
    flagged: int
    model_version: int | None
    message: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    # A fanned-out run: how many chunks each worker process (host:pid) stored.
    chunks_by_worker: dict[str, int] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {"current": self.current, "scored": self.scored, "unchanged": self.unchanged, "flagged": self.flagged}


def predictions_rescore(
    *, institution: Institution, job: Job, full: bool = False, chunk_size: int = SCORING_CHUNK_SIZE,
    send_helpers: Callable[[int], int] | None = None,
) -> RescoreOutcome:
    """Score current students with the live model; ``full`` rescoring everyone, else only changes.

    A student is rescored when the model changed or the values the model reads changed (their
    fingerprint differs from the latest prediction's). Re-running the same job (a redelivered
    task) continues after the last committed chunk. Rank, percentile, band and flag are then
    recomputed for every current student, once.

    A run of at least ``RESCORE_FANOUT_MIN_CHUNKS`` chunks is fanned out (``fanout``):
    ``send_helpers(n)`` queues ``n`` more tasks to score its chunks beside this one (returns how
    many it sent); without it, this process scores every chunk.
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
    mark_plan = time.monotonic()
    if rescore_fans_out(job=job, to_score=len(todo), chunk_size=chunk_size):
        scored, timings, by_worker = rescore_fanned_out(
            institution=institution, job=job, version=live, to_score=todo, chunk_size=chunk_size, full=full,
            top_factors=TOP_FACTORS, send_helpers=send_helpers)
        timings["plan"] += mark_plan - started
    else:
        scored, by_worker = len(todo), {}
        timings = _rescore_in_this_process(institution=institution, job=job, live=live, model=model, keys=keys,
                                           settings=settings, todo=todo, stored=len(done), chunk_size=chunk_size)
        timings["plan"] = mark_plan - started
    job_progress(job, stage="ranking")
    mark = time.monotonic()
    with transaction.atomic():
        # Students who graduated, left or went inactive are no longer ranked or flagged.
        latest_predictions_prune(institution=institution)
        flagged = latest_predictions_rank(institution=institution, settings=settings)
        if standing_events:
            _standing_webhooks_emit(institution=institution, before=standing_before, events=standing_events,
                                    job=job, version=live)
        rescore_chunks_forget(institution=institution, job=job)
    timings["rank"] = time.monotonic() - mark
    logger.info("rescore job %s: %s current students ranked, %s flagged", job.pk, len(fingerprints), flagged)
    return RescoreOutcome(len(fingerprints), scored, len(fingerprints) - scored, flagged, live.number,
                          timings={key: round(value, 2) for key, value in timings.items()},
                          chunks_by_worker=by_worker)


def _rescore_in_this_process(
    *, institution: Institution, job: Job, live: ModelVersion, model, keys: list[str], settings,
    todo: list[tuple[int, str]], stored: int, chunk_size: int,
) -> dict[str, float]:
    """Score ``todo`` chunk by chunk in this process; returns the seconds of each step."""
    job_progress(job, done=stored, total=stored + len(todo), stage=f"scoring with model v{live.number}")
    timings = {"load": 0.0, "explain": 0.0, "write_wait": 0.0}
    chunks = [todo[start:start + chunk_size] for start in range(0, len(todo), chunk_size)]
    with ChunkPipeline() as pipeline:

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
            pipeline.write(prediction_chunk_store, institution=institution, job=job, version=live, settings=settings,
                           chunk=chunk, explanations=explanations, done_after=stored)
            timings["write_wait"] += time.monotonic() - mark
    return timings


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
