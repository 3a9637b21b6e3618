"""A large rescore fanned out over the scoring workers: plan its chunks, claim them, store each once.

Why chunk rows claimed in the database, and not a Celery group + chord: the job's survival
already rests on the database (a job row with a lease, renewed by its attempt, re-queued by the
sweeper when it runs out). A chord keeps its state in the result backend (this project runs
none) and waits for every member's result: a member whose worker was SIGKILLed comes back only
with the broker's redelivery (hours: the visibility timeout), the sweeper cannot see inside it,
and a redelivered member may fire the callback (the ranking) again. Here:

- The rescore job's own task (the *coordinator*, holding the job's lease) cuts the students to
  score into id ranges (:class:`~predictions.models.RescoreChunk`), fixed once per job and reused
  by every later attempt, and sends one ``rescore_chunks`` task per further chunk on the scoring
  queue. Every one of them, the coordinator included, claims chunks until none is left: the
  first unclaimed one in id order, ``FOR UPDATE SKIP LOCKED``, with a claim token and a lease of
  ``JOB_LEASE_SECONDS``. A message that arrives when the chunks are all taken finds nothing.
- A chunk's predictions, its ``done_at`` (only while this worker's claim holds) and the job's
  progress are one transaction (``chunk_store.claimed_chunk_store``): a chunk is stored once,
  whoever ran it, and a re-run chunk replaces nothing but its own run's rows.
- A worker killed mid-chunk leaves its chunk claimed but not done: once the claim's lease runs
  out, any worker of the job claims it again (the coordinator, which waits for the chunks in
  flight, at the latest). If the coordinator itself dies, the job's lease runs out and the
  sweeper re-queues the job: the next attempt finds the plan and the chunks done, and goes on.
- Only the coordinator ranks, once every chunk is done, under its attempt's lease.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from institutions.jobs import job_progress
from institutions.models import Institution, Job, JobKind, JobStatus

from .. import frames
from ..model_store import load_model
from ..models import LatestPrediction, ModelVersion, RescoreChunk
from ..selectors import prediction_settings_get
from .chunk_store import ChunkNotStored, ChunkPipeline, claimed_chunk_store

logger = logging.getLogger(__name__)

# How often the coordinator looks again while the last chunks are scored elsewhere.
WAIT_SECONDS = 0.2


@dataclass(frozen=True)
class ChunkClaim:
    pk: int
    number: int
    first_student_id: int
    last_student_id: int
    full: bool


def rescore_fans_out(*, job: Job, to_score: int, chunk_size: int) -> bool:
    """Whether this run's students are split over the workers: a plan exists already (an earlier
    attempt made it), or they fill at least ``RESCORE_FANOUT_MIN_CHUNKS`` chunks."""
    if RescoreChunk.objects.for_institution(job.institution).filter(job=job).exists():
        return True
    threshold = settings.RESCORE_FANOUT_MIN_CHUNKS
    return threshold > 0 and math.ceil(to_score / max(1, chunk_size)) >= threshold


def rescore_chunks_plan(
    *, institution: Institution, job: Job, version: ModelVersion, to_score: Sequence[tuple[int, str]],
    chunk_size: int, full: bool,
) -> list[RescoreChunk]:
    """The job's chunks: those an earlier attempt planned, else ``to_score`` (ordered by student
    id) cut into id ranges of ``chunk_size`` students, stored at once."""
    chunks = RescoreChunk.objects.for_institution(institution).filter(job=job)
    if chunks.exists():
        return list(chunks.order_by("number"))
    ids = [student_id for student_id, _ in to_score]
    RescoreChunk.objects.for_institution(institution).bulk_create([
        RescoreChunk(institution=institution, job=job, model_version=version, number=number, full=full,
                     first_student_id=ids[start], last_student_id=ids[min(len(ids), start + chunk_size) - 1],
                     planned=len(ids[start:start + chunk_size]))
        for number, start in enumerate(range(0, len(ids), chunk_size))
    ])
    return list(chunks.order_by("number"))


def rescore_chunk_claim(*, institution: Institution, job: Job, token: str) -> ChunkClaim | None:
    """Take the job's first chunk that is neither done nor held under a live lease, or None."""
    now = timezone.now()
    with transaction.atomic():
        chunk = (
            RescoreChunk.objects.for_institution(institution).filter(job=job, done_at__isnull=True)
            .filter(Q(claim_expires_at__isnull=True) | Q(claim_expires_at__lt=now))
            .order_by("number").select_for_update(skip_locked=True).first()
        )
        if chunk is None:
            return None
        if chunk.claims:
            logger.warning("rescore job %s: chunk %s claimed again (its last claim's lease ran out)", job.pk,
                           chunk.number)
        RescoreChunk.objects.for_institution(institution).filter(pk=chunk.pk).update(
            claim_token=token, claim_expires_at=now + timedelta(seconds=settings.JOB_LEASE_SECONDS),
            claims=chunk.claims + 1)
    return ChunkClaim(chunk.pk, chunk.number, chunk.first_student_id, chunk.last_student_id, chunk.full)


def _chunk_read(*, institution: Institution, claim: ChunkClaim, version: ModelVersion,
                keys: Sequence[str]) -> tuple[list[tuple[int, str]], dict[int, dict]]:
    """The chunk's students to score, ``(id, fingerprint)`` in id order, and their values."""
    students = frames.current_student_fingerprints(
        institution=institution, keys=keys, id_range=(claim.first_student_id, claim.last_student_id))
    if not claim.full:
        previous = {
            student_id: (version_id, fingerprint) for student_id, version_id, fingerprint
             in LatestPrediction.objects.for_institution(institution)
             .filter(student_id__gte=claim.first_student_id, student_id__lte=claim.last_student_id)
             .values_list("student_id", "model_version_id", "input_fingerprint")
        }
        students = [(student_id, fingerprint) for student_id, fingerprint in students
                    if previous.get(student_id) != (version.pk, fingerprint)]
    values = frames.student_feature_values(institution=institution, ids=[student_id for student_id, _ in students])
    return students, values


