"""``/metrics`` for Prometheus (docs/operations.md, "Logs, metrics and health").

Two sources:

- this web process's request counters and timings (:mod:`institutions.observability`); run
  gunicorn with ``PROMETHEUS_MULTIPROC_DIR`` set to sum them over its processes;
- the state of the whole deployment, read from the database and the broker when Prometheus
  scrapes (:class:`DeploymentCollector`), so every web process answers the same figures whoever
  ran the work: jobs queued and running per kind, jobs finished in the last hour per kind and
  status with their durations, lease expiries, the depth of each Celery queue, the workers' last
  heartbeats, and each institution's live model quality (labelled with the institution's slug;
  no student figure is ever a label or a value).

The endpoint answers only a request that carries ``Authorization: Bearer <METRICS_TOKEN>``; with
no ``METRICS_TOKEN`` set it does not exist (404).
"""

from __future__ import annotations

import hmac
import logging
import os
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F, Max, Sum
from django.http import Http404, HttpResponse
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

from institutions.models import ACTIVE_JOB_STATUSES, Job, JobStatus, WorkerHeartbeat
from predictions.models import ModelStatus, ModelVersion

from .health import redis_client

logger = logging.getLogger(__name__)

QUEUES_SETTING = "CELERY_MONITORED_QUEUES"


def monitored_queues() -> list[str]:
    """The Celery queues whose depth is reported: the default queue and any named in the setting."""
    names = [settings.CELERY_TASK_DEFAULT_QUEUE, *getattr(settings, QUEUES_SETTING, [])]
    return list(dict.fromkeys(names))


def queue_depths() -> dict[str, int | None]:
    """Messages waiting per queue (``None``: the broker could not be asked)."""
    broker = settings.CELERY_BROKER_URL
    depths: dict[str, int | None] = {}
    if broker.startswith("redis"):
        import redis

        try:
            pipe = redis_client(broker).pipeline()
            for name in monitored_queues():
                pipe.llen(name)
            return dict(zip(monitored_queues(), pipe.execute(), strict=True))
        except redis.RedisError:
            return dict.fromkeys(monitored_queues())
    if broker.startswith("filesystem"):
        folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("data_folder_in", ""))
        try:
            files = [entry.name for entry in os.scandir(folder)] if folder else []
        except OSError:
            return dict.fromkeys(monitored_queues())
        for name in monitored_queues():  # kombu's file names end with the queue's name
            depths[name] = sum(1 for file in files if file.endswith(f".{name}.msg"))
        return depths
    return dict.fromkeys(monitored_queues())


class DeploymentCollector(Collector):
    """Read at each scrape; a failing source is left out of that scrape (logged), never an error."""

    def collect(self):
        yield from self._jobs()
        yield from self._queues()
        yield from self._workers()
        yield from self._models()

    def _jobs(self):
        now = timezone.now()
        active = GaugeMetricFamily("dp_jobs", "Jobs queued or running, by kind and status", labels=["kind", "status"])
        finished = GaugeMetricFamily("dp_jobs_finished_last_hour", "Jobs finished in the last hour, by kind and status",
                                     labels=["kind", "status"])
        seconds = GaugeMetricFamily("dp_job_duration_seconds_last_hour",
                                    "Run time of the jobs that succeeded in the last hour (avg and max), by kind",
                                    labels=["kind", "stat"])
        expiries = GaugeMetricFamily("dp_job_lease_expiries_last_day",
                                     "Leases that ran out (a worker died or hung) on jobs created in the last day",
                                     labels=["kind"])
        jobs = Job.objects.unscoped()
        for row in jobs.filter(status__in=ACTIVE_JOB_STATUSES).values("kind", "status").annotate(n=Count("id")):
            active.add_metric([row["kind"], row["status"]], row["n"])
        recent = jobs.filter(finished_at__gte=now - timedelta(hours=1))
        for row in recent.values("kind", "status").annotate(n=Count("id")):
            finished.add_metric([row["kind"], row["status"]], row["n"])
        done = recent.filter(status=JobStatus.SUCCEEDED, started_at__isnull=False)
        took = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
        for row in done.values("kind").annotate(avg=Avg(took), mx=Max(took)):
            seconds.add_metric([row["kind"], "avg"], row["avg"].total_seconds())
            seconds.add_metric([row["kind"], "max"], row["mx"].total_seconds())
        lost = jobs.filter(created_at__gte=now - timedelta(days=1), lease_expiries__gt=0)
        for row in lost.values("kind").annotate(n=Sum("lease_expiries")):
            expiries.add_metric([row["kind"]], row["n"])
        yield from (active, finished, seconds, expiries)

    def _queues(self):
        depth = GaugeMetricFamily("dp_queue_depth", "Messages waiting in a Celery queue", labels=["queue"])
        for name, n in queue_depths().items():
            if n is not None:
                depth.add_metric([name], n)
        yield depth

    def _workers(self):
        age = GaugeMetricFamily("dp_worker_heartbeat_age_seconds",
                                "Seconds since each worker last took the heartbeat task", labels=["worker"])
        now = timezone.now()
        for beat in WorkerHeartbeat.objects.all()[:200]:
            age.add_metric([beat.worker], max(0.0, (now - beat.seen_at).total_seconds()))
        yield age

    def _models(self):
        quality = GaugeMetricFamily("dp_model_quality", "Cross-validated quality of each institution's live model",
                                    labels=["institution", "metric"])
        live = ModelVersion.objects.unscoped().filter(status=ModelStatus.LIVE).select_related("institution")
        for version in live.only("metrics", "institution__slug")[:1000]:
            for metric, value in sorted((version.metrics or {}).items()):
                if isinstance(value, int | float) and not isinstance(value, bool) and metric in MODEL_METRICS:
                    quality.add_metric([version.institution.slug, metric], float(value))
        yield quality


MODEL_METRICS = {"roc_auc", "pr_auc", "brier", "ece", "log_loss"}  # ml.evaluation.SUMMARY_METRICS


_collector_registered = False


def _registry() -> CollectorRegistry:
    global _collector_registered
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(DeploymentCollector())
        return registry
    if not _collector_registered:
        REGISTRY.register(DeploymentCollector())
        _collector_registered = True
    return REGISTRY


def metrics_view(request) -> HttpResponse:
    token = settings.METRICS_TOKEN
    if not token:
        raise Http404("metrics are switched off (METRICS_TOKEN is not set)")
    offered = request.headers.get("Authorization", "")
    if not hmac.compare_digest(offered.encode(), f"Bearer {token}".encode()):
        response = HttpResponse("a metrics token is required\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        response._has_been_logged = True
        return response
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
