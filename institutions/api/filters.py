"""Filters shared by every API resource."""

from datetime import UTC

import django_filters
from django import forms
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
