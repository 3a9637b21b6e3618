"""Error reporting through Sentry, switched on by SENTRY_DSN (docs/operations.md, "Logs, metrics and health").

Sentry receives an error's type, message, stack trace (without local variables), the request's
method and route, the request id, the institution's slug and the job id as tags. It never
receives personal data: ``send_default_pii`` is off, request bodies, cookies, query strings and
headers are dropped before sending, and so are the messages of log records attached as
breadcrumbs (they may quote a value). An exception's own message is kept: the code raises with
ids, never with a student's name, email or feature values.
"""

from __future__ import annotations

from typing import Any


def _scrub(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    request = event.get("request")
    if isinstance(request, dict):
        event["request"] = {key: request[key] for key in ("method", "url") if key in request}
        if "url" in event["request"]:
            event["request"]["url"] = str(event["request"]["url"]).split("?")[0]
    event.pop("user", None)
    event.pop("extra", None)
    crumbs = event.get("breadcrumbs")
    if isinstance(crumbs, dict):
        crumbs["values"] = [{key: crumb.get(key) for key in ("timestamp", "category", "level", "type")}
                            for crumb in crumbs.get("values", [])]
    from institutions.observability import current_log_context

    event.setdefault("tags", {}).update({key: value for key, value in current_log_context().items() if value})
    return event


def sentry_init(dsn: str, *, environment: str, traces_sample_rate: float) -> None:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=dsn, environment=environment, traces_sample_rate=traces_sample_rate,
        send_default_pii=False, include_local_variables=False, max_request_body_size="never",
        integrations=[DjangoIntegration(), CeleryIntegration()], before_send=_scrub,
    )
