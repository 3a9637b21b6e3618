"""Rescoring benchmark through the real path: Celery workers on Redis writing to PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/dp_predict_bench REDIS_URL=redis://127.0.0.1:6379/0 \\
        nice -n 5 .venv/bin/python bench/rescore.py [--students 100000] [--changed 0.01] \\
        [--workers 1,2] [--rounds 2]

Builds (once; reused on later runs) an institution ``bench-rescore`` with the UCI schema: the
3,630 real UCI students with a known outcome to train on, and ``--students`` current students
resampled from the real UCI rows. Trains a model in this process, then times, end to end
(request -> job finished, as a user would wait):

1. a full rescore of every current student with explanations stored, once per worker count of
   ``--workers`` in turn, for ``--rounds`` rounds (1, 2, 1, 2...: the machine's load drifts, so
   the counts alternate). Worker ``i`` is pinned to core ``i`` (``taskset -c i``), so two
   workers never share a core; a run of at least ``RESCORE_FANOUT_MIN_CHUNKS`` chunks is split
   over them (predictions.services.fanout);
2. an incremental rescore after ``--changed`` of the students got new values (the last count);

and, as the floor, the bare model + explanation computation (``model.explain``) for the same
rows in this process, pinned to core 0, with no database. Use a scratch database: the script
migrates it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dropout_platform.settings")
os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-secret-key")
# Every task on the bench's private queue (below), this process's and the workers' alike.
os.environ.setdefault("CELERY_KIND_QUEUES", "")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from psycopg2 import sql  # noqa: E402

from institutions.models import Institution, Job, JobStatus  # noqa: E402
from institutions.scoping import institution_scope  # noqa: E402
from predictions.frames import current_student_values, features_frame  # noqa: E402
from predictions.model_store import load_model  # noqa: E402
from predictions.models import LatestPrediction, Prediction, PredictionSettings  # noqa: E402
from predictions.selectors import model_version_live  # noqa: E402
from predictions.services.promotion import model_version_promote  # noqa: E402
from predictions.services.requests import rescore_request  # noqa: E402
from predictions.services.scoring import SCORING_CHUNK_SIZE  # noqa: E402
from predictions.services.training import model_version_train  # noqa: E402
from students.demo import UCI_CSV, _create_schema, _feature_value, read_uci_rows  # noqa: E402
from students.models import EnrolmentStatus, Outcome, Student  # noqa: E402
from students.uci_schema import UCI_COLUMNS, UCI_OUTCOMES, UCI_TARGET_HEADER  # noqa: E402

SLUG = "bench-rescore"


def _features(row: dict) -> dict:
    return {column.key: _feature_value(column.kind, row[column.header]) for column in UCI_COLUMNS}


def build_institution(n_current: int) -> Institution:
    institution = Institution.objects.filter(slug=SLUG).first()
    if institution is not None:
        with institution_scope(institution):
            if Student.objects.filter(outcome=Outcome.ENROLLED).count() == n_current:
                return institution
        print("  removing the previous bench institution (different size)")
        with institution_scope(institution):
            # Predictions protect their model versions and jobs: delete them first.
            Prediction.objects.all().delete()
        institution.delete()
    started = time.monotonic()
    institution = Institution.objects.create(slug=SLUG, name="Bench University")
    rows = read_uci_rows(UCI_CSV)
    with institution_scope(institution):
        _create_schema(institution, rows)
        known = [row for row in rows if UCI_OUTCOMES[row[UCI_TARGET_HEADER].strip()] != Outcome.ENROLLED]
        Student.objects.bulk_create(
            [Student(institution=institution, external_id=f"K{i:06d}", outcome=UCI_OUTCOMES[row[UCI_TARGET_HEADER]
                     .strip()], status=EnrolmentStatus.INACTIVE, features=_features(row))
             for i, row in enumerate(known)],
            batch_size=5000,
        )
        rng = np.random.default_rng(11)
        picks = rng.integers(0, len(rows), size=n_current)
        for start in range(0, n_current, 10_000):
            Student.objects.bulk_create(
                [Student(institution=institution, external_id=f"C{i:07d}", outcome=Outcome.ENROLLED,
                         features=_features(rows[int(picks[i])]))
                 for i in range(start, min(n_current, start + 10_000))],
                batch_size=5000,
            )
        PredictionSettings.objects.create(institution=institution, search_iterations=2, rescore_schedule="off",
                                          retrain_schedule="off")
    print(f"  built {len(known)} training + {n_current} current students in {time.monotonic() - started:.1f} s")
    return institution


def vacuum() -> None:
    with connection.cursor() as cursor:
        for model in (Prediction, LatestPrediction, Student):
            cursor.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(model._meta.db_table)))


def start_worker(queue: str, log_path: Path, *, core: int) -> tuple[subprocess.Popen, str]:
    """A solo worker on ``queue``, pinned to ``core``; returns it and its node name."""
    name = f"{queue}-{core}"
    log = open(log_path, "w")  # noqa: SIM115 - owned by the worker process
    pin = ["taskset", "-c", str(core)] if shutil.which("taskset") and core < (os.cpu_count() or 1) else []
    process = subprocess.Popen(
        [*pin, sys.executable, "-m", "celery", "-A", "dropout_platform", "worker", "--loglevel=WARNING",
         "--pool=solo", "--without-gossip", "--without-mingle", "--without-heartbeat", "-Q", queue,
         "-n", f"{name}@%h"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "CELERY_TASK_DEFAULT_QUEUE": queue}, stdout=log,
        stderr=subprocess.STDOUT,
    )
    return process, name


def wait_ready(app, name: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if app.control.ping(destination=[f"{name}@{socket.gethostname()}"], timeout=1.0):
            return
        if process.poll() is not None:
            raise SystemExit("a worker exited; see var/bench-rescore-worker-*.log")
    raise SystemExit("a worker did not answer within 90 s")


def start_workers(app, queue: str, count: int) -> list[subprocess.Popen]:
    started = [start_worker(queue, ROOT / "var" / f"bench-rescore-worker-{core}.log", core=core)
               for core in range(count)]
    for process, name in started:
        wait_ready(app, name, process)
    return [process for process, _ in started]


def stop_workers(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(timeout=30)


def timed_full_rescore(app, institution: Institution, queue: str, workers: int) -> float:
    """Start ``workers`` pinned workers, time a full rescore from no stored predictions, stop them."""
    with institution_scope(institution):
        Prediction.objects.all().delete()
    vacuum()
    processes = start_workers(app, queue, workers)
    try:
        seconds, job = timed_rescore(institution, full=True)
    finally:
        stop_workers(processes)
    by_worker = job.result.get("chunks_by_worker") or {}
    print(f"  {workers} worker(s): full rescore of {job.counts['scored']} students: {seconds:.1f} s end to end "
          f"(job {job.duration_seconds:.1f} s; chunks per worker {sorted(by_worker.values(), reverse=True)}; "
          f"stages {job.result.get('seconds')}; load {os.getloadavg()[0]:.1f})")
    return seconds


def timed_rescore(institution: Institution, *, full: bool) -> tuple[float, Job]:
    started = time.monotonic()
    with institution_scope(institution):
        job, created = rescore_request(institution=institution, full=full, triggered_by="bench")
    assert created, "another rescore of the bench institution is still active"
    while True:
        job.refresh_from_db()
        if job.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
            break
        time.sleep(0.1)
    elapsed = time.monotonic() - started
    if job.status != JobStatus.SUCCEEDED:
        raise SystemExit(f"rescore failed: {job.error}")
    return elapsed, job


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=100_000)
    parser.add_argument("--changed", type=float, default=0.01)
    parser.add_argument("--workers", default="1,2", help="worker counts to compare, in turn (e.g. 1,2)")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if connection.vendor != "postgresql" or not os.environ.get("DATABASE_URL") or not os.environ.get("REDIS_URL"):
        raise SystemExit("needs DATABASE_URL (PostgreSQL, a scratch database) and REDIS_URL")
    from dropout_platform.celery import app

    print(f"rescore benchmark: {args.students} current students, PostgreSQL {connection.settings_dict['NAME']}")
    # A private queue from the start: even the rescore a promotion queues goes only to our worker.
    queue = f"bench-{socket.gethostname()}-{uuid.uuid4().hex[:6]}"
    app.conf.task_default_queue = queue
    call_command("migrate", verbosity=0)
    institution = build_institution(args.students)
    with institution_scope(institution):
        version = model_version_live(institution=institution)
        if version is None:
            started = time.monotonic()
            version = model_version_train(institution=institution, trigger="user")
            print(f"  trained model v{version.number} ({version.status}) in {time.monotonic() - started:.1f} s")
            if version.status != "live":
                version = model_version_promote(
                    institution=institution, version=version, note="bench", rescore=False,
                    gate_override_reason="benchmark set-up: it measures scoring speed, not model quality")
        Job.objects.filter(status__in=(JobStatus.QUEUED, JobStatus.RUNNING)).update(
            status=JobStatus.CANCELLED)

    counts = [int(count) for count in args.workers.split(",")]
    print(f"  machine: {os.cpu_count()} cores, load {' '.join(f'{x:.1f}' for x in os.getloadavg())}; "
          f"RESCORE_FANOUT_MIN_CHUNKS={settings.RESCORE_FANOUT_MIN_CHUNKS}")
    floor = explanation_floor(institution, version)
    print(f"floor: bare model + explanation for the same rows, in this process on one core: {floor:.1f} s")
    results: dict[int, list[float]] = {count: [] for count in counts}
    for _ in range(args.rounds):
        for count in counts:
            results[count].append(timed_full_rescore(app, institution, queue, count))
    for count in counts:
        print(f"full rescore, {count} worker(s): {', '.join(f'{t:.1f}' for t in results[count])} s "
              f"(best {min(results[count]):.1f} s = {min(results[count]) / floor:.2f}x the floor)")
    if 1 in results and len(counts) > 1:
        for count in counts:
            if count != 1:
                print(f"speed-up, {count} workers vs 1 (best against best): "
                      f"{min(results[1]) / min(results[count]):.2f}x")

    with institution_scope(institution):
        current = Student.objects.filter(outcome=Outcome.ENROLLED).order_by("id")
        n_changed = int(args.students * args.changed)
        ids = list(current.values_list("id", flat=True)[:: max(1, args.students // n_changed)][:n_changed])
        students = list(Student.objects.filter(id__in=ids))
        for student in students:
            approved = student.features.get("units_2nd_approved") or 0
            student.features = {**student.features,
                                "units_2nd_approved": approved - 1 if approved >= 1 else approved + 1}
        Student.objects.bulk_update(students, ["features"], batch_size=2000)
    vacuum()
    processes = start_workers(app, queue, counts[-1])
    try:
        inc_seconds, inc_job = timed_rescore(institution, full=False)
    finally:
        stop_workers(processes)
    print(f"incremental rescore, {inc_job.counts['scored']} changed of {inc_job.counts['current']}: "
          f"{inc_seconds:.1f} s end to end (job {inc_job.duration_seconds:.1f} s on the worker; "
          f"stages {inc_job.result.get('seconds')})")


def explanation_floor(institution: Institution, version) -> float:
    """Seconds of ``model.explain`` over every current student, in chunks, pinned to core 0."""
    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {0})
    try:
        with institution_scope(institution):
            model = load_model(version)
            _, values = current_student_values(institution=institution)
            keys = [spec.key for spec in model.schema]
            started = time.monotonic()
            for start in range(0, len(values), SCORING_CHUNK_SIZE):
                model.explain(features_frame(values[start:start + SCORING_CHUNK_SIZE], keys), top_k=5)
            return time.monotonic() - started
    finally:
        os.sched_setaffinity(0, affinity)

if __name__ == "__main__":
    main()
