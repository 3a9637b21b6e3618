"""The API while Redis or PostgreSQL is down (issue 17, item 5).

Each Redis test runs a redis-server of its own on a free port and stops and starts it: the shared
Redis is never touched. The database outage is a real one: the test's connection is terminated by
the server (pg_terminate_backend, what a restart or failover does to every open connection).
"""

from __future__ import annotations

import logging
import shutil
import time

import pytest
import redis
from django.db import connection
from django.test import override_settings

from institutions import shared_redis
from institutions.jobs import job_dispatch_pending
from institutions.models import Job, JobStatus
from tests.servers import running_redis

# Redis and PostgreSQL going away under the API: part of the fault suite (`pytest -m faults`).
pytestmark = [pytest.mark.faults,
              pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server on PATH")]


@pytest.fixture
def own_redis():
    with running_redis() as server:
        yield server


@pytest.fixture(autouse=True)
def fresh_redis_state():
    shared_redis._down_since = None
    shared_redis._retry_at = 0.0
    yield
    shared_redis._down_since = None
    shared_redis._retry_at = 0.0


def _redis_cache(url: str) -> dict:
    return {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url,
                        "KEY_PREFIX": "resilience-test",
                        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}}}


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "institutions.shared_redis"]


def test_api_keys_keep_working_while_redis_is_down_with_one_warning_and_a_per_process_limit(
    own_redis, tenant_a, tenant_b, make_key, key_client, caplog,
):
    _, raw_a = make_key(tenant_a, rate_per_minute=6)
    _, raw_b = make_key(tenant_b, rate_per_minute=100)
    api_a, api_b = key_client(raw_a), key_client(raw_b)
    caplog.set_level(logging.WARNING, logger="institutions.shared_redis")
    with override_settings(CACHES=_redis_cache(own_redis.url), REDIS_RETRY_SECONDS=0.0):
        assert api_a.get("/api/v1/institutions/alpha/students/").status_code == 200  # counted in Redis
        assert api_a.get("/api/v1/institutions/alpha/students/").status_code == 200  # a kept key
        own_redis.stop()
        answers = [api_a.get("/api/v1/institutions/alpha/students/") for _ in range(4)]
        assert [r.status_code for r in answers] == [200, 200, 200, 200]
        # The per-process count is this process's own: the key's rate still holds (6 a minute).
        over = [api_a.get("/api/v1/institutions/alpha/students/").status_code for _ in range(4)]
        assert 429 in over and over[-1] == 429
        # Another institution's key is counted apart, and cannot read A's students.
        assert api_b.get("/api/v1/institutions/beta/students/").status_code == 200
        assert api_b.get("/api/v1/institutions/alpha/students/").status_code == 404
        assert len(_warnings(caplog)) == 1 and "unreachable" in _warnings(caplog)[0]

        own_redis.start()  # back, empty (no persistence)
        caplog.clear()
        assert api_b.get("/api/v1/institutions/beta/students/").status_code == 200
        assert any("reachable again" in m for m in _warnings(caplog))
        counted = redis.Redis.from_url(own_redis.url).keys("resilience-test:*throttle*")
        assert counted, "once Redis is back the counts are shared again"


def test_while_redis_is_down_each_request_does_not_wait_for_it(own_redis, tenant_a, make_key, key_client):
    _, raw = make_key(tenant_a, rate_per_minute=1000)
    api = key_client(raw)
    with override_settings(CACHES=_redis_cache(own_redis.url)):  # default back-off: 5 s
        api.get("/api/v1/institutions/alpha/students/")
        own_redis.stop()
        assert api.get("/api/v1/institutions/alpha/students/").status_code == 200  # finds it down
        assert shared_redis.redis_backing_off()
        started = time.monotonic()
        for _ in range(10):
            assert api.get("/api/v1/institutions/alpha/students/").status_code == 200
        assert time.monotonic() - started < 5  # no connection attempt per request


