"""What an operator sees: health endpoints, /metrics, request ids and log lines with their context
(and never a student's personal data), error reports to Sentry without personal data."""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from institutions.jobs import job_sweep, worker_heartbeat_record
from institutions.models import Job, JobKind, JobStatus, WorkerHeartbeat
from institutions.observability import JsonLogFormatter, LogContextFilter
from institutions.scoping import institution_scope
from institutions.tasks import record_worker_heartbeat
from predictions.models import ModelVersion

from .conftest import database_url_of_test_database
from .predictions.conftest import add_population
from .students.import_helpers import write_file

PROJECT_ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.django_db


def _foreign_host_client() -> Client:
    """A load balancer asks by the machine's address, which ALLOWED_HOSTS does not list."""
    return Client(HTTP_HOST="10.1.2.3:8000")


def test_liveness_answers_for_any_host_without_touching_the_database(django_assert_num_queries):
    with django_assert_num_queries(0):
        response = _foreign_host_client().get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readiness_needs_a_recent_worker_heartbeat(settings):
    client = _foreign_host_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"]["ok"] and checks["broker"]["ok"]
    assert checks["worker"] == {"ok": False, "detail": "no worker has taken the heartbeat task yet", "required": True}

    record_worker_heartbeat.apply()
    response = client.get("/readyz")
    assert response.status_code == 200 and response.json()["status"] == "ready"

    WorkerHeartbeat.objects.update(seen_at=timezone.now() - timedelta(seconds=600))
    response = client.get("/readyz")
    assert response.status_code == 503
    detail = response.json()["checks"]["worker"]["detail"]
    assert re.fullmatch(r"no worker has taken the heartbeat task for 6\d\d s", detail)

    settings.READY_REQUIRES_WORKER = False
    response = client.get("/readyz")
    assert response.status_code == 200 and response.json()["checks"]["worker"]["ok"] is False


def test_readiness_fails_when_redis_does_not_answer(settings):
    worker_heartbeat_record("w1")
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = _foreign_host_client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"] == {"ok": False, "detail": "Redis did not answer (ConnectionError)",
                                                   "required": True}
    assert "127.0.0.1" not in response.content.decode()


def test_heartbeats_of_workers_silent_for_a_day_are_forgotten():
    worker_heartbeat_record("old-worker")
    WorkerHeartbeat.objects.filter(worker="old-worker").update(seen_at=timezone.now() - timedelta(days=2))
    worker_heartbeat_record("new-worker")
    assert list(WorkerHeartbeat.objects.values_list("worker", flat=True)) == ["new-worker"]


def test_metrics_are_off_without_a_token_and_refuse_a_wrong_one(settings):
    settings.METRICS_TOKEN = ""
    assert _foreign_host_client().get("/metrics").status_code == 404
    settings.METRICS_TOKEN = "s3cret-token"
    refused = _foreign_host_client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong")
    assert refused.status_code == 401 and refused["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert _foreign_host_client().get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token").status_code == 200


def _metrics(settings) -> str:
    settings.METRICS_TOKEN = "s3cret-token"
    response = _foreign_host_client().get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token")
    assert response.status_code == 200
    return response.content.decode()


def test_request_metrics_are_labelled_by_route_pattern_never_by_ids_or_slugs(settings, tenants, client):
    a, b = tenants
    client.force_login(a.advisor)
    student = a.students[0]
    assert client.get(f"/i/{a.institution.slug}/students/{student.pk}/").status_code == 200
    assert client.get(f"/i/{b.institution.slug}/students/{b.students[0].pk}/").status_code in {403, 404}
    text = _metrics(settings)
    lines = [line for line in text.splitlines() if line.startswith("dp_http_requests_total{")]
    profile = [line for line in lines if "<int:" in line and "students/" in line]
    assert profile, lines
    assert not [line for line in lines if f"/{student.pk}/" in line or a.institution.slug in line
                or b.institution.slug in line]


