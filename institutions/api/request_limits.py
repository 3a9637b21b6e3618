"""Refuse oversize bodies before anything reads them: API requests with 413 and the standard
error body; a page's upload (multipart form) with the upload page again and a message.

DRF reads request bodies from the stream, bypassing Django's DATA_UPLOAD_MAX_MEMORY_SIZE check,
so the limit is enforced here on ``Content-Length``: JSON and form bodies up to
``DATA_UPLOAD_MAX_MEMORY_SIZE``, multipart uploads up to ``IMPORT_MAX_FILE_BYTES`` plus room for
the form fields (the file import endpoint ``imports/``: ``IMPORT_MAX_BULK_FILE_BYTES``), a chunk
of a chunked upload (a raw ``application/offset+octet-stream`` or ``application/octet-stream``
body) up to ``IMPORT_UPLOAD_CHUNK_MAX_BYTES`` (413 ``chunk_too_large``).
"""

from __future__ import annotations

import re

from django.conf import settings
from django.contrib import messages
from django.db import InterfaceError, OperationalError
from django.http import HttpResponseRedirect, JsonResponse
from django.utils.translation import gettext as _

from .errors import DatabaseUnavailable, database_retry_after_seconds, error_body

MULTIPART_OVERHEAD_BYTES = 1024 * 1024


CHUNK_CONTENT_TYPES = ("application/offset+octet-stream", "application/octet-stream")
# The API's file import takes the bulk limit (the students app checks the file itself again).
_BULK_UPLOAD_PATH = re.compile(r"\A/api/v1/institutions/[^/]+/imports/\Z")


def api_body_limit(content_type: str, path: str = "") -> int:
    if content_type.startswith("multipart/"):
        if _BULK_UPLOAD_PATH.match(path):
            return max(settings.IMPORT_MAX_BULK_FILE_BYTES, settings.IMPORT_MAX_FILE_BYTES) + MULTIPART_OVERHEAD_BYTES
        return settings.IMPORT_MAX_FILE_BYTES + MULTIPART_OVERHEAD_BYTES
    if content_type.split(";")[0].strip().lower() in CHUNK_CONTENT_TYPES:
        return settings.IMPORT_UPLOAD_CHUNK_MAX_BYTES
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


class ApiRequestLimitsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/"):
            refusal = self._refusal(request)
            if refusal is not None:
                return refusal
        return self.get_response(request)

    def process_exception(self, request, exception):
        """A database outage in an API view outside DRF's handler still answers the JSON 503."""
        if request.path.startswith("/api/") and isinstance(exception, (OperationalError, InterfaceError)):
            response = JsonResponse(
                error_body(code=DatabaseUnavailable.default_code, message=str(DatabaseUnavailable.default_detail)),
                status=503,
            )
            response["Retry-After"] = str(database_retry_after_seconds())
            return response
        return None

    def _refusal(self, request):
        raw_length = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw_length)
        except ValueError:
            return JsonResponse(error_body(code="parse_error", message=_("Content-Length is not a number.")),
                                status=400)
        content_type = request.META.get("CONTENT_TYPE", "")
        limit = api_body_limit(content_type, request.path)
        if length > limit and content_type.split(";")[0].strip().lower() in CHUNK_CONTENT_TYPES:
            return JsonResponse(
                error_body(
                    code="chunk_too_large",
                    message=_("The chunk is %(length)s bytes; a chunk holds at most %(limit)s bytes "
                              "(IMPORT_UPLOAD_CHUNK_MAX_BYTES). Send the file in smaller chunks.")
                    % {"length": length, "limit": limit},
                ),
                status=413,
            )
        if length > limit:
            return JsonResponse(
                error_body(
                    code="request_too_large",
                    message=_("The request body is %(length)s bytes; the limit is %(limit)s bytes. "
                              "Send fewer records per request.") % {"length": length, "limit": limit},
                ),
                status=413,
            )
        return None


class PageUploadLimitsMiddleware:
    """An HTML form's upload larger than the import limit is refused on its ``Content-Length``,
    before Django streams it to a temporary file (the WSGI input is bounded by that length, so the
    body is never read beyond it): the browser comes back to the page with a message saying the
    limit. Runs after the session and messages middleware, before any view reads ``request.POST``.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if (request.method == "POST" and not request.path.startswith("/api/")
                and request.META.get("CONTENT_TYPE", "").startswith("multipart/")):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0  # Django reads no body with an unreadable length
            limit = api_body_limit("multipart/")
            if length > limit:
                messages.error(
                    request,
                    f"The upload is {length / 1_048_576:.1f} MB; the largest accepted file is "
                    f"{settings.IMPORT_MAX_FILE_BYTES / 1_048_576:.0f} MB. Split it into several files (each with the "
                    "header row), send it through the API or manage.py import_students (they take larger files: "
                    "docs/imports.md, \"Large institutions\"), or ask the operator to raise IMPORT_MAX_FILE_BYTES.",
                )
                return HttpResponseRedirect(request.get_full_path())
        return self.get_response(request)
