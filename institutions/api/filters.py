"""Filters shared by every API resource."""

from datetime import UTC

import django_filters
from django import forms
from django_filters import rest_framework as rest_framework_filters
from django_filters.fields import IsoDateTimeField


class UtcIsoDateTimeField(IsoDateTimeField):
    def to_python(self, value):
        value = super().to_python(value)
        if value is not None and value.tzinfo is not None:
            try:
                value = value.astimezone(UTC)
            except OverflowError:
                raise forms.ValidationError("Date-time is out of the supported range.", code="invalid") from None
        return value


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    """An ISO 8601 date-time filter that compares in UTC.

    Any valid offset is accepted (``-18:48`` included) and converted before it reaches the
    database; PostgreSQL itself rejects offsets beyond ±15:59, which would otherwise be a 500.
    """

    field_class = UtcIsoDateTimeField


class DjangoFilterBackend(rest_framework_filters.DjangoFilterBackend):
    """django-filter's backend, minus the FilterSet when the request names none of its filters.

    Building and validating a FilterSet costs about a millisecond; with none of its parameters
    in the query string every filter would receive an empty value and return the queryset
    unchanged, so the answer is the same without it. That holds only for filters that ignore an
    empty value (django-filter's own, and ``method=`` filters), optional ones, and a FilterSet
    that does not override ``filter_queryset``; any other FilterSet always runs.
    """

    def filter_queryset(self, request, queryset, view):
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is not None and not _filters_requested(filterset_class, request.query_params):
            return queryset
        return super().filter_queryset(request, queryset, view)


def _filters_requested(filterset_class, params) -> bool:
    if filterset_class.filter_queryset is not django_filters.FilterSet.filter_queryset:
        return True
    names = []
    for name, declared in filterset_class.base_filters.items():
        if declared.extra.get("required"):
            return True
        if declared.method is None and type(declared).filter.__module__ != django_filters.filters.__name__:
            return True
        names.append(name)
    # A prefix match also catches multi-value widgets' suffixed names (``<name>_min``, ``_after``).
    return any(param.startswith(name) for param in params for name in names)