@pytest.fixture
def broker_on(own_redis):
    """Celery sends to the test's own Redis (not in-process), on a queue of this test's own."""
    from dropout_platform.celery import app

    saved = (app.conf.task_always_eager, app.conf.broker_url, app.conf.task_default_queue, app._pool)
    app.conf.task_always_eager = False
    app.conf.broker_url = own_redis.url
    app.conf.task_default_queue = f"resilience-{own_redis.port}"
    app._pool = None
    app.amqp._producer_pool = None
    try:
        yield app.conf.task_default_queue
    finally:
        (app.conf.task_always_eager, app.conf.broker_url, app.conf.task_default_queue, app._pool) = saved
        app.amqp._producer_pool = None


@pytest.mark.django_db(transaction=True)  # as in production: the request commits, then the job is sent
def test_a_retrain_requested_while_redis_is_down_answers_202_and_is_sent_when_redis_returns(
    own_redis, broker_on, tenant_a, tenant_b, make_key, key_client,
):
    _, raw = make_key(tenant_a, rate_per_minute=100)
    api = key_client(raw)
    with override_settings(CACHES=_redis_cache(own_redis.url)):
        own_redis.stop()  # cache (rate limits, kept keys) and broker down together
        response = api.post("/api/v1/institutions/alpha/model-versions/retrain/")
        assert response.status_code == 202, response.content
        job = Job.objects.for_institution(tenant_a.institution).get(pk=response.json()["id"])
        assert job.status == JobStatus.QUEUED and job.dispatched_at is None
        assert "Could not reach the task queue" in job.dispatch_error
        polled = api.get(response["Location"])
        assert polled.status_code == 200 and "Could not reach the task queue" in polled.json()["dispatch_error"]

        own_redis.start()
        assert job_dispatch_pending() == 1  # what beat (every minute) and a starting worker run
    job.refresh_from_db()
    assert job.dispatched_at is not None and job.dispatch_error == ""
    assert redis.Redis.from_url(own_redis.url).llen(broker_on) == 1  # the message waits for a worker
    assert not Job.objects.for_institution(tenant_b.institution).exists()


def _terminate_my_connection() -> None:
    """What a PostgreSQL restart does to this process's connection."""
    pid = connection.connection.info.backend_pid
    import psycopg2

    params = connection.get_connection_params()
    other = psycopg2.connect(**params)
    other.autocommit = True
    with other.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    other.close()


@pytest.mark.django_db(transaction=True)
def test_a_database_outage_answers_the_json_error_body_with_503_and_retry_after(tenant_a, tenant_b, make_key,
                                                                                key_client):
    _, raw = make_key(tenant_a)
    api = key_client(raw)
    assert api.get("/api/v1/institutions/alpha/students/").status_code == 200
    _terminate_my_connection()
    response = api.get("/api/v1/institutions/alpha/students/")
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "database_unavailable" and response.json()["errors"] == {}
    assert int(response["Retry-After"]) > 0
    connection.close()  # what Django does at the end of a request whose connection broke
    assert api.get("/api/v1/institutions/alpha/students/").status_code == 200  # back by itself
    assert api.get("/api/v1/institutions/beta/students/").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_a_database_outage_during_a_write_answers_503_and_writes_nothing(tenant_a, tenant_b, make_key, key_client):
    _, raw = make_key(tenant_a)
    api = key_client(raw)
    api.get("/api/v1/institutions/alpha/students/")
    _terminate_my_connection()
    response = api.post("/api/v1/institutions/alpha/model-versions/retrain/")
    assert response.status_code == 503 and response.json()["code"] == "database_unavailable"
    connection.close()
    assert not Job.objects.unscoped().exists()


def test_without_redis_configured_the_process_cache_counts(tenant_a, make_key, key_client):
    _, raw = make_key(tenant_a, rate_per_minute=2)
    api = key_client(raw)
    with override_settings(CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}):
        assert [api.get("/api/v1/institutions/alpha/students/").status_code for _ in range(3)] == [200, 200, 429]
    assert not shared_redis.redis_backing_off()
