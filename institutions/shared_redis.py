"""The Redis client behind Django's default cache, for counters every web process shares.

Django's cache API serialises values with pickle (only plain integers are stored raw); counters
read through this client are only ever parsed as integers, so nothing read back is unpickled.
"""

from __future__ import annotations

from django.core.cache import cache


def shared_redis():
    """``(client, make_key)`` when the default cache is Redis (``REDIS_URL``), else None.

    ``make_key`` turns a name into the cache's full key (with its prefix and version). Django
    builds a new ``redis.Redis`` object (and its response-callback table) on every
    ``get_client()``; the client is thread-safe and bound to the backend's pool, so one is kept.
    """
    backend = getattr(cache, "_cache", None)
    if not hasattr(backend, "get_client"):  # django.core.cache.backends.redis.RedisCache
        return None
    client = backend.__dict__.get("_shared_client")
    if client is None:
        client = backend._shared_client = backend.get_client(None, write=True)
    return client, cache.make_and_validate_key
