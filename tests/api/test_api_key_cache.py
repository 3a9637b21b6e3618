"""Web processes reuse a key they authenticated while nothing about any key changed (a change
counter in Redis), and every change is seen on the next request: by this process at once, by
the others through the counter."""

from __future__ import annotations

import os
import time
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from institutions.api_keys import (
    _recent_keys,
    api_key_authenticate,
    api_key_revoke,
    rate_counter_name,
    rate_window,
)
from institutions.models import ApiKey
from institutions.shared_redis import shared_redis

pytestmark = pytest.mark.django_db


@pytest.fixture
def redis_counter():
    """The shared change counter (this needs the Redis cache, as every multi-process deployment has)."""
    shared = shared_redis()
    if shared is None:
        pytest.skip("needs REDIS_URL: without a shared cache no process keeps keys")
    client, make_key = shared
    return client, make_key(_recent_keys.COUNTER)


def students_url(tenant, pk=None):
    slug = tenant.institution.slug
    return reverse("api-student-list", args=[slug]) if pk is None else reverse("api-student-detail", args=[slug, pk])


def reads_key_row(tenant, client) -> bool:
    """Whether a request read the key's row from the database."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(students_url(tenant, tenant.students[0].pk))
    assert response.status_code in (200, 401)
    return any("institutions_apikey" in q["sql"] and q["sql"].startswith("SELECT") for q in queries.captured_queries)


def test_a_key_is_read_from_the_database_once_then_reused_while_nothing_changed(
    redis_counter, tenant_a, make_key, key_client
):
    _key, raw = make_key(tenant_a)
    client = key_client(raw)
    assert reads_key_row(tenant_a, client) is True
    assert reads_key_row(tenant_a, client) is False
    assert client.get(students_url(tenant_a, tenant_a.students[0].pk)).status_code == 200


def test_a_change_another_process_committed_is_seen_on_the_next_request(redis_counter, tenant_a, make_key,
                                                                         key_client):
    api_key, raw = make_key(tenant_a)
    client = key_client(raw)
    assert client.get(students_url(tenant_a)).status_code == 200
    # Another process revokes the key: its row changes, and its commit bumps the shared counter.
    ApiKey.objects.for_institution(tenant_a.institution).filter(pk=api_key.pk).update(revoked_at=timezone.now())
    redis, counter = redis_counter
    redis.incr(counter)
    response = client.get(students_url(tenant_a))
    assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Bearer")


def test_revoking_bumps_the_shared_counter_when_it_commits(redis_counter, tenant_a, make_key, key_client,
                                                          django_capture_on_commit_callbacks):
    api_key, raw = make_key(tenant_a)
    client = key_client(raw)
    assert client.get(students_url(tenant_a)).status_code == 200
    redis, counter = redis_counter
    before = int(redis.get(counter) or 0)
    with django_capture_on_commit_callbacks(execute=True):
        api_key_revoke(institution=tenant_a.institution, api_key=api_key)
    assert int(redis.get(counter) or 0) > before
    assert client.get(students_url(tenant_a)).status_code == 401  # and this process forgot it at once


def test_a_reused_key_still_expires_on_time(redis_counter, tenant_a, make_key, key_client):
    _key, raw = make_key(tenant_a, expires_at=timezone.now() + timedelta(seconds=1))
    client = key_client(raw)
    assert client.get(students_url(tenant_a)).status_code == 200
    assert reads_key_row(tenant_a, client) is False  # reused
    time.sleep(1.1)
    assert client.get(students_url(tenant_a)).status_code == 401


def test_a_reused_key_still_gets_404_on_another_institutions_urls(redis_counter, tenants, make_key, key_client):
    a, b = tenants
    _key, raw = make_key(a)
    client = key_client(raw)
    assert client.get(students_url(a)).status_code == 200
    assert client.get(students_url(b)).status_code == 404
    assert client.get(students_url(b, b.students[0].pk)).status_code == 404


def test_a_wrong_secret_for_a_reused_prefix_is_refused(redis_counter, tenant_a, make_key, key_client):
    _key, raw = make_key(tenant_a)
    assert key_client(raw).get(students_url(tenant_a)).status_code == 200
    forged = raw[:-4] + ("AAAA" if not raw.endswith("AAAA") else "BBBB")
    assert key_client(forged).get(students_url(tenant_a)).status_code == 401


def test_each_request_gets_its_own_copies(redis_counter, tenant_a, make_key):
    _key, raw = make_key(tenant_a)
    first, second = api_key_authenticate(raw_key=raw), api_key_authenticate(raw_key=raw)
    assert first.pk == second.pk and first is not second
    assert first.service_user is not second.service_user and first.institution is not second.institution
    first.service_user.first_name = "changed by one request"
    assert api_key_authenticate(raw_key=raw).service_user.first_name != "changed by one request"


def test_a_kept_key_older_than_the_longest_age_is_read_again(redis_counter, tenant_a, make_key, key_client,
                                                             monkeypatch):
    _key, raw = make_key(tenant_a)
    client = key_client(raw)
    assert reads_key_row(tenant_a, client) is True
    monkeypatch.setattr(type(_recent_keys), "MAX_AGE_SECONDS", 0.0)
    assert reads_key_row(tenant_a, client) is True


def test_without_a_shared_cache_every_request_reads_the_key(tenant_a, make_key, key_client, settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    _key, raw = make_key(tenant_a)
    client = key_client(raw)
    assert reads_key_row(tenant_a, client) is True
    assert reads_key_row(tenant_a, client) is True


def test_each_request_with_a_kept_key_counts_once_against_its_rate(redis_counter, tenant_a, make_key, key_client):
    # Authentication counts a kept key's request in the round trip that checks it; the throttle
    # must then not count it again (nor miss it).
    if time.time() % 60 > 55:
        time.sleep(6)  # stay inside one rate window
    api_key, raw = make_key(tenant_a, rate_per_minute=4)
    client = key_client(raw)
    statuses = [client.get(students_url(tenant_a)).status_code for _ in range(6)]
    assert statuses == [200, 200, 200, 200, 429, 429]
    redis, _counter = redis_counter
    window = rate_window(time.time())
    assert int(redis.get(cache.make_and_validate_key(rate_counter_name(api_key, window)))) == 6


def test_kept_keys_are_read_again_when_redis_lost_the_counter(redis_counter, tenant_a, make_key, key_client):
    # After a Redis restart the counter is gone; starting it again must not vouch for kept keys.
    _key, raw = make_key(tenant_a)
    client = key_client(raw)
    assert reads_key_row(tenant_a, client) is True
    assert reads_key_row(tenant_a, client) is False
    redis, counter = redis_counter
    redis.delete(counter)
    assert reads_key_row(tenant_a, client) is True
    assert reads_key_row(tenant_a, client) is False


def test_every_process_reports_changes_to_keys_institutions_and_users_without_importing_the_api():
    # A Celery worker or a management command that renames an institution or deactivates a user
    # must bump the counter too, although it never authenticates a key itself.
    import subprocess
    import sys

    probe = (
        "import django; django.setup()\n"
        "from django.contrib.auth import get_user_model\n"
        "from django.db.models.signals import post_delete, post_save\n"
        "from institutions.models import ApiKey, Institution\n"
        "print(all(any(getattr(r, '__self__', None).__class__.__name__ == '_RecentKeys'\n"
        "              for r in signal._live_receivers(m)[0])\n"
        "          for m in (ApiKey, Institution, get_user_model()) for signal in (post_save, post_delete)))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "DJANGO_SETTINGS_MODULE": "dropout_platform.settings_test"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "True"