def test_job_queue_and_model_metrics_describe_the_deployment(settings, tenants):
    a, b = tenants
    with institution_scope(a.institution):
        Job.objects.create(kind=JobKind.RESCORE, status=JobStatus.QUEUED)
        running = Job.objects.create(kind=JobKind.RETRAIN, status=JobStatus.RUNNING, attempts=1,
                                     lease_expires_at=timezone.now() - timedelta(minutes=5),
                                     started_at=timezone.now() - timedelta(minutes=9))
        now = timezone.now()
        Job.objects.create(kind=JobKind.IMPORT, status=JobStatus.SUCCEEDED, started_at=now - timedelta(seconds=40),
                           finished_at=now - timedelta(seconds=10))
        Job.objects.create(kind=JobKind.IMPORT, status=JobStatus.FAILED, started_at=now, finished_at=now)
        ModelVersion.objects.create(number=1, status="live", metrics={"roc_auc": 0.875, "brier": 0.11, "n": 400})
    with institution_scope(b.institution):
        ModelVersion.objects.create(number=1, status="candidate", metrics={"roc_auc": 0.5})
    worker_heartbeat_record("worker-one@host")

    assert job_sweep()["requeued"] == 1  # the running job's lease ran out
    running.refresh_from_db()
    assert running.lease_expiries == 1

    text = _metrics(settings)
    assert 'dp_jobs{kind="rescore",status="queued"} 1.0' in text
    assert 'dp_jobs_finished_last_hour{kind="import",status="succeeded"} 1.0' in text
    assert 'dp_jobs_finished_last_hour{kind="import",status="failed"} 1.0' in text
    assert 'dp_job_duration_seconds_last_hour{kind="import",stat="max"} 30.0' in text
    assert 'dp_job_lease_expiries_last_day{kind="retrain"} 1.0' in text
    assert re.search(r'dp_queue_depth\{queue="[^"]+"\} \d+\.0', text)
    assert re.search(r'dp_worker_heartbeat_age_seconds\{worker="worker-one@host"\} \d', text)
    assert f'dp_model_quality{{institution="{a.institution.slug}",metric="roc_auc"}} 0.875' in text
    assert f'dp_model_quality{{institution="{a.institution.slug}",metric="brier"}} 0.11' in text
    assert 'metric="n"' not in text  # only quality figures, never counts of students
    assert f'institution="{b.institution.slug}"' not in text  # its model is not live


def test_request_id_is_kept_when_well_formed_and_replaced_otherwise(tenant_a, client):
    client.force_login(tenant_a.advisor)
    url = f"/i/{tenant_a.institution.slug}/"
    kept = client.get(url, HTTP_X_REQUEST_ID="req-0123456789abcdef")
    assert kept["X-Request-ID"] == "req-0123456789abcdef"
    for bad in ["short", "x" * 65, "has space here", "new\nline-injected-0000"]:
        replaced = client.get(url, HTTP_X_REQUEST_ID=bad)
        assert re.fullmatch(r"[0-9a-f]{32}", replaced["X-Request-ID"]), bad


class _Captured:
    """The root logger's records as the production handler writes them (JSON), at DEBUG."""

    def __init__(self):
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(JsonLogFormatter())
        self.handler.addFilter(LogContextFilter())
        self.handler.setLevel(logging.DEBUG)

    def __enter__(self):
        root = logging.getLogger()
        self.level = root.level
        root.addHandler(self.handler)
        root.setLevel(logging.DEBUG)
        # Every logger the code has, whatever earlier tests of the run left them at (a worker or a
        # logging configuration started in-process may disable or quieten them): all that is logged.
        self.saved = {name: (logger.disabled, logger.level, logger.propagate)
                      for name, logger in logging.root.manager.loggerDict.items()
                      if isinstance(logger, logging.Logger)}
        for name in self.saved:
            logger = logging.getLogger(name)
            logger.disabled, logger.propagate = False, True
            logger.setLevel(logging.NOTSET)
        return self

    def __exit__(self, *exc):
        root = logging.getLogger()
        root.removeHandler(self.handler)
        root.setLevel(self.level)
        for name, (disabled, level, propagate) in self.saved.items():
            logger = logging.getLogger(name)
            logger.disabled, logger.propagate = disabled, propagate
            logger.setLevel(level)

    def records(self) -> list[dict]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines() if line.strip()]


def test_a_request_logs_its_id_and_institution(tenant_a, client):
    client.force_login(tenant_a.advisor)
    with _Captured() as captured:
        logging.getLogger("django.request").warning("probe outside")  # no request, no institution
        response = client.get(f"/i/{tenant_a.institution.slug}/students/999999999/")  # a 404 is logged
    assert response.status_code == 404
    records = captured.records()
    assert {"time", "level", "logger", "message", "request_id", "institution", "job_id", "task_id"} <= set(records[0])
    assert records[0]["request_id"] == "" and records[0]["institution"] == ""
    logged = [r for r in records if r["logger"] == "django.request" and "Not Found" in r["message"]]
    assert logged and logged[0]["request_id"] == response["X-Request-ID"]


