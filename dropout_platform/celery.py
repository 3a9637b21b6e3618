"""Celery application.

Configured from Django settings (the ``CELERY_`` namespace). Without ``REDIS_URL`` the settings
make every task run in-process (``task_always_eager``) so the demo needs nothing installed.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dropout_platform.settings")

app = Celery("dropout_platform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
