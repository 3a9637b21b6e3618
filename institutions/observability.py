"""What an operator sees of a running deployment (docs/operations.md, "Logs, metrics and health").

- **Log context**: every log record carries the request's id, the institution's slug (the
  current :func:`institutions.scoping.institution_scope`), the job's id and the Celery task's id,
  whether it is written as plain text or as JSON (``LOG_FORMAT=json``). Nothing else is added: a
  log line never carries a student's name, email or feature values, because nothing here puts
  them there and the code logs ids only (a test reads the logs of a full import and rescore).
- **Request id**: :class:`RequestContextMiddleware` takes a well-formed ``X-Request-ID`` from the
  proxy or makes one, and answers it in the response's ``X-Request-ID``.
- **Request metrics**: the same middleware counts requests and times them per route pattern
  (``/i/<slug:institution_slug>/students/<int:pk>/``, never the path with its ids) for
  ``/metrics`` (:mod:`institutions.metrics`).
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
import uuid
from collections.abc import Iterator
from contextvars import ContextVar

from django.utils.log import log_response
from prometheus_client import Counter, Histogram, disable_created_metrics
from pythonjsonlogger.json import JsonFormatter

disable_created_metrics()  # no *_created series: Prometheus does not use them and they double the output


_request_id: ContextVar[str] = ContextVar("dp_request_id", default="")
_job_id: ContextVar[str] = ContextVar("dp_job_id", default="")

# What a proxy's id may look like: a UUID, or any short token of safe characters.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def current_request_id() -> str:
    return _request_id.get()


def current_log_context() -> dict[str, str]:
    """What the log lines of this moment carry: request id, institution slug, job and task ids."""
    institution = _current_institution()
    return {"request_id": _request_id.get(), "institution": institution.slug if institution is not None else "",
            "job_id": _job_id.get(), "task_id": _task_id()}


@contextlib.contextmanager
def job_log_context(job_id: int | str) -> Iterator[None]:
    """Every record logged inside names ``job_id`` (a job task's body runs inside)."""
    token = _job_id.set(str(job_id))
    try:
        yield
    finally:
        _job_id.reset(token)


def _task_id() -> str:
    try:
        from celery import current_task
    except ImportError:  # pragma: no cover - celery is a dependency
        return ""
    request = getattr(current_task, "request", None)
    return (getattr(request, "id", None) or "") if current_task else ""


class LogContextFilter(logging.Filter):
    """Adds ``request_id``, ``institution`` (slug), ``job_id`` and ``task_id`` to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        institution = _current_institution()
        record.request_id = _request_id.get()
        record.institution = institution.slug if institution is not None else ""
        record.job_id = _job_id.get()
        record.task_id = _task_id()
        # The plain format's tail: only what is set, e.g. " [institution=demo job=12]".
        parts = [f"{name}={value}" for name, value in (("institution", record.institution),
                                                      ("request", record.request_id), ("job", record.job_id),
                                                      ("task", record.task_id)) if value]
        record.context = f" [{' '.join(parts)}]" if parts else ""
        return True


def _current_institution():
    # Imported when first needed: logging is configured before Django's apps are loaded.
    try:
        from .scoping import current_institution
    except Exception:
        return None
    return current_institution()


class JsonLogFormatter(JsonFormatter):
    """One JSON object per line: time, level, logger, message, the context above, and the
    exception's traceback when there is one (``exc_info``)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("rename_fields", {"asctime": "time", "levelname": "level", "name": "logger"})
        kwargs.setdefault("timestamp", False)
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(institution)s %(job_id)s %(task_id)s",
            *args, **kwargs,
        )


REQUESTS = Counter("dp_http_requests_total", "HTTP requests answered, by method, route pattern and status class",
                   ["method", "route", "status"])
REQUEST_SECONDS = Histogram(
    "dp_http_request_duration_seconds", "Time to answer an HTTP request, by route pattern", ["route"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)


def _route(request) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "unmatched"
    return "/" + (match.route or "").lstrip("^")


class RequestContextMiddleware:
    """First in the chain: the request id for the logs and the response, and the request metrics."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        offered = request.headers.get("X-Request-ID", "")
        request_id = offered if _REQUEST_ID.match(offered) else uuid.uuid4().hex
        request.request_id = request_id
        token = _request_id.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            if response.status_code >= 400:
                # As Django's handler would after this middleware returns, but while the request's
                # id is still set, so that "Not Found: /path" names its request.
                log_response("%s: %s", response.reason_phrase, request.path, response=response, request=request)
        finally:
            _request_id.reset(token)
        route = _route(request)
        REQUESTS.labels(request.method if request.method in _METHODS else "other", route,
                        f"{response.status_code // 100}xx").inc()
        REQUEST_SECONDS.labels(route).observe(time.perf_counter() - started)
        response["X-Request-ID"] = request_id
        return response


_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
