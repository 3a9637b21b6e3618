"""Per-key rate limits: each API key has its own requests-per-minute (``ApiKey.rate_per_minute``).

Counted in the Django cache (Redis when ``REDIS_URL`` is set, so every web worker shares the
count). Over the limit the API answers 429 with ``Retry-After`` (see dropout_platform.api_errors).
Session users (the browser UI) are not limited here.
"""

from __future__ import annotations

from rest_framework.throttling import SimpleRateThrottle


class ApiKeyRateThrottle(SimpleRateThrottle):
    rate = "600/min"  # replaced by the key's own rate in allow_request

    def allow_request(self, request, view):
        api_key = request.auth if getattr(request.auth, "is_api_key", False) else None
        if api_key is None:
            return True
        self.num_requests, self.duration = api_key.rate_per_minute, 60
        return super().allow_request(request, view)

    def get_cache_key(self, request, view):
        # The prefix is random per key, so counts never carry over to a re-used database id.
        return f"throttle:apikey:{request.auth.pk}:{request.auth.prefix}"
