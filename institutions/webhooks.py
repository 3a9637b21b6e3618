"""Webhooks: institutions register endpoints; events are signed, delivered by Celery, and logged.

Other apps call :func:`webhook_emit` (predictions for ``student.flagged`` and
``student.risk_band_changed``; :mod:`institutions.jobs` for ``job.finished``). Each endpoint
subscribed to the event gets a :class:`WebhookDelivery` row, and a task posts it after the
surrounding transaction commits, retrying with exponential backoff until it gets a 2xx or runs
out of attempts. Every attempt is visible in the delivery log.

Signature (see docs/api.md): ``X-Dropout-Signature: v1=<hex>`` where ``<hex>`` is
HMAC-SHA256(endpoint secret, ``"<X-Dropout-Timestamp>.<raw body>"``). Receivers recompute it and
reject timestamps older than a few minutes, so a captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import secrets
import socket
import ssl
import time
import uuid
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from kombu.exceptions import OperationalError

from .models import DeliveryStatus, Institution, WebhookDelivery, WebhookEndpoint

logger = logging.getLogger(__name__)

WEBHOOK_EVENTS: dict[str, str] = {
    "student.flagged": _("A student was flagged for follow-up"),
    "student.risk_band_changed": _("A student's risk band changed after scoring"),
    "job.finished": _("An import, retrain or rescore job succeeded or failed"),
    "alert.created": _("An alert was raised about a student (by a progress survey or by staff) and routed"),
    "alert.closed": _("An alert was closed with an outcome"),
    "model.degraded": _("The live model's predictions, checked against the outcomes since, fell below the floor"),
}
PING_EVENT = "ping"
SIGNATURE_HEADER = "X-Dropout-Signature"
TIMESTAMP_HEADER = "X-Dropout-Timestamp"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
RESPONSE_BODY_LIMIT = 2000


class WebhookUrlInvalid(ValueError):
    pass


def _setting(name: str, default):
    return getattr(settings, name, default)


def validate_webhook_url(url: str) -> str:
    """HTTPS only; plain http just to this machine's loopback when allowed (tests, local debug)."""
    url = (url or "").strip()
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        raise WebhookUrlInvalid(gettext("enter a full URL, e.g. https://sis.example.edu/hooks/dropout")) from None
    parts = urlsplit(url)
    if parts.username or parts.password:
        raise WebhookUrlInvalid(gettext("the URL must not contain a user name or password"))
    if parts.scheme == "https":
        return url
    if parts.hostname in LOOPBACK_HOSTS and _setting("WEBHOOK_ALLOW_HTTP_LOOPBACK", settings.DEBUG):
        return url
    raise WebhookUrlInvalid(gettext("webhook URLs must use https://"))


def clean_events(events) -> list[str]:
    if not isinstance(events, list | tuple) or not events:
        raise ValueError("choose at least one event")
    unknown = sorted(set(events) - set(WEBHOOK_EVENTS))
    if unknown:
        raise ValueError(f"unknown events: {', '.join(unknown)}; valid: {', '.join(WEBHOOK_EVENTS)}")
    return [event for event in WEBHOOK_EVENTS if event in set(events)]


def _new_secret() -> str:
    return f"whsec_{secrets.token_urlsafe(32)}"


def webhook_endpoint_create(
    *, institution: Institution, url: str, events, description: str = "", created_by=None
) -> WebhookEndpoint:
    return WebhookEndpoint.objects.for_institution(institution).create(
        url=validate_webhook_url(url), events=clean_events(events), description=description.strip(),
        secret=_new_secret(), created_by=created_by,
    )


def webhook_endpoint_update(*, institution: Institution, endpoint: WebhookEndpoint, data: dict) -> WebhookEndpoint:
    if endpoint.institution_id != institution.pk:
        raise ValueError("endpoint belongs to another institution")
    if "url" in data:
        endpoint.url = validate_webhook_url(data["url"])
    if "events" in data:
        endpoint.events = clean_events(data["events"])
    if "description" in data:
        endpoint.description = data["description"].strip()
    if "is_active" in data:
        endpoint.is_active = bool(data["is_active"])
    endpoint.save()
    return endpoint


