"""Imports, training, scoring and webhook deliveries each have a queue: a long retrain on one
worker never holds up a webhook, which a worker of the webhooks pool delivers meanwhile."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from dropout_platform.celery import TASK_KINDS, app, route_by_kind
from dropout_platform.settings import kind_queues_from
from institutions.jobs import job_cancel
from institutions.models import Job, JobStatus
from institutions.scoping import institution_scope
from institutions.webhooks import webhook_emit, webhook_endpoint_create
from predictions.services.requests import retrain_request

from .api.receiver import start_receiver
from .conftest import celery_worker_started
from .predictions.conftest import add_population, fast_settings


def test_each_kind_of_work_is_routed_to_its_queue(settings):
    settings.CELERY_KIND_QUEUES = {"imports": "q-imports", "training": "q-training", "scoring": "q-scoring",
                                   "webhooks": "q-webhooks"}
    routes = {name: (route_by_kind(name, (), {}, {}) or {}).get("queue") for name in TASK_KINDS}
    assert routes == {
        "students.tasks.run_import": "q-imports", "students.tasks.recompute_activity_features": "q-imports",
        "predictions.tasks.retrain_model": "q-training", "predictions.tasks.rescore_students": "q-scoring",
        "predictions.tasks.rescore_chunks": "q-scoring",
        "institutions.tasks.deliver_webhook": "q-webhooks",
    }
    # Everything else (beat's periodic tasks, emails, retention) keeps the default queue.
    assert route_by_kind("accounts.tasks.send_account_email", (), {}, {}) is None
    settings.CELERY_KIND_QUEUES = {"webhooks": "q-webhooks"}  # a kind not named runs on the default queue
    assert route_by_kind("predictions.tasks.retrain_model", (), {}, {}) is None


def test_the_kind_queues_setting_refuses_what_it_cannot_mean():
    assert kind_queues_from(["training=big-machines", " webhooks = hooks "]) == {"training": "big-machines",
                                                                                 "webhooks": "hooks"}
    for bad in ["trainng=x", "training=", "training"]:
        with pytest.raises(ImproperlyConfigured, match="is not kind=queue"):
            kind_queues_from([bad])


def _log_has(path: str, text: str) -> bool:
    return text in Path(path).read_text()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_webhook_is_delivered_while_a_training_job_runs_on_another_worker(tenants, settings):
    a, b = tenants
    host, pid = socket.gethostname(), os.getpid()
    training_queue, webhooks_queue = f"test-training{host}-{pid}", f"test-webhooks{host}-{pid}"
    kinds = f"training={training_queue},webhooks={webhooks_queue}"
    receiver = start_receiver()
    trainer = celery_worker_started("training", extra_env={"CELERY_KIND_QUEUES": kinds})
    deliverer = celery_worker_started("webhooks", extra_env={"CELERY_KIND_QUEUES": kinds})
    training_worker, webhooks_worker = next(trainer), next(deliverer)
    previous = app.conf.task_always_eager, app.conf.task_default_queue
    try:
        app.conf.task_always_eager = False
        app.conf.task_default_queue = training_queue  # anything else this test sends
        settings.CELERY_KIND_QUEUES = {"training": training_queue, "webhooks": webhooks_queue}
        add_population(a.institution, known=3000, current=100)
        fast_settings(a.institution, search_iterations=40, min_training_size=100)
        with institution_scope(a.institution):
            webhook_endpoint_create(institution=a.institution, url=receiver.url, events=["student.flagged"])
            job, _ = retrain_request(institution=a.institution)

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            job.refresh_from_db()
            if job.status != JobStatus.QUEUED:
                break
            time.sleep(0.2)
        assert job.status == JobStatus.RUNNING, (job.status, job.error)

        with institution_scope(a.institution):
            webhook_emit(institution=a.institution, event="student.flagged",
                         payload={"student": {"id": a.students[0].pk}})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not receiver.requests:
            time.sleep(0.1)
        job.refresh_from_db()
        assert len(receiver.requests) == 1
        assert job.status == JobStatus.RUNNING, "the webhook was to arrive while the retrain still ran"
        assert _log_has(webhooks_worker["log"], "institutions.tasks.deliver_webhook[")
        assert not _log_has(webhooks_worker["log"], "predictions.tasks.retrain_model[")
        assert not _log_has(training_worker["log"], "institutions.tasks.deliver_webhook[")

        with institution_scope(a.institution):
            job_cancel(job=job)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and job.status == JobStatus.RUNNING:
            time.sleep(0.5)
            job.refresh_from_db()
        assert job.status in {JobStatus.CANCELLED, JobStatus.SUCCEEDED}
        assert not Job.objects.for_institution(b.institution).exists()
    finally:
        app.conf.task_always_eager, app.conf.task_default_queue = previous
        trainer.close()
        deliverer.close()
        receiver.server.shutdown()
        receiver.server.server_close()
