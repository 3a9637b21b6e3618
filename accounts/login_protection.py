"""Login protection around django-axes: which address an attempt comes from, and lifting a lock."""

from axes.utils import reset as axes_reset
from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str:
    """REMOTE_ADDR, or behind ``LOGIN_TRUSTED_PROXY_COUNT`` proxies the address the outermost
    trusted proxy saw. Entries further left in X-Forwarded-For are the client's to invent, so
    they are never used: an attacker cannot get a fresh address per attempt by sending the header."""
    hops = settings.LOGIN_TRUSTED_PROXY_COUNT
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if hops > 0 and len(forwarded) >= hops:
        return forwarded[-hops]
    return request.META.get("REMOTE_ADDR", "")


def login_lockout_lift(*, username: str) -> int:
    """Forget the failed attempts for ``username`` (and so the lock they caused); returns how many."""
    return axes_reset(username=username)
