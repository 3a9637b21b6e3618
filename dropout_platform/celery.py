"""Celery application.

Configured from Django settings (the ``CELERY_`` namespace). Without ``REDIS_URL`` the broker is
a folder under ``var/`` (kombu's filesystem transport), so the demo's worker needs nothing installed.
"""

import os

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dropout_platform.settings")

# Which kind of work each task is (docs/operations.md, "Queues and worker pools"); the others run
# on the default queue (beat's periodic tasks, emails, retention, health checks).
TASK_KINDS = {
    "students.tasks.run_import": "imports",
    "students.tasks.recompute_activity_features": "imports",
    "predictions.tasks.retrain_model": "training",
    "predictions.tasks.rescore_students": "scoring",
    "predictions.tasks.rescore_chunks": "scoring",
    "institutions.tasks.deliver_webhook": "webhooks",
}


def route_by_kind(name, args, kwargs, options, task=None, **kw):
    """Celery router: a task of a kind goes to that kind's queue (CELERY_KIND_QUEUES); with no
    queue named for its kind, Celery's default routing applies (the default queue)."""
    from django.conf import settings

    queue = settings.CELERY_KIND_QUEUES.get(TASK_KINDS.get(name, ""))
    return {"queue": queue} if queue else None


app = Celery("dropout_platform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@after_setup_logger.connect
@after_setup_task_logger.connect
def _log_with_context(logger, *args, **kwargs):
    """A worker's log lines carry the same context as the web's (request, institution, job,
    task), and are JSON with LOG_FORMAT=json; Celery keeps its own handler and --loglevel."""
    from django.conf import settings

    from institutions.observability import JsonLogFormatter, LogContextFilter

    for handler in logger.handlers:
        handler.addFilter(LogContextFilter())
        if settings.LOG_FORMAT == "json":
            handler.setFormatter(JsonLogFormatter())
