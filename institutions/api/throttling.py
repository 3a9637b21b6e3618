"""Per-key rate limits: each API key has its own requests-per-minute (``ApiKey.rate_per_minute``).

A fixed one-minute window counted with the cache's atomic ``incr`` (Redis when ``REDIS_URL`` is
set, so every web worker shares the count): one cache round trip per request, whatever the
rate, and none of its own when authentication already counted the request in the round trip
that checked a kept key (``institutions.api_keys``). Over the limit the API answers 429 with
``Retry-After`` = seconds until the window ends (see institutions.api.errors). Session users
(the browser UI) are not limited here.

When Redis is configured but unreachable the count falls back to this web process alone (an
in-memory counter per process): each process then allows a key its full rate, so with N web
processes a key may make up to N times its rate until Redis is back. Requests keep being
answered; one warning is logged per outage (institutions.shared_redis).
"""

from __future__ import annotations

import time

from django.core.cache import cache
from django.core.cache.backends.locmem import LocMemCache
from redis.exceptions import RedisError
from rest_framework.throttling import BaseThrottle

from ..api_keys import RATE_WINDOW_SECONDS, rate_counter_name, rate_window
from ..shared_redis import redis_answered, redis_backing_off, redis_failed, shared_redis

# This process's own counts, used only while Redis is unreachable.
_process_counts = LocMemCache(
    "api-rate-fallback", {"TIMEOUT": 2 * RATE_WINDOW_SECONDS, "OPTIONS": {"MAX_ENTRIES": 100_000}}
)


class ApiKeyRateThrottle(BaseThrottle):
    def allow_request(self, request, view) -> bool:
        api_key = request.auth if getattr(request.auth, "is_api_key", False) else None
        if api_key is None:
            return True
        now = time.time()
        window = rate_window(now)
        counted = getattr(api_key, "counted_window", None)  # counted while authenticating (api_keys)
        if counted is not None and counted[0] == window:
            count = counted[1]
        else:
            count = _count(rate_counter_name(api_key, window))
        self._wait = (window + 1) * RATE_WINDOW_SECONDS - now
        return count <= api_key.rate_per_minute

    def wait(self) -> float:
        return self._wait


def _count(key: str) -> int:
    """Increment the window's counter; on Redis one INCR per request, and an EXPIRE with the
    window's first request (the key names its window, so a counter whose EXPIRE was lost, e.g. to
    a crash in between, is never counted again: it only lingers)."""
    shared = shared_redis()
    if shared is None:
        return _count_in(cache, key)
    if redis_backing_off():
        return _count_in(_process_counts, key)
    client, make_key = shared
    full_key = make_key(key)
    try:
        count = int(client.incr(full_key))
        if count == 1:
            client.expire(full_key, 2 * RATE_WINDOW_SECONDS)
    except RedisError as exc:
        redis_failed(exc)
        return _count_in(_process_counts, key)
    redis_answered()
    return count


def _count_in(counts, key: str) -> int:
    counts.add(key, 0, timeout=2 * RATE_WINDOW_SECONDS)
    try:
        return counts.incr(key)
    except ValueError:  # expired between add and incr
        counts.set(key, 1, timeout=2 * RATE_WINDOW_SECONDS)
        return 1
