"""Pagination of the API's lists; querysets are always totally ordered (every model orders by a
unique key last), so pages are stable between requests.

Long lists (predictions, jobs, interventions, flags, activity events, webhook deliveries...)
page by **keyset**: the ``next`` and ``previous`` links carry a cursor naming the last (first)
row's ordering values, and the next page is the rows after those values in the list's order
(``WHERE (risk, student_id) after (...) ORDER BY ... LIMIT n``), read from the index the list is
ordered by. Page 1,000 then costs what page 1 costs: nothing before the page is read. Page numbers
still work for the first ``API_MAX_OFFSET_PAGE`` pages (10; with ``count``); a deeper page
number is a 400 telling the client to follow the links. The students list (``keyset_pagination =
False`` on its view) keeps page numbers all the way, read by a deferred join.
"""

import base64
import binascii
import datetime
import json

from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.paginator import Paginator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext as _
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination, PageNumberPagination
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from .filters import refuse_repeated


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


def strict_page_size(pagination, request) -> int:
    """``page_size`` as a whole number from 1 (more than ``max_page_size`` reads as that many);
    absent or empty, the list's default. Anything else (``0``, ``-5``, ``2.5``, ``x``) is a 400,
    where DRF would quietly fall back to the default."""
    raw = request.query_params.get(pagination.page_size_query_param, "")
    if raw == "":
        return pagination.page_size
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise ValidationError({pagination.page_size_query_param: [
            _("a whole number from 1 (at most %(limit)s rows are sent)") % {"limit": pagination.max_page_size}]})
    return min(int(raw), pagination.max_page_size)


class StablePageNumberPagination(PageNumberPagination):
    django_paginator_class = DeferredJoinPaginator
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request):
        return strict_page_size(self, request)


