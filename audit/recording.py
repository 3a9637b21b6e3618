"""Where each channel records its reads: one mixin for pages, one for API views.

A page or API view that hands out student-level data names what it records (``access_action`` /
``access_reads``); the mixin writes one entry after the response was built successfully (a 404, a
refused form or an error records nothing), before it leaves the server, so an entry cannot fail
to be written for data that was sent. Exports call :func:`audit.services.access_record_for_request`
themselves, with the number of rows they hand out.
"""

from __future__ import annotations

from rest_framework.response import Response

from .services import access_record_for_request, filter_text, list_filters

RECORDED_PAGE_METHODS = ("GET", "HEAD", "POST")


class AccessRecordedPageMixin:
    """For an ``InstitutionPageMixin`` page (put this mixin before it). ``access_action`` says what
    a successful response records; :meth:`access_details` gives the student, object, filter and
    count (the default: a list page's filter and the rows on the page shown)."""

    access_action: str = ""
    # The query parameter that names one student (kept in the entry's student column, not the filter).
    access_student_parameter: str | None = None
    # The URL's id of the object read (an import upload, say), recorded beside the student.
    access_object_kwarg: str | None = None
    # Record only a page whose context holds this (e.g. the report, not the "still running" state).
    access_requires_context: str | None = None

    def dispatch(self, request, *args, **kwargs):
        response = super().dispatch(request, *args, **kwargs)
        action = self.get_access_action()
        if action and request.method in RECORDED_PAGE_METHODS and response.status_code == 200 \
                and self._shows_recorded_data(response):
            access_record_for_request(request, institution=self.institution, action=action,
                                      **self.access_details(response))
        return response

    def _shows_recorded_data(self, response) -> bool:
        if self.access_requires_context is None:
            return True
        return bool((getattr(response, "context_data", None) or {}).get(self.access_requires_context))

    def get_access_action(self) -> str:
        return self.access_action

    def access_details(self, response) -> dict:
        page = (getattr(response, "context_data", None) or {}).get("page_obj")
        filters, student_id = list_filters(self.request.GET, student_parameter=self.access_student_parameter)
        details = {"filters": filters, "student_id": student_id}
        if self.access_object_kwarg:
            details["object_id"] = self.kwargs.get(self.access_object_kwarg)
        if page is not None:
            details["result_count"] = len(page.object_list)
            if page.number > 1:
                details["filters"] = {**filters, "page": page.number}
        return details


class AccessRecordedAPIMixin:
    """For an institution API view (put this mixin before its base). ``access_reads`` maps the
    viewset action (``list``, ``retrieve``; ``get`` for a plain view) to what it records. A list
    records its filter and how many items the page handed out; one object records its student
    (``access_student_field`` of the representation, or the URL's ``student_id``) and its id."""

    access_reads: dict[str, str] = {}
    access_student_field = "student"
    access_student_parameter: str | None = "student"

    def finalize_response(self, request, response, *args, **kwargs):
        if request.method in ("GET", "HEAD") and isinstance(response, Response) and response.status_code == 200 \
                and getattr(self, "institution", None) is not None:
            action = self.access_reads.get(getattr(self, "action", None) or request.method.lower())
            if action:
                access_record_for_request(request, institution=self.institution, action=action,
                                          **self.access_details(request, response.data))
        return super().finalize_response(request, response, *args, **kwargs)

    def access_details(self, request, data) -> dict:
        url_student = self.kwargs.get("student_id")
        items = data.get("results") if isinstance(data, dict) and isinstance(data.get("results"), list) else data
        if isinstance(items, list):
            filters, student_id = list_filters(request.query_params, student_parameter=self.access_student_parameter)
            for key in ("page", "cursor"):
                if request.query_params.get(key):
                    filters[key] = filter_text(request.query_params[key])
            return {"filters": filters, "student_id": url_student or student_id, "result_count": len(items)}
        data = data if isinstance(data, dict) else {}
        object_id = data.get("id") if self.access_student_field != "id" else None
        return {"student_id": url_student or data.get(self.access_student_field), "object_id": object_id}
