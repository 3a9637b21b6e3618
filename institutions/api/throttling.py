"""Per-key rate limits: each API key has its own requests-per-minute (``ApiKey.rate_per_minute``).

A fixed one-minute window counted with the cache's atomic ``incr`` (Redis when ``REDIS_URL`` is
set, so every web worker shares the count): one cache round trip per request, whatever the
rate. Over the limit the API answers 429 with ``Retry-After`` = seconds until the window ends
(see dropout_platform.api_errors). Session users (the browser UI) are not limited here.
"""

from __future__ import annotations

import time

from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

WINDOW_SECONDS = 60


class ApiKeyRateThrottle(BaseThrottle):
    def allow_request(self, request, view) -> bool:
        api_key = request.auth if getattr(request.auth, "is_api_key", False) else None
        if api_key is None:
            return True
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        # The prefix is random per key, so counts never carry over to a re-used database id.
        count = _count(f"throttle:apikey:{api_key.pk}:{api_key.prefix}:{window}")
        self._wait = (window + 1) * WINDOW_SECONDS - now
        return count <= api_key.rate_per_minute

    def wait(self) -> float:
        return self._wait


def _count(key: str) -> int:
    """Increment the window's counter; on Redis one INCR per request, and an EXPIRE with the
    window's first request (the key names its window, so a counter whose EXPIRE was lost, e.g. to
    a crash in between, is never counted again: it only lingers)."""
    backend = getattr(cache, "_cache", None)
    if hasattr(backend, "get_client"):  # django.core.cache.backends.redis.RedisCache
        full_key = cache.make_and_validate_key(key)
        # Django builds a new redis.Redis object (and its response-callback table) on every
        # get_client(); the client is thread-safe and bound to the backend's pool, so keep one.
        client = backend.__dict__.get("_throttle_client")
        if client is None:
            client = backend._throttle_client = backend.get_client(full_key, write=True)
        count = int(client.incr(full_key))
        if count == 1:
            client.expire(full_key, 2 * WINDOW_SECONDS)
        return count
    cache.add(key, 0, timeout=2 * WINDOW_SECONDS)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=2 * WINDOW_SECONDS)
        return 1
