"""Page-number pagination with a bounded page size; querysets are always totally ordered
(every model orders by a unique key last), so pages are stable between requests."""

from django.core.exceptions import FieldDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.paginator import Paginator
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination, PageNumberPagination


class DeferredJoinPaginator(Paginator):
    """Django's paginator, except that a page of a queryset first finds the page's primary keys,
    then reads only those rows ("deferred join").

    ``LIMIT 50 OFFSET 5000`` on the rows themselves makes PostgreSQL fetch, and throw away, the
    5,000 full rows before the page (a heap visit each); finding the keys walks only the index
    that leads with ``institution_id``, so a deep page costs about what the first one does. The
    outer query keeps the queryset's filters and ordering, so the page holds the same rows in
    the same order as the plain slice.
    """

    def page(self, number):
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        object_list = self.object_list
        if hasattr(object_list, "values_list") and object_list.query.can_filter():
            page_keys = object_list.values("pk")[bottom:top]
            rows = object_list.filter(pk__in=page_keys)
        else:
            rows = object_list[bottom:top]
        return self._get_page(rows, number, self)


class StablePageNumberPagination(PageNumberPagination):
    django_paginator_class = DeferredJoinPaginator
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class SyncCursorPagination(CursorPagination):
    """A cursor over ``(updated_at, id)``: rows changed during a sync move behind the cursor
    instead of shifting page boundaries, so an incremental sync never skips or repeats a row."""

    ordering = ("updated_at", "id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise self._invalid_cursor() from None

    def paginate_queryset(self, queryset, request, view=None):
        try:
            return super().paginate_queryset(queryset, request, view)
        except DjangoValidationError:
            # A cursor made by hand (well-formed, but its position is no time) fails only when
            # the position is compared with updated_at.
            raise self._invalid_cursor() from None

    def _invalid_cursor(self) -> ValidationError:
        return ValidationError({self.cursor_query_param: ["invalid cursor; follow the next link of a page"]})


class InstitutionPagination(StablePageNumberPagination):
    """Page numbers for browsing; with ``updated_since`` or ``cursor`` (on a model that has
    ``updated_at``) the stable sync cursor instead. The two share one response shape, except
    that ``count`` is absent in cursor mode (counting would defeat the cursor's cheapness)."""

    cursor_query_param = "cursor"

    def paginate_queryset(self, queryset, request, view=None):
        self._cursor = None
        if self.wants_cursor(queryset, request):
            self._cursor = SyncCursorPagination()
            return self._cursor.paginate_queryset(queryset, request, view)
        return super().paginate_queryset(queryset, request, view)

    def wants_cursor(self, queryset, request) -> bool:
        if self.cursor_query_param not in request.query_params and "updated_since" not in request.query_params:
            return False
        try:
            queryset.model._meta.get_field("updated_at")
        except FieldDoesNotExist:
            return False
        return True

    def get_paginated_response(self, data):
        if self._cursor is not None:
            return self._cursor.get_paginated_response(data)
        return super().get_paginated_response(data)

    def get_paginated_response_schema(self, schema):
        page = super().get_paginated_response_schema(schema)
        page["required"] = ["results"]
        page["properties"]["count"]["description"] = "Total rows; absent when paging by cursor (sync)."
        return page

    def get_schema_operation_parameters(self, view):
        return [*super().get_schema_operation_parameters(view), {
            "name": self.cursor_query_param, "required": False, "in": "query",
            "description": "Sync cursor from a previous page's next link (pages by updated_at, id).",
            "schema": {"type": "string"},
        }]
