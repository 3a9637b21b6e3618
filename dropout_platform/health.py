"""Health endpoints for load balancers and orchestrators (docs/operations.md, "Logs, metrics and health").

- ``/healthz`` (liveness): the process answers. It touches nothing else, so a database outage
  never gets healthy web processes restarted.
- ``/readyz`` (readiness): PostgreSQL answers a query, Redis answers a ping (where REDIS_URL is
  set; otherwise the filesystem broker's folder is writable), and a worker took the heartbeat
  task within WORKER_HEARTBEAT_STALE_SECONDS (``READY_REQUIRES_WORKER=0`` reports the worker
  without failing on it). 200 when all pass, 503 otherwise, with one line per check. The answer
  names no host, password or institution.

Both, and ``/metrics``, are answered by :class:`OperatorEndpointsMiddleware` ahead of the host
check: a load balancer or Prometheus asks by the machine's address, which ALLOWED_HOSTS does not
list, and must not be refused with 400 for it.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache

from institutions.models import WorkerHeartbeat


@never_cache
def liveness(request) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _database() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        return False, f"PostgreSQL did not answer ({exc.__class__.__name__})"
    return True, "PostgreSQL answers"


@functools.lru_cache(maxsize=4)
def redis_client(url: str):
    """One client (and connection pool) per URL for the probes and the scrapes, short timeouts:
    a Redis that is down costs a probe half a second, and a healthy one no new connection."""
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)


def _broker() -> tuple[bool, str]:
    if settings.REDIS_URL:
        import redis

        try:
            redis_client(settings.REDIS_URL).ping()
        except redis.RedisError as exc:
            return False, f"Redis did not answer ({exc.__class__.__name__})"
        return True, "Redis answers"
    folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("data_folder_in", ""))
    if folder and folder.is_dir() and os.access(folder, os.W_OK):
        return True, "the filesystem broker's folder is writable"
    return False, "the filesystem broker's folder is missing or not writable"


def _worker() -> tuple[bool, str]:
    try:
        latest = WorkerHeartbeat.objects.order_by("-seen_at").first()
    except DatabaseError:
        return False, "the workers' heartbeats could not be read"
    if latest is None:
        return False, "no worker has taken the heartbeat task yet"
    age = (timezone.now() - latest.seen_at).total_seconds()
    if age > settings.WORKER_HEARTBEAT_STALE_SECONDS:
        return False, f"no worker has taken the heartbeat task for {age:.0f} s"
    return True, f"a worker took the heartbeat task {age:.0f} s ago"


@never_cache
def readiness(request) -> JsonResponse:
    checks = {"database": _database(), "broker": _broker(), "worker": _worker()}
    required = {"database", "broker"} | ({"worker"} if settings.READY_REQUIRES_WORKER else set())
    ready = all(ok for name, (ok, _) in checks.items() if name in required)
    body = {"status": "ready" if ready else "not ready",
            "checks": {name: {"ok": ok, "detail": detail, "required": name in required}
                       for name, (ok, detail) in checks.items()}}
    response = JsonResponse(body, status=200 if ready else 503)
    response._has_been_logged = True  # a probe every few seconds: the body says why, the log need not
    return response


class OperatorEndpointsMiddleware:
    """First in the chain (before the host check, sessions and sign-in): ``/healthz``,
    ``/readyz`` and ``/metrics`` answer by their path alone, for GET and HEAD."""

    def __init__(self, get_response):
        from .metrics import metrics_view

        self.get_response = get_response
        self.views = {"/healthz": liveness, "/readyz": readiness, "/metrics": metrics_view}

    def __call__(self, request):
        view = self.views.get(request.path_info)
        if view is None or request.method not in {"GET", "HEAD"}:
            return self.get_response(request)
        return view(request)