def rescore_chunks_work(
    *, institution: Institution, job: Job, top_factors: int, on_chunk: Callable[[], None] | None = None,
) -> int:
    """Claim and score the job's chunks until none is left to claim; returns how many students
    this process stored. The next chunk is claimed and read while one is explained, and stored
    while the next is explained (``ChunkPipeline``). Raises ``ChunkNotStored`` when a chunk could
    not be stored (the job stopped, or the claim was taken over); the claims still held are
    released, so that other workers need not wait for their leases."""
    token = uuid.uuid4().hex
    version = RescoreChunk.objects.for_institution(institution).filter(job=job).select_related(
        "model_version").first()
    if version is None:
        return 0
    version = version.model_version
    model = load_model(version)
    keys = [spec.key for spec in model.schema]
    prediction_settings = prediction_settings_get(institution=institution)
    stored = 0
    try:
        with ChunkPipeline() as pipeline:

            def claim_and_read():
                claim = rescore_chunk_claim(institution=institution, job=job, token=token)
                if claim is None:
                    return None, None
                return claim, pipeline.read(_chunk_read, institution=institution, claim=claim, version=version,
                                            keys=list(model.feature_keys))

            claim, reading = claim_and_read()
            while claim is not None:
                students, values = reading.result()
                following = claim_and_read()
                explanations = model.explain(frames.features_frame([values[i] for i in (s for s, _ in students)],
                                                                   keys), top_k=top_factors) if students else []
                pipeline.write(claimed_chunk_store, institution=institution, job=job, version=version,
                               settings=prediction_settings, chunk_id=claim.pk, token=token, chunk=students,
                               explanations=explanations)
                stored += len(students)
                if on_chunk is not None:
                    on_chunk()
                claim, reading = following
    finally:
        RescoreChunk.objects.for_institution(institution).filter(
            job=job, claim_token=token, done_at__isnull=True).update(claim_expires_at=None)
    return stored


def rescore_chunks_help(*, institution: Institution, job_id: int, top_factors: int) -> int:
    """A ``rescore_chunks`` task: score chunks of the institution's running rescore ``job_id``
    until none is left; returns how many students it stored. A job of another institution, or
    one no longer running, is left alone."""
    job = Job.objects.for_institution(institution).filter(pk=job_id, kind=JobKind.RESCORE,
                                                          status=JobStatus.RUNNING).first()
    if job is None:
        return 0
    try:
        return rescore_chunks_work(institution=institution, job=job, top_factors=top_factors)
    except ChunkNotStored as exc:
        logger.info("rescore job %s: a helper stopped: %s", job.pk, exc)
        return 0


def rescore_fanned_out(
    *, institution: Institution, job: Job, version: ModelVersion, to_score: Sequence[tuple[int, str]],
    chunk_size: int, full: bool, top_factors: int, send_helpers: Callable[[int], int] | None,
) -> tuple[int, dict[str, float], dict[str, int]]:
    """The coordinator's part: plan (or find) the chunks, send helpers for them, score chunks
    itself, then wait for those in flight elsewhere. Returns the students stored by the whole run,
    the seconds of each step and how many chunks each worker process stored. Raises
    ``JobCancelled``/``JobLeaseLost`` (``job_progress``)."""
    started = time.monotonic()
    chunks = rescore_chunks_plan(institution=institution, job=job, version=version, to_score=to_score,
                                 chunk_size=chunk_size, full=full)
    pending = sum(1 for chunk in chunks if chunk.done_at is None)
    job_progress(job, done=sum(chunk.stored for chunk in chunks), total=sum(chunk.planned for chunk in chunks),
                 stage=f"scoring with model v{version.number} on the scoring workers ({len(chunks)} chunks)")
    timings = {"plan": time.monotonic() - started}
    sent = send_helpers(pending - 1) if send_helpers is not None and pending > 1 else 0
    logger.info("rescore job %s: %s chunks (%s to score), %s helper tasks sent", job.pk, len(chunks), pending, sent)
    mark = time.monotonic()
    while True:
        try:
            rescore_chunks_work(institution=institution, job=job, top_factors=top_factors,
                                on_chunk=lambda: job_progress(job))
        except ChunkNotStored:
            job_progress(job)  # raises if the job was cancelled or taken over; else a claim moved on: go on
        remaining = RescoreChunk.objects.for_institution(institution).filter(job=job, done_at__isnull=True)
        if not remaining.exists():
            break
        job_progress(job)  # keeps the lease; stops here on a cancel
        time.sleep(WAIT_SECONDS)  # chunks in flight elsewhere; a dead worker's is claimable when its lease ends
    timings["chunks"] = time.monotonic() - mark
    chunks = RescoreChunk.objects.for_institution(institution).filter(job=job)
    stored = chunks.aggregate(total=Sum("stored"))["total"] or 0
    by_worker = dict(chunks.values("worker").annotate(count=Count("id")).values_list("worker", "count"))
    return stored, timings, by_worker


def rescore_chunks_forget(*, institution: Institution, job: Job) -> int:
    """Delete the chunks of ``job`` (ranked: nothing needs them now) and of the institution's
    rescores that finished without succeeding (cancelled, failed)."""
    deleted, _ = RescoreChunk.objects.for_institution(institution).filter(
        Q(job=job) | ~Q(job__status__in=(JobStatus.QUEUED, JobStatus.RUNNING))).delete()
    return deleted
