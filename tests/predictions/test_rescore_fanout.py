"""A large rescore split into chunks that several workers score (predictions.services.fanout), run
in-process here: the chunk tasks run inline when the job's task sends them. The same with real
worker processes on Redis, one of them killed mid-chunk: tests/faults/test_rescore_fanout_workers.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from institutions.jobs import job_claim, job_create
from institutions.models import Job, JobKind, JobStatus
from institutions.scoping import institution_scope
from predictions.models import LatestPrediction, ModelStatus, Prediction, RescoreChunk
from predictions.services.chunk_store import ChunkNotStored, claimed_chunk_store
from predictions.services.fanout import rescore_chunk_claim, rescore_chunks_plan
from predictions.services.training import model_version_train
from predictions.tasks import rescore_chunks, rescore_students
from students.models import Student
from students.selectors import current_students

from .conftest import add_population, fast_settings

CHUNK = 20


@pytest.fixture
def fan_out_from_two_chunks(settings):
    settings.RESCORE_FANOUT_MIN_CHUNKS = 2


def _trained(tenant, *, current: int = 150, prefix: str = "P"):
    institution = tenant.institution
    add_population(institution, known=240, current=current, prefix=prefix)
    fast_settings(institution)
    with institution_scope(institution):
        version = model_version_train(institution=institution)
        assert version.status == ModelStatus.LIVE
    return version


def _rescore(institution, *, full: bool) -> Job:
    with institution_scope(institution):
        job, _ = job_create(institution=institution, kind=JobKind.RESCORE, params={"full": full, "chunk_size": CHUNK})
    rescore_students.delay(institution_id=institution.pk, job_id=job.pk)  # in-process, with its chunk tasks
    return Job.objects.for_institution(institution).get(pk=job.pk)


def _scored_once_and_ranked(institution, job: Job) -> None:
    current = set(current_students(institution=institution).values_list("id", flat=True))
    scored = list(Prediction.objects.for_institution(institution).filter(job=job).values_list("student_id",
                                                                                              flat=True))
    assert len(scored) == len(set(scored)) and set(scored) == current
    ranks = sorted(LatestPrediction.objects.for_institution(institution).values_list("rank", flat=True))
    assert ranks == list(range(1, len(current) + 1))


def test_a_large_full_rescore_is_scored_in_chunks_once_per_student_and_ranked(
    fan_out_from_two_chunks, tenant_a, tenant_b
):
    institution = tenant_a.institution
    _trained(tenant_a)
    _trained(tenant_b, prefix="Q")
    add_population(institution, known=0, current=40, prefix="R")  # A's ids now span B's
    b_before = list(LatestPrediction.objects.for_institution(tenant_b.institution).values_list("id", "risk"))

    job = _rescore(institution, full=True)

    assert job.status == JobStatus.SUCCEEDED, job.error
    current = current_students(institution=institution).count()
    assert job.counts["scored"] == job.counts["current"] == current
    assert "chunks" in job.result["seconds"]  # the fanned-out path
    assert sum(job.result["chunks_by_worker"].values()) == -(-current // CHUNK)
    assert job.progress_done == job.progress_total == current
    _scored_once_and_ranked(institution, job)
    assert not RescoreChunk.objects.for_institution(institution).exists()  # forgotten once ranked
    assert not Prediction.objects.for_institution(tenant_b.institution).filter(job=job).exists()
    assert list(LatestPrediction.objects.for_institution(tenant_b.institution).values_list("id", "risk")) == b_before


def test_an_incremental_rescore_of_a_few_changed_students_stays_one_task(fan_out_from_two_chunks, tenant_a):
    institution = tenant_a.institution
    _trained(tenant_a)
    _rescore(institution, full=True)
    changed = list(current_students(institution=institution).order_by("id")[:5])
    for student in changed:
        student.features = {**student.features, "units_approved": (student.features["units_approved"] + 9) % 31}
    Student.objects.for_institution(institution).bulk_update(changed, ["features"])

    job = _rescore(institution, full=False)

    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.counts["scored"] == 5
    assert "chunks" not in job.result["seconds"] and "chunks_by_worker" not in job.result
    assert set(Prediction.objects.for_institution(institution).filter(job=job).values_list("student_id", flat=True)) \
        == {student.pk for student in changed}


def test_a_small_institution_keeps_the_single_task_path(settings, tenant_a):
    settings.RESCORE_FANOUT_MIN_CHUNKS = 100  # 150 students in chunks of 20: 8 chunks
    institution = tenant_a.institution
    _trained(tenant_a)
    job = _rescore(institution, full=True)
    assert job.status == JobStatus.SUCCEEDED
    assert "chunks" not in job.result["seconds"]
    _scored_once_and_ranked(institution, job)


def _running_with_a_plan(tenant) -> tuple[Job, list[RescoreChunk]]:
    institution = tenant.institution
    version = _trained(tenant)
    with institution_scope(institution):
        job, _ = job_create(institution=institution, kind=JobKind.RESCORE, params={"full": True})
        job = job_claim(institution=institution, job_id=job.pk)
        students = list(current_students(institution=institution).order_by("id").values_list("id", "id"))
        chunks = rescore_chunks_plan(institution=institution, job=job, version=version,
                                     to_score=[(pk, "") for pk, _ in students], chunk_size=CHUNK, full=True)
    return job, chunks


def test_a_chunk_task_for_another_institution_touches_none_of_its_students(tenant_a, tenant_b):
    job, _ = _running_with_a_plan(tenant_a)
    _trained(tenant_b, prefix="Q")
    b_before = list(LatestPrediction.objects.for_institution(tenant_b.institution).values_list("id", "risk"))

    # A message naming B with A's job: B's scope has no such job, nothing is claimed or written.
    rescore_chunks.delay(institution_id=tenant_b.institution.pk, job_id=job.pk)
    assert not RescoreChunk.objects.for_institution(tenant_a.institution).filter(claims__gt=0).exists()
    assert not Prediction.objects.for_institution(tenant_a.institution).filter(job=job).exists()
    assert not Prediction.objects.for_institution(tenant_b.institution).filter(job=job).exists()

    rescore_chunks.delay(institution_id=tenant_a.institution.pk, job_id=job.pk)
    assert not RescoreChunk.objects.for_institution(tenant_a.institution).filter(done_at__isnull=True).exists()
    scored = set(Prediction.objects.for_institution(tenant_a.institution).filter(job=job)
                 .values_list("student_id", flat=True))
    assert scored == set(current_students(institution=tenant_a.institution).values_list("id", flat=True))
    assert list(LatestPrediction.objects.for_institution(tenant_b.institution).values_list("id", "risk")) == b_before


def test_a_chunk_whose_claim_ran_out_is_claimed_again_and_stored_once(tenant_a):
    institution = tenant_a.institution
    job, chunks = _running_with_a_plan(tenant_a)
    with institution_scope(institution):
        dead = rescore_chunk_claim(institution=institution, job=job, token="dead-worker")
        assert dead.number == 0
        # The dead worker's claim holds until its lease runs out: the next worker takes chunk 1.
        assert rescore_chunk_claim(institution=institution, job=job, token="other").number == 1
        RescoreChunk.objects.for_institution(institution).filter(pk=dead.pk).update(
            claim_expires_at=timezone.now() - timedelta(seconds=1))
        again = rescore_chunk_claim(institution=institution, job=job, token="survivor")
        assert again.pk == dead.pk
        version = chunks[0].model_version
        students = [(chunks[0].first_student_id, "f")]
        explanation = {"risk": 0.5, "base_value": 0.1, "factors": []}
        claimed_chunk_store(institution=institution, job=job, version=version, settings=fast_settings(institution),
                            chunk_id=again.pk, token="survivor", chunk=students, explanations=[explanation])
        # The first worker coming back late stores nothing: the chunk is done, and not its own.
        with pytest.raises(ChunkNotStored):
            claimed_chunk_store(institution=institution, job=job, version=version,
                                settings=fast_settings(institution), chunk_id=dead.pk, token="dead-worker",
                                chunk=students, explanations=[explanation])
    assert Prediction.objects.for_institution(institution).filter(job=job).count() == 1
    chunk = RescoreChunk.objects.for_institution(institution).get(pk=dead.pk)
    assert chunk.claims == 2 and chunk.stored == 1 and chunk.done_at is not None
    assert Job.objects.for_institution(institution).get(pk=job.pk).progress_done == 1


def test_a_cancelled_job_stores_no_further_chunk(tenant_a):
    institution = tenant_a.institution
    job, _ = _running_with_a_plan(tenant_a)
    Job.objects.for_institution(institution).filter(pk=job.pk).update(cancel_requested_at=timezone.now())
    rescore_chunks.delay(institution_id=institution.pk, job_id=job.pk)
    assert not Prediction.objects.for_institution(institution).filter(job=job).exists()
    # Its claim is given back, not left to run out.
    assert not RescoreChunk.objects.for_institution(institution).filter(claim_expires_at__isnull=False).exists()


def test_a_later_attempt_of_the_job_reuses_its_plan(tenant_a):
    institution = tenant_a.institution
    job, chunks = _running_with_a_plan(tenant_a)
    assert len(chunks) == -(-current_students(institution=institution).count() // CHUNK)
    with institution_scope(institution):
        again = rescore_chunks_plan(institution=institution, job=job, version=chunks[0].model_version,
                                    to_score=[(1, "x")], chunk_size=1, full=False)
    assert [(chunk.pk, chunk.first_student_id, chunk.last_student_id) for chunk in again] == \
        [(chunk.pk, chunk.first_student_id, chunk.last_student_id) for chunk in chunks]
