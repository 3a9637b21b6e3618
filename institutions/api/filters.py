"""Filters shared by every API resource."""

from datetime import UTC

import django_filters
from django import forms
from django.utils.translation import gettext as _
from django_filters import rest_framework as rest_framework_filters
from django_filters.fields import IsoDateTimeField
from drf_spectacular.utils import extend_schema_field
from rest_framework.exceptions import ValidationError

# The largest primary key PostgreSQL's bigint holds (every table's id is a BigAutoField).
MAX_ID = 2**63 - 1


class UtcIsoDateTimeField(IsoDateTimeField):
    def to_python(self, value):
        value = super().to_python(value)
        if value is not None and value.tzinfo is not None:
            try:
                value = value.astimezone(UTC)
            except OverflowError:
                raise forms.ValidationError(_("Date-time is out of the supported range."), code="invalid") from None
        return value


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    """An ISO 8601 date-time filter that compares in UTC.

    Any valid offset is accepted (``-18:48`` included) and converted before it reaches the
    database; PostgreSQL itself rejects offsets beyond ±15:59, which would otherwise be a 500.
    """

    field_class = UtcIsoDateTimeField


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": MAX_ID})
class IdFilter(django_filters.NumberFilter):
    """A row's id: a whole number from 1 to bigint's largest. ``1.5``, ``-3`` or ``1e30`` is a 400
    (django-filter's NumberFilter reads a decimal, and the integer column would truncate it)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class StrictBooleanField(forms.Field):
    """``true`` or ``false`` (an empty value: no filter); anything else is refused, where
    django-filter's own boolean widget reads an unknown value as "no filter"."""

    widget = forms.TextInput
    VALUES = {"true": True, "false": False}

    def to_python(self, value):
        if value in (None, ""):
            return None
        try:
            return self.VALUES[value]
        except (KeyError, TypeError):
            raise forms.ValidationError(_("Enter true or false."), code="invalid") from None


@extend_schema_field({"type": "boolean"})
class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


def refuse_repeated(params, names) -> None:
    """A parameter that takes one value, given twice (``?page_size=5&page_size=9``), is a 400: which
    one was meant is not ours to guess."""
    repeated = {name: [_("give this parameter once")] for name in names if len(params.getlist(name)) > 1}
    if repeated:
        raise ValidationError(repeated)


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
        if filterset_class is not None:
            refuse_repeated(request.query_params, filterset_class.base_filters)
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
