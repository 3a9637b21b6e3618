"""Per-key rate limits: each API key has its own requests-per-minute (``ApiKey.rate_per_minute``).

A fixed one-minute window counted with the cache's atomic ``incr`` (Redis when ``REDIS_URL`` is
set, so every web worker shares the count): one cache round trip per request, whatever the
rate, and none of its own when authentication already counted the request in the round trip
that checked a kept key (``institutions.api_keys``). Over the limit the API answers 429 with
``Retry-After`` = seconds until the window ends (see institutions.api.errors). Session users
(the browser UI) are not limited here.
"""

from __future__ import annotations

import time

from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

from ..api_keys import RATE_WINDOW_SECONDS, rate_counter_name, rate_window
from ..shared_redis import shared_redis


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
    if shared is not None:
        client, make_key = shared
        full_key = make_key(key)
        count = int(client.incr(full_key))
        if count == 1:
            client.expire(full_key, 2 * RATE_WINDOW_SECONDS)
        return count
    cache.add(key, 0, timeout=2 * RATE_WINDOW_SECONDS)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=2 * RATE_WINDOW_SECONDS)
        return 1