@pytest.mark.django_db(transaction=True)
def test_logs_of_a_full_import_and_rescore_carry_ids_but_no_personal_data(tenants, tmp_path):
    a, b = tenants
    people = [("Zephyrine Quillfeather", "zephyrine.q@example.edu"), ("Bartholomew Xandercroft", "bxc@example.edu")]
    csv = "student_id,name,email,units_approved,tuition_up_to_date,gender,outcome\r\n" + "".join(
        f"Q{i:03d},{name},{email},{17 + i},no,m,Enrolled\r\n" for i, (name, email) in enumerate(people))
    path = write_file(tmp_path, "people.csv", csv)
    add_population(a.institution)
    with _Captured() as captured:
        call_command("import_students", a.institution.slug, str(path), "--no-progress", stdout=io.StringIO())
        call_command("train_and_score", a.institution.slug, "--search-iterations", "1", stdout=io.StringIO())
    text = captured.stream.getvalue()
    records = captured.records()
    # Each job says when it runs and how it ended, with its id, kind and counts (numbers only).
    ended = re.compile(r"job \d+ \((?P<kind>import|retrain|rescore)\) succeeded after .*")
    finished = [r for r in records if ended.fullmatch(r["message"])]
    assert {ended.fullmatch(r["message"]).group("kind") for r in finished} == {"import", "retrain", "rescore"}
    for name, email in people:
        for secret in [name, email, *name.split()]:
            assert secret not in text, secret
    assert not re.search(r"units_approved\W{1,6}\d", text)  # no feature value beside its key
    jobs = set(Job.objects.for_institution(a.institution).values_list("pk", flat=True))
    logged_jobs = {int(r["job_id"]) for r in records if r["job_id"]}
    assert logged_jobs and logged_jobs <= jobs
    assert {r["institution"] for r in records if r["job_id"]} == {a.institution.slug}
    assert b.institution.slug not in {r["institution"] for r in records}


class _SentryIngest(BaseHTTPRequestHandler):
    bodies: list[bytes] = []

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length)
        if self.headers.get("Content-Encoding") == "gzip":
            import gzip

            body = gzip.decompress(body)
        elif self.headers.get("Content-Encoding") == "br":  # pragma: no cover - brotli is not installed
            raise AssertionError("brotli")
        type(self).bodies.append(body)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


SENTRY_CHILD = r"""
import os, sys
import django
django.setup()
from django.test import Client
from django.urls import path
import dropout_platform.urls as urls

def boom(request):
    raise RuntimeError("job 41 failed for institution 7")

urls.urlpatterns.append(path("boom/", boom))
client = Client(raise_request_exception=False, HTTP_HOST="127.0.0.1")
client.cookies["sessionid"] = "cookie-secret-value"
client.post("/boom/?email=leaky@example.edu", {"name": "Zephyrine Quillfeather"},
            HTTP_X_STUDENT="Bartholomew Xandercroft")
import sentry_sdk
sentry_sdk.flush(timeout=10)
"""


def test_errors_reach_sentry_without_personal_data(tmp_path):
    _SentryIngest.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SentryIngest)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        env = {"DJANGO_SETTINGS_MODULE": "dropout_platform.settings", "DJANGO_DEBUG": "1",
               "SENTRY_DSN": f"http://publickey@127.0.0.1:{server.server_port}/42", "PATH": "/usr/bin:/bin",
               "DATABASE_URL": database_url_of_test_database(), "PYTHONPATH": str(PROJECT_ROOT)}
        run = subprocess.run([sys.executable, "-c", SENTRY_CHILD], cwd=PROJECT_ROOT, env=env, capture_output=True,
                             text=True, timeout=120)
        assert run.returncode == 0, run.stderr[-3000:]
    finally:
        server.shutdown()
    sent = b"\n".join(_SentryIngest.bodies).decode("utf-8", "replace")
    assert "RuntimeError" in sent and "job 41 failed for institution 7" in sent
    for secret in ["Zephyrine", "Bartholomew", "leaky@example.edu", "cookie-secret-value", "X-Student"]:
        assert secret not in sent, secret


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_takes_the_heartbeat_and_makes_the_site_ready(celery_worker_process):
    import time

    record_worker_heartbeat.delay()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not WorkerHeartbeat.objects.exists():
        time.sleep(0.2)
    beat = WorkerHeartbeat.objects.get()
    assert beat.worker.startswith(celery_worker_process["queue"])
    assert _foreign_host_client().get("/readyz").status_code == 200
    # The worker's own log lines carry the task's id as context.
    log = Path(celery_worker_process["log"]).read_text()
    succeeded = r"record_worker_heartbeat\[(?P<id>[0-9a-f-]{36})\] succeeded in .* \[task=(?P=id)\]"
    assert re.search(succeeded, log), log[-2000:]
