"""Storing one scored chunk: its predictions, its students' latest rows and the job's progress.

Each chunk is one transaction, so a worker killed mid-run leaves whole chunks or nothing, and
storing a chunk again (a redelivered task) replaces this run's rows instead of duplicating them.
"""

from __future__ import annotations

import csv
import io
import os
import socket
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import orjson
from django.db import connection, connections, transaction
from django.utils import timezone

from institutions.jobs import job_progress, job_progress_add
from institutions.models import Institution, Job

from .. import sql
from ..models import ModelVersion, PredictionSettings, RescoreChunk, RiskBand


def risk_band(risk: float, settings: PredictionSettings) -> str:
    if risk >= settings.band_high_from:
        return RiskBand.HIGH
    if risk >= settings.band_medium_from:
        return RiskBand.MEDIUM
    return RiskBand.LOW


class ChunkPipeline:
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

    def __enter__(self) -> ChunkPipeline:
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


def prediction_chunk_store(
    *, institution: Institution, job: Job, version: ModelVersion, settings: PredictionSettings,
    chunk: Sequence[tuple[int, str]], explanations: Sequence[dict], done_after: int,
) -> None:
    """One transaction: the chunk's predictions, its students' latest rows, the job's progress.

    Idempotent: rows this run already stored for these students are replaced, never duplicated.
    """
    now = timezone.now()
    rows = _rows(chunk, explanations)
    with transaction.atomic():
        _store_chunk_rows(institution=institution, job=job, version=version, settings=settings, rows=rows, now=now)
        job_progress(job, done=done_after)


def worker_name() -> str:
    """Which process stored a fanned-out chunk (host:pid; a prefork child's own pid)."""
    return f"{socket.gethostname()}:{os.getpid()}"[:200]


class ChunkNotStored(Exception):
    """A fanned-out chunk's transaction was rolled back: its claim was taken over (its lease ran
    out) or the job stopped running (cancelled, re-queued, finished)."""


def claimed_chunk_store(
    *, institution: Institution, job: Job, version: ModelVersion, settings: PredictionSettings,
    chunk_id: int, token: str, chunk: Sequence[tuple[int, str]], explanations: Sequence[dict],
) -> None:
    """One transaction: a claimed chunk of a fanned-out rescore marked done, its predictions and
    latest rows, and its students added to the job's progress; or nothing (:class:`ChunkNotStored`).

    The chunk's row is updated first, so a second worker that took the chunk over waits on it and
    then finds it done: a chunk is stored once, whoever claimed it.
    """
    now = timezone.now()
    with transaction.atomic():
        marked = RescoreChunk.objects.for_institution(institution).filter(
            pk=chunk_id, job=job, claim_token=token, done_at__isnull=True,
        ).update(done_at=now, stored=len(chunk), worker=worker_name())
        if not marked:
            raise ChunkNotStored(f"chunk {chunk_id} of job {job.pk} is no longer this worker's")
        rows = _rows(chunk, explanations)
        if rows:
            _store_chunk_rows(institution=institution, job=job, version=version, settings=settings, rows=rows,
                              now=now)
        if not job_progress_add(job, done=len(rows)):
            raise ChunkNotStored(f"job {job.pk} is no longer running")


def _rows(chunk: Sequence[tuple[int, str]], explanations: Sequence[dict]) -> list[tuple]:
    return [
        (student_id, fingerprint, float(explanation["risk"]), float(explanation["base_value"]),
         explanation["factors"])
        for (student_id, fingerprint), explanation in zip(chunk, explanations, strict=True)
    ]


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
        # The run's time, the same for every chunk and every attempt: a redelivered chunk finds its
        # rows by it (the history is partitioned by it). The latest rows' updated_at is when written.
        cursor.execute(sql.STAGE_STORE, {"institution_id": institution.pk, "model_version_id": version.pk,
                                         "job_id": job.pk, "created_at": job.created_at, "updated_at": now})
