"""Celery application.

Configured from Django settings (the ``CELERY_`` namespace). Without ``REDIS_URL`` the broker is
a folder under ``var/`` (kombu's filesystem transport), so the demo's worker needs nothing installed.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dropout_platform.settings")

app = Celery("dropout_platform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
