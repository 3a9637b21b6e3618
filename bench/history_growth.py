"""How much the prediction history grows per rescore: bytes per student per run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/dp_history_bench \\
        nice -n 5 .venv/bin/python bench/history_growth.py [--students 3000] [--runs 3]

Builds (or reuses) bench/rescore.py's institution (the demo's 36 UCI features, ``--students``
current students resampled from the real rows), trains a model in this process, then runs
``--runs`` full rescores in this process (no worker needed) and prints, after each, the history
table's total size (every partition, with indexes and TOAST: ``pg_total_relation_size`` summed
over ``pg_partition_tree``) and the growth per student scored. Use a scratch database: the
script migrates it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rescore import build_institution  # noqa: I001  (it sets Django up first)

from django.core.management import call_command
from django.db import connection
from psycopg2 import sql

from institutions.jobs import job_create
from institutions.models import Job, JobKind, JobStatus
from institutions.scoping import institution_scope
from predictions.models import Prediction
from predictions.selectors import model_version_live
from predictions.services.jobs import rescore_job_run
from predictions.services.promotion import model_version_promote
from predictions.services.training import model_version_train

HISTORY_SIZE = sql.SQL("SELECT COALESCE(SUM(pg_total_relation_size(relid)), 0) FROM pg_partition_tree({table})").format(
    table=sql.Literal(Prediction._meta.db_table))


def history_bytes() -> int:
    with connection.cursor() as cursor:
        cursor.execute(HISTORY_SIZE)
        return int(cursor.fetchone()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    institution = build_institution(args.students)
    with institution_scope(institution):
        version = model_version_live(institution=institution)
        if version is None:
            version = model_version_train(institution=institution, trigger="user")
            if version.status != "live":
                version = model_version_promote(
                    institution=institution, version=version, note="bench", rescore=False,
                    gate_override_reason="benchmark set-up: it measures storage, not model quality")
        Job.objects.filter(status__in=(JobStatus.QUEUED, JobStatus.RUNNING)).update(status=JobStatus.CANCELLED)
        Prediction.objects.all().delete()
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("VACUUM FULL {}").format(sql.Identifier(Prediction._meta.db_table)))
    empty = previous = history_bytes()
    features = len(version.feature_keys)
    print(f"history growth: {args.students} current students, {features} model features, "
          f"PostgreSQL {connection.settings_dict['NAME']}; empty history {empty} bytes")
    for run in range(1, args.runs + 1):
        with institution_scope(institution):
            job, _ = job_create(institution=institution, kind=JobKind.RESCORE, params={"full": True},
                                triggered_by="bench", join_active=True, upgrade={"full": True})
            started = time.monotonic()
            rescore_job_run(institution=institution, job=job)
            job.refresh_from_db()
            rows = Prediction.objects.count()
        size = history_bytes()
        scored = job.counts.get("scored", 0)
        print(f"  run {run}: {scored} students scored in {time.monotonic() - started:.1f} s; history {rows} rows, "
              f"{size / 1e6:.2f} MB; this run +{size - previous} bytes = "
              f"{(size - previous) / max(scored, 1):.0f} bytes per student; "
              f"average {(size - empty) / max(rows, 1):.0f} bytes per row")
        previous = size


if __name__ == "__main__":
    main()