class SyncCursorPagination(CursorPagination):
    """A cursor over ``(updated_at, id)``: rows changed during a sync move behind the cursor
    instead of shifting page boundaries, so an incremental sync never skips or repeats a row."""

    ordering = ("updated_at", "id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request):
        return strict_page_size(self, request)

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
        return ValidationError({self.cursor_query_param: [_("invalid cursor; follow the next link of a page")]})


KEYSET_PREFIX = "k."  # DRF's own cursors (the sync cursor) are plain base64 of "o=..&p=..": no dot


class Keyset:
    """A queryset's ordering as ``(field, descending)`` pairs ending in a unique field, or None
    when the ordering is not one a keyset can follow (an expression, a related field, a nullable
    column): such a list keeps page numbers."""

    def __init__(self, model, fields: list[tuple[models.Field, bool]]):
        self.model = model
        self.fields = fields

    @classmethod
    def of(cls, queryset) -> "Keyset | None":
        model = queryset.model
        ordering = list(queryset.query.order_by) or (
            list(model._meta.ordering) if queryset.query.default_ordering else []
        )
        fields = []
        for item in ordering:
            if not isinstance(item, str) or "__" in item or item.lstrip("-") == "?":
                return None
            name = item.lstrip("-")
            try:
                field = model._meta.pk if name == "pk" else model._meta.get_field(name)
            except FieldDoesNotExist:
                return None
            if not getattr(field, "concrete", False) or field.null or field.many_to_many:
                return None
            fields.append((field, item.startswith("-")))
        if not fields:
            return None
        if not cls._unique(model, fields[-1][0]):
            fields.append((model._meta.pk, fields[-1][1]))
        return cls(model, fields)

    @staticmethod
    def _unique(model, field) -> bool:
        if field.primary_key or field.unique:
            return True
        for constraint in model._meta.constraints:
            if (isinstance(constraint, models.UniqueConstraint) and constraint.condition is None
                    and set(constraint.fields) - {"institution"} == {field.name}):
                return True
        return False

    def order_by(self, *, reverse: bool) -> list[str]:
        return [("-" if descending != reverse else "") + field.attname for field, descending in self.fields]

    def after(self, values: list, *, reverse: bool) -> Q:
        """Rows strictly after ``values`` in the order (before them when ``reverse``)."""
        either = Q()
        for index, (field, descending) in enumerate(self.fields):
            lookup = "lt" if descending != reverse else "gt"
            term = Q(**{f"{field.attname}__{lookup}": values[index]})
            for earlier_index, (earlier, _descending) in enumerate(self.fields[:index]):
                term &= Q(**{earlier.attname: values[earlier_index]})
            either |= term
        # The first column's bound, said once more as a range the index can start from.
        first, descending = self.fields[0]
        bound = Q(**{f"{first.attname}__{'lte' if descending != reverse else 'gte'}": values[0]})
        return bound & either

    def values_of(self, row) -> list:
        return [getattr(row, field.attname) for field, _descending in self.fields]

    def encode(self, values: list, *, reverse: bool) -> str:
        encoded = [{"t": value.isoformat()} if isinstance(value, datetime.datetime)
                   else {"d": value.isoformat()} if isinstance(value, datetime.date) else value
                   for value in values]
        raw = json.dumps({"v": encoded, "r": reverse}, separators=(",", ":")).encode()
        return KEYSET_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def decode(self, token: str) -> tuple[list, bool]:
        try:
            raw = token[len(KEYSET_PREFIX):]
            data = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
            values = [self._decoded(value) for value in data["v"]]
            reverse = data["r"]
            if len(values) != len(self.fields) or not isinstance(reverse, bool):
                raise ValueError
            for (field, _descending), value in zip(self.fields, values, strict=True):
                field.to_python(value)  # a hand-made value of the wrong kind is refused here
        except (binascii.Error, ValueError, TypeError, KeyError, AttributeError, DjangoValidationError,
                UnicodeDecodeError, OverflowError):
            raise ValidationError({"cursor": [_("invalid cursor; follow the next link of a page")]}) from None
        return values, reverse

    @staticmethod
    def _decoded(value):
        if isinstance(value, dict) and set(value) == {"t"}:
            parsed = datetime.datetime.fromisoformat(value["t"])
            if parsed.tzinfo is None:
                raise ValueError
            return parsed
        if isinstance(value, dict) and set(value) == {"d"}:
            return datetime.date.fromisoformat(value["d"])
        if isinstance(value, (dict, list)):
            raise ValueError
        return value


class InstitutionPagination(StablePageNumberPagination):
    """Keyset pages for long lists, page numbers for the first pages and for views that set
    ``keyset_pagination = False``; with ``updated_since`` or a sync ``cursor`` (on a model that has
    ``updated_at``) the stable sync cursor instead. All share one response shape, except that
    ``count`` is given only on page-number pages (counting would defeat a cursor's cheapness)."""

    cursor_query_param = "cursor"

    @staticmethod
    def max_offset_page() -> int:
        return settings.API_MAX_OFFSET_PAGE

    def paginate_queryset(self, queryset, request, view=None):
        self._cursor = None
        self._keyset = None
        self._keyset_rows = None
        refuse_repeated(request.query_params, (self.page_query_param, self.page_size_query_param,
                                               self.cursor_query_param))
        token = request.query_params.get(self.cursor_query_param, "")
        keyset = Keyset.of(queryset) if getattr(view, "keyset_pagination", True) else None
        if keyset is not None and token.startswith(KEYSET_PREFIX):
            return self._keyset_page(keyset, queryset, request, token)
        if self.wants_cursor(queryset, request):
            self._cursor = SyncCursorPagination()
            return self._cursor.paginate_queryset(queryset, request, view)
        if keyset is not None:
            self._refuse_deep_page_number(request)
        rows = super().paginate_queryset(queryset, request, view)
        if keyset is not None and rows is not None:
            self._keyset = keyset
            self._keyset_next = bool(rows) and self.page.has_next()
            self._keyset_rows = rows
        return rows

    def _refuse_deep_page_number(self, request) -> None:
        raw = request.query_params.get(self.page_query_param)
        if raw is None:
            return
        try:
            number = int(raw)
        except ValueError:
            if raw not in self.last_page_strings:
                return  # the page-number paginator answers it (404, as before)
            number = self.max_offset_page() + 1  # "last" is as deep as the list is long
        if number > self.max_offset_page():
            raise ValidationError({self.page_query_param: [
                _("page numbers go up to %(last)s in this list; follow the next link of a page "
                  "(a cursor) to read further: deep pages cost what the first one does that way")
                % {"last": self.max_offset_page()}]})

    def _keyset_page(self, keyset, queryset, request, token):
        values, reverse = keyset.decode(token)
        self.request = request
        size = self.get_page_size(request)
        try:
            page = list(queryset.filter(keyset.after(values, reverse=reverse))
                        .order_by(*keyset.order_by(reverse=reverse))[: size + 1])
        except (DjangoValidationError, ValueError, TypeError, OverflowError):
            raise ValidationError({"cursor": [_("invalid cursor; follow the next link of a page")]}) from None
        more = len(page) > size
        page = page[:size]
        if reverse:
            page.reverse()
        self._keyset = keyset
        self._keyset_rows = page
        # Coming from a page, there is one back the other way.
        self._keyset_next = more if not reverse else True
        self._keyset_previous = True if not reverse else more
        self.page = None
        return page

    def _keyset_link(self, row, *, reverse: bool) -> str:
        url = remove_query_param(self.request.build_absolute_uri(), self.page_query_param)
        token = self._keyset.encode(self._keyset.values_of(row), reverse=reverse)
        return replace_query_param(url, self.cursor_query_param, token)

    def get_paginated_response(self, data):
        if self._cursor is not None:
            return self._cursor.get_paginated_response(data)
        if self._keyset is None:
            return super().get_paginated_response(data)
        rows = self._keyset_rows
        following = self._keyset_link(rows[-1], reverse=False) if rows and self._keyset_next else None
        if self.page is not None:  # a page number: count, previous page by number, next by cursor
            return Response({"count": self.page.paginator.count, "next": following,
                             "previous": self.get_previous_link(), "results": data})
        preceding = self._keyset_link(rows[0], reverse=True) if rows and self._keyset_previous else None
        return Response({"next": following, "previous": preceding, "results": data})

    def wants_cursor(self, queryset, request) -> bool:
        # An empty value is no value (``?updated_since=``), as for every query parameter.
        if not request.query_params.get(self.cursor_query_param) and not request.query_params.get("updated_since"):
            return False
        try:
            queryset.model._meta.get_field("updated_at")
        except FieldDoesNotExist:
            return False
        return True

    def get_paginated_response_schema(self, schema):
        page = super().get_paginated_response_schema(schema)
        page["required"] = ["results"]
        page["properties"]["count"]["description"] = (
            "Total rows; given on page-number pages only (absent on pages read by cursor).")
        return page

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1}
                parameter["description"] = (
                    f"Rows per page, from 1 (default {self.page_size}); more than {self.max_page_size} "
                    f"reads as {self.max_page_size}.")
        if getattr(view, "keyset_pagination", True):
            for parameter in parameters:
                if parameter["name"] == self.page_query_param:
                    parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": self.max_offset_page()}
                    parameter["description"] = (
                        f"A page number up to {self.max_offset_page()}; beyond, follow the next link (a cursor).")
        return [*parameters, {
            "name": self.cursor_query_param, "required": False, "in": "query",
            "description": "Cursor from a previous page's next or previous link.",
            "schema": {"type": "string"},
        }]
