"""One error body for every API failure: ``{"code", "message", "errors"}``.

``errors`` maps a field name (or ``non_field_errors``, or an item index for bulk requests) to a
list of messages. A 404 for another institution's object is byte-for-byte a real 404.

While the database cannot be reached (a restart, a failover, a dropped connection) every API
request answers 503 ``database_unavailable`` with ``Retry-After`` (``API_DATABASE_RETRY_AFTER_SECONDS``)
in this same body, never an HTML 500; Django drops the broken connection at the end of the
request, so the first request after the database is back is answered normally.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.views import exception_handler


def _flatten(detail) -> object:
    if isinstance(detail, dict):
        return {str(key): _flatten(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_flatten(item) for item in detail]
    return str(detail)


def error_body(*, code: str, message: str, errors: dict | None = None) -> dict:
    return {"code": code, "message": message, "errors": errors or {}}


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = gettext_lazy("The request body is larger than the API accepts; send fewer records per request.")
    default_code = "request_too_large"


class DatabaseUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = gettext_lazy("The database is unavailable for a moment; retry after the seconds in Retry-After.")
    default_code = "database_unavailable"


def database_retry_after_seconds() -> int:
    return int(getattr(settings, "API_DATABASE_RETRY_AFTER_SECONDS", 30))


def api_exception_handler(exc, context):
    if isinstance(exc, (OperationalError, InterfaceError)):
        # A lost connection or a server restarting (psycopg2's OperationalError, or InterfaceError
        # on a connection already closed); Django's ATOMIC_REQUESTS is off, and a write in progress
        # is rolled back by PostgreSQL with the connection.
        exc = DatabaseUnavailable()
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(_("Not found."))
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        detail = _flatten(exc.detail)
        if isinstance(detail, list):
            detail = {"non_field_errors": detail}
        response.data = error_body(
            code="invalid", message=_("The request has invalid fields; see errors."), errors=detail
        )
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
        if isinstance(exc, exceptions.ParseError):
            code = "parse_error"
        response.data = error_body(code=str(code), message=str(detail))
    if response.status_code == status.HTTP_429_TOO_MANY_REQUESTS and getattr(exc, "wait", None):
        response["Retry-After"] = str(int(exc.wait) + 1)
    if isinstance(exc, DatabaseUnavailable):
        response["Retry-After"] = str(database_retry_after_seconds())
    return response


def page_not_found(request, exception):
    """Django's 404 handler (``handler404``): under ``/api/`` the API's own 404 body, byte for byte
    what a view's 404 answers, for URLs no route matches (``students/abc/``: an integer path
    parameter that is no integer, a slug with a space); the HTML page everywhere else."""
    if request.path.startswith("/api/"):
        body = json.dumps(error_body(code="not_found", message=_("Not found.")), separators=(",", ":"))
        return HttpResponse(body, status=404, content_type="application/json")
    return defaults.page_not_found(request, exception)