def webhook_endpoint_rotate_secret(*, institution: Institution, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    if endpoint.institution_id != institution.pk:
        raise ValueError("endpoint belongs to another institution")
    endpoint.secret = _new_secret()
    endpoint.save(update_fields=["secret", "updated_at"])
    return endpoint


def webhook_endpoint_delete(*, institution: Institution, endpoint: WebhookEndpoint) -> None:
    if endpoint.institution_id != institution.pk:
        raise ValueError("endpoint belongs to another institution")
    endpoint.delete()


def webhook_subscribed_events(*, institution: Institution) -> set[str]:
    """Events some active endpoint of the institution listens to: lets emitters skip work nobody wants."""
    events: set[str] = set()
    for subscribed in WebhookEndpoint.objects.for_institution(institution).filter(is_active=True).values_list(
        "events", flat=True
    ):
        events.update(subscribed)
    return events


def webhook_emit(*, institution: Institution, event: str, payload: dict) -> list[WebhookDelivery]:
    """Queue ``event`` for every active endpoint of the institution subscribed to it.

    Safe to call inside a transaction: deliveries are sent only after it commits, and vanish
    with it if it rolls back. Returns the delivery rows (empty when nobody listens).
    """
    if event not in WEBHOOK_EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    endpoints = [
        endpoint for endpoint in WebhookEndpoint.objects.for_institution(institution).filter(is_active=True)
        if event in endpoint.events
    ]
    return _queue(institution=institution, endpoints=endpoints, event=event, payload=payload)


def webhook_send_ping(*, institution: Institution, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """A test event for one endpoint, so an administrator can check the receiver and its signature check."""
    payload = {"message": "Test event from dropout_platform", "endpoint_id": endpoint.pk}
    return _queue(institution=institution, endpoints=[endpoint], event=PING_EVENT, payload=payload)[0]


def webhook_redeliver(*, institution: Institution, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a logged event again (same event id, so receivers that dedupe are safe)."""
    return _queue(institution=institution, endpoints=[delivery.endpoint], event=delivery.event,
                  payload=delivery.payload, event_id=delivery.event_id)[0]


def _queue(*, institution, endpoints, event, payload, event_id=None) -> list[WebhookDelivery]:
    if not endpoints:
        return []
    event_id = event_id or uuid.uuid4()
    payload = json.loads(json.dumps(payload, cls=DjangoJSONEncoder))
    with transaction.atomic():
        deliveries = WebhookDelivery.objects.for_institution(institution).bulk_create([
            WebhookDelivery(institution=institution, endpoint=endpoint, event_id=event_id, event=event,
                            payload=payload)
            for endpoint in endpoints
        ])
        for delivery in deliveries:
            transaction.on_commit(lambda delivery=delivery: _dispatch(delivery.institution_id, delivery.pk))
    return deliveries


def _dispatch(institution_id: int, delivery_id: int, *, countdown: float = 0) -> bool:
    # Imported here: tasks imports jobs, and jobs emits webhooks.
    from .tasks import deliver_webhook

    try:
        deliver_webhook.apply_async(
            kwargs={"institution_id": institution_id, "delivery_id": delivery_id}, countdown=countdown
        )
    except (OperationalError, OSError) as exc:  # broker down: the periodic sweep sends it later
        logger.warning("could not queue webhook delivery %s: %s", delivery_id, exc)
        return False
    return True


def webhook_body(delivery: WebhookDelivery) -> bytes:
    envelope = {
        "id": str(delivery.event_id),
        "event": delivery.event,
        "created_at": delivery.created_at.isoformat(),
        "institution": delivery.endpoint.institution.slug,
        "data": delivery.payload,
    }
    return json.dumps(envelope, sort_keys=True, separators=(",", ":")).encode("utf-8")


def webhook_signature(*, secret: str, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode("ascii") + b"." + body
    return "v1=" + hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def webhook_verify(*, secret: str, body: bytes, timestamp: str, signature: str, tolerance_seconds: int = 300,
                   now: float | None = None) -> bool:
    """What a receiver does (also documented in docs/api.md): recompute, compare, check freshness."""
    try:
        sent_at = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((now if now is not None else time.time()) - sent_at) > tolerance_seconds:
        return False
    expected = webhook_signature(secret=secret, timestamp=sent_at, body=body)
    return any(hmac.compare_digest(expected, candidate.strip()) for candidate in signature.split(","))


# Special-purpose ranges a webhook never reaches, beyond what ``ipaddress`` calls non-global
# (private, loopback, link-local, shared 100.64.0.0/10, documentation, benchmarking, reserved...):
# ranges that are "global" to ipaddress but lead into some other network or are not unicast.
BLOCKED_NETWORKS = tuple(ipaddress.ip_network(net) for net in (
    "0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "192.88.99.0/24", "198.18.0.0/15", "224.0.0.0/4",
    "240.0.0.0/4", "255.255.255.255/32",
    "::/128", "::1/128", "::ffff:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "2001::/23",
    "2001:db8::/32", "2002::/16", "fc00::/7", "fe80::/10", "ff00::/8",
))
# One text for every way a connection fails (refused, reset, timed out, TLS, not HTTP), so the log
# cannot be used to tell a closed port from an open one on the receiving host.
DELIVERY_FAILED = "No HTTP answer from the endpoint (connection failed, timed out or was not HTTP)"


def webhook_address_allowed(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether a delivery may connect to ``address``: a global unicast address outside every
    special-purpose range (an IPv4 address written as IPv6 is judged as the IPv4 it carries)."""
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    if not address.is_global or address.is_multicast:
        return False
    return not any(address.version == net.version and address in net for net in BLOCKED_NETWORKS)


class WebhookTargetRefused(OSError):
    """The endpoint's host resolves to an address a webhook must not reach."""


class WebhookHostUnresolved(OSError):
    """The endpoint's host name has no address (nothing was connected to)."""


def _resolve(host: str, port: int) -> list[str]:
    """The host's addresses (the one DNS lookup of a delivery)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise WebhookHostUnresolved(f"cannot resolve {host}: {exc}") from None
    return list(dict.fromkeys(info[4][0] for info in infos))


def webhook_target_address(host: str, port: int) -> str:
    """Resolve ``host`` once and return the address to connect to, checked: the delivery then
    connects to exactly this address (a second lookup could answer differently: DNS rebinding).
    Every address the name resolves to must be allowed, so no answer order can slip one through."""
    addresses = _resolve(host, port)
    if not addresses:
        raise WebhookHostUnresolved(f"cannot resolve {host}")
    if not _setting("WEBHOOK_ALLOW_PRIVATE_TARGETS", settings.DEBUG):
        for text in addresses:
            address = ipaddress.ip_address(text.split("%", 1)[0])
            if not webhook_address_allowed(address):
                raise WebhookTargetRefused(
                    f"{host} resolves to {address}, a private or special-purpose address; refused")
    return addresses[0]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to ``address`` whose Host header still names the URL's host."""

    def __init__(self, host, port, *, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to ``address``, with SNI and certificate checks for the URL's host name."""

    def __init__(self, host, port, *, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self):
        raw = socket.create_connection((self._address, self.port), self.timeout)
        try:
            self.sock = self._context.wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise


def _post(url: str, *, body: bytes, headers: dict, timeout: float) -> tuple[int, str]:
    """POST ``body`` to ``url`` through one checked address; (status, first bytes of the answer).
    A redirect is reported as the endpoint's answer, never followed."""
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    address = webhook_target_address(parts.hostname or "", port)
    connection_class = _PinnedHTTPSConnection if secure else _PinnedHTTPConnection
    connection = connection_class(parts.hostname, port, address=address, timeout=timeout)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read(RESPONSE_BODY_LIMIT).decode("utf-8", errors="replace")
    finally:
        connection.close()


def retry_delay_seconds(attempt: int) -> float:
    """Exponential backoff after the ``attempt``-th failure: base, 2x base, 4x base, ..."""
    return float(_setting("WEBHOOK_RETRY_BASE_SECONDS", 30)) * (2 ** (attempt - 1))


def webhook_deliver(*, institution: Institution, delivery_id: int) -> float | None:
    """Make one attempt. Returns the delay before the next attempt, or None when finished."""
    delivery = (
        WebhookDelivery.objects.for_institution(institution).select_related("endpoint__institution")
        .filter(pk=delivery_id).first()
    )
    if delivery is None or delivery.status in (DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED):
        return None  # deleted endpoint, or a duplicate task after a worker restart
    endpoint = delivery.endpoint
    body = webhook_body(delivery)
    timestamp = int(time.time())
    # The URL was checked by validate_webhook_url (http/https only) when it was saved.
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "dropout_platform-webhooks/1.0",
        "X-Dropout-Event": delivery.event,
        "X-Dropout-Event-Id": str(delivery.event_id),
        "X-Dropout-Delivery": str(delivery.pk),
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: webhook_signature(secret=endpoint.secret, timestamp=timestamp, body=body),
    }
    status_code, response_body, error = None, "", ""
    try:
        status_code, response_body = _post(endpoint.url, body=body, headers=headers,
                                           timeout=float(_setting("WEBHOOK_TIMEOUT_SECONDS", 10)))
        if not 200 <= status_code < 300:
            error = f"HTTP {status_code}"
    except (WebhookTargetRefused, WebhookHostUnresolved) as exc:  # said as it is: nothing was connected to
        error = str(exc)
    except OSError:  # refused, reset, timed out, TLS: one text (see DELIVERY_FAILED)
        error = DELIVERY_FAILED
    except (http.client.HTTPException, ValueError):  # an answer that is not HTTP
        error = DELIVERY_FAILED

    attempts = delivery.attempts + 1
    now = timezone.now()
    fields = {"attempts": attempts, "response_status": status_code, "response_body": response_body,
              "updated_at": now}
    delay = None
    if status_code is not None and 200 <= status_code < 300:
        fields.update(status=DeliveryStatus.SUCCEEDED, delivered_at=now, error="", next_attempt_at=None)
    elif attempts >= int(_setting("WEBHOOK_MAX_ATTEMPTS", 6)):
        fields.update(status=DeliveryStatus.FAILED, error=error or f"HTTP {status_code}", next_attempt_at=None)
    else:
        delay = retry_delay_seconds(attempts)
        fields.update(status=DeliveryStatus.RETRYING, error=error or f"HTTP {status_code}",
                      next_attempt_at=now + timedelta(seconds=delay))
    WebhookDelivery.objects.for_institution(institution).filter(pk=delivery.pk).update(**fields)
    return delay


def webhook_schedule_retry(*, institution_id: int, delivery_id: int, delay: float) -> bool:
    from .tasks import deliver_webhook

    if deliver_webhook.app.conf.task_always_eager and not _setting("WEBHOOK_EAGER_RETRIES", False):
        # In-process execution (unit tests ask for it) ignores countdowns: retrying here would
        # run every attempt at once. The row stays "retrying"; the log offers Redeliver.
        return False
    return _dispatch(institution_id, delivery_id, countdown=delay)


def webhook_dispatch_due() -> int:
    """Periodic sweep: send deliveries whose task never reached the broker or was lost."""
    stale = timezone.now() - timedelta(minutes=2)
    due = WebhookDelivery.objects.unscoped().filter(
        status__in=(DeliveryStatus.PENDING, DeliveryStatus.RETRYING), updated_at__lt=stale,
    ).filter(next_attempt_at__isnull=True) | WebhookDelivery.objects.unscoped().filter(
        status=DeliveryStatus.RETRYING, next_attempt_at__lt=stale,
    )
    sent = 0
    for institution_id, delivery_id in due.values_list("institution_id", "pk")[:1000]:
        sent += _dispatch(institution_id, delivery_id)
    return sent
