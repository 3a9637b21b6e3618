"""Test settings: the production settings with a test secret and a fast password hasher.

``DATABASE_URL`` and ``REDIS_URL`` are honoured: without them the suite runs on the embedded
PostgreSQL server (var/postgres) and its worker tests use the filesystem broker; CI points both at
the system PostgreSQL and Redis. Tasks run in-process unless a test asks for the real worker.
"""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
os.environ.setdefault("DJANGO_SECURE_COOKIES", "0")
# Webhook tests post to a receiver on 127.0.0.1.
os.environ.setdefault("WEBHOOK_ALLOW_HTTP_LOOPBACK", "1")
os.environ.setdefault("WEBHOOK_ALLOW_PRIVATE_TARGETS", "1")
# The OIDC provider of the SSO tests (tests/peers/oidc_provider) serves plain http on 127.0.0.1.
os.environ.setdefault("SSO_ALLOW_HTTP_ISSUERS", "1")

from .settings import *  # noqa: F403
from .settings import MEDIA_ROOT

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MEDIA_ROOT = MEDIA_ROOT.parent / "test-media"
# Tests marked "worker" switch to the real broker and a real worker process. A worker whose tasks
# send tasks themselves (a retry) gets DP_TEST_TASKS_IN_PROCESS=0, so that those go through the
# broker too (tests/accounts/test_email_flows.py).
CELERY_TASK_ALWAYS_EAGER = os.environ.get("DP_TEST_TASKS_IN_PROCESS", "1") == "1"
# Two test runs at once on one server each need their own test database (default: test_<NAME>).
# Between transactional tests Django empties the test database with TRUNCATE; the access log's
# trigger lets TRUNCATE through only on a connection opened with this setting (never in production).
if DATABASE_POOL_MODE == "session":  # noqa: F405 - a pooler passes no startup options
    DATABASES["default"]["OPTIONS"]["options"] += " -c dropout.audit_test_flush=on"  # noqa: F405
if os.environ.get("TEST_DATABASE_NAME"):
    DATABASES["default"]["TEST"] = {"NAME": os.environ["TEST_DATABASE_NAME"]}  # noqa: F405
# Each access log entry written at once, so that a test's entries never outlive its database rows;
# tests/audit/test_batching.py turns the batch on, as production runs it.
AUDIT_BATCH_SIZE = 1
# Every task on the default queue, which the tests point at their own worker's queue; a test of
# the queues by kind names them (CELERY_KIND_QUEUES in the environment of its workers and itself).
CELERY_KIND_QUEUES = kind_queues_from(env_list("CELERY_KIND_QUEUES", default=[]))  # noqa: F405
CELERY_TASK_QUEUES = celery_queues(CELERY_TASK_DEFAULT_QUEUE, CELERY_KIND_QUEUES)  # noqa: F405
CELERY_MONITORED_QUEUES = list(CELERY_KIND_QUEUES.values())
