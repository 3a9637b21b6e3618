"""The Redis client behind Django's default cache, for counters every web process shares.

Django's cache API serialises values with pickle (only plain integers are stored raw); counters
read through this client are only ever parsed as integers, so nothing read back is unpickled.

Redis is a help here, never a requirement: when it is unreachable, callers fall back to what one
process can do alone (per-process rate counts, no kept API keys) and the request is answered.
The first failure logs one warning and starts a short back-off (``REDIS_RETRY_SECONDS``) during
which nobody tries Redis, so an outage costs one connection attempt per process every few
seconds, not one per request; the first success afterwards logs that Redis is back.
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

_state_lock = threading.Lock()
_down_since: float | None = None  # monotonic time of the first failure of the current outage
_retry_at = 0.0  # monotonic time before which Redis is not tried again


def shared_redis():
    """``(client, make_key)`` when the default cache is Redis (``REDIS_URL``), else None.

    ``make_key`` turns a name into the cache's full key (with its prefix and version). Django
    builds a new ``redis.Redis`` object (and its response-callback table) on every
    ``get_client()``; the client is thread-safe and bound to the backend's pool, so one is kept.
    A configured Redis is returned even while it is down: callers ask :func:`redis_backing_off`.
    """
    backend = getattr(cache, "_cache", None)
    if not hasattr(backend, "get_client"):  # django.core.cache.backends.redis.RedisCache
        return None
    client = backend.__dict__.get("_shared_client")
    if client is None:
        client = backend._shared_client = backend.get_client(None, write=True)
    return client, cache.make_and_validate_key


def redis_backing_off() -> bool:
    """True while a recent failure says not to try Redis yet."""
    return _down_since is not None and time.monotonic() < _retry_at


def redis_failed(exc: BaseException) -> None:
    """Record that Redis could not be reached; warns once per outage, not once per request."""
    global _down_since, _retry_at
    with _state_lock:
        first = _down_since is None
        now = time.monotonic()
        if first:
            _down_since = now
        _retry_at = now + getattr(settings, "REDIS_RETRY_SECONDS", 5.0)
    if first:
        logger.warning(
            "Redis is unreachable (%s): API rate limits count per web process and API keys are read "
            "from the database until it is back", exc,
        )


def redis_answered() -> None:
    """Record a successful round trip; logs once when an outage ends."""
    global _down_since
    if _down_since is None:
        return
    with _state_lock:
        if _down_since is None:
            return
        lasted = time.monotonic() - _down_since
        _down_since = None
    logger.warning("Redis is reachable again after %.0f s: API rate limits are shared again", lasted)
