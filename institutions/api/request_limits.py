"""Refuse oversize API bodies with 413 and the standard error body, before anything reads them.

DRF reads request bodies from the stream, bypassing Django's DATA_UPLOAD_MAX_MEMORY_SIZE check,
so the limit is enforced here on ``Content-Length``: JSON and form bodies up to
``DATA_UPLOAD_MAX_MEMORY_SIZE``, multipart uploads (imports) up to ``IMPORT_MAX_FILE_BYTES`` plus
room for the form fields.
"""

from __future__ import annotations

from django.conf import settings
from django.http import JsonResponse

from .errors import error_body

MULTIPART_OVERHEAD_BYTES = 1024 * 1024


def api_body_limit(content_type: str) -> int:
    if content_type.startswith("multipart/"):
        return settings.IMPORT_MAX_FILE_BYTES + MULTIPART_OVERHEAD_BYTES
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

    def _refusal(self, request):
        raw_length = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw_length)
        except ValueError:
            return JsonResponse(error_body(code="parse_error", message="Content-Length is not a number."), status=400)
        limit = api_body_limit(request.META.get("CONTENT_TYPE", ""))
        if length > limit:
            return JsonResponse(
                error_body(
                    code="request_too_large",
                    message=f"The request body is {length} bytes; the limit is {limit} bytes. "
                            "Send fewer records per request.",
                ),
                status=413,
            )
        return None
