"""OpenAPI schema generation that works with the fail-closed tenant managers.

drf-spectacular introspects models through their default manager (``Model.objects.none()``),
which refuses to build a queryset without an institution. Generating the schema reads no rows,
so it runs with the platform-wide flag that lets managers build (empty) querysets.
"""

from __future__ import annotations

from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers

from ..models import Institution
from ..scoping import platform_wide_scope
from .base import InstitutionScopeMixin


class TenantAwareSchemaGenerator(SchemaGenerator):
    def get_schema(self, request=None, public=False):
        with platform_wide_scope():
            return super().get_schema(request=request, public=public)

    def create_view(self, callback, method, request=None):
        view = super().create_view(callback, method, request)
        if isinstance(view, InstitutionScopeMixin) and not hasattr(view, "institution"):
            # Views build querysets from self.institution; an unsaved placeholder lets them do so
            # lazily (spectacular only reads queryset.model, it never evaluates the queryset).
            view.institution = Institution(pk=0, slug="schema", name="schema")
        return view


class ApiAutoSchema(AutoSchema):
    """drf-spectacular's schema, saying two more rules the serializers apply to a request body:

    - a text field that may not be blank trims its value first, so it needs a character other
      than whitespace (``pattern: \\S``): ``"  "`` is "This field may not be blank", a 400;
    - a list of nested rows (``many=True``) holds ``min_length`` to ``max_length`` of them
      (``minItems``/``maxItems``), which drf-spectacular leaves out.
    """

    _direction = None

    def _map_basic_serializer(self, serializer, direction):
        outer, self._direction = self._direction, direction
        try:
            return super()._map_basic_serializer(serializer, direction)
        finally:
            self._direction = outer

    def _insert_field_validators(self, field, schema):
        super()._insert_field_validators(field, schema)
        if self._direction != "request":
            return
        if (isinstance(field, serializers.CharField) and not field.allow_blank and field.trim_whitespace
                and schema.get("type") == "string" and not {"pattern", "format", "enum"} & set(schema)):
            schema["pattern"] = r"\S"
        if isinstance(field, serializers.ListSerializer) and schema.get("type") == "array":
            if field.min_length is not None:
                schema["minItems"] = field.min_length
            if field.max_length is not None:
                schema["maxItems"] = field.max_length


def allow_empty_query_values(result, generator, request, public):
    """Postprocessing hook: an optional query parameter sent empty (``?status=``) is read as not
    sent, django-filter's convention that clients rely on; the schema says so with
    ``allowEmptyValue``, so an empty value is neither refused nor a schema violation."""
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query" and not parameter.get("required"):
                    parameter["allowEmptyValue"] = True
    return result


ERROR_SCHEMA = {
    "type": "object",
    "description": "The one error body of the API.",
    "properties": {
        "code": {"type": "string", "description": "Machine-readable, e.g. invalid, not_found, throttled"},
        "message": {"type": "string"},
        "errors": {"type": "object", "additionalProperties": True,
                   "description": "Field (or bulk row index) -> messages; empty unless code is invalid"},
    },
    "required": ["code", "message", "errors"],
}
ERROR_RESPONSES = {
    "400": "Malformed JSON or invalid fields",
    "401": "Missing, unknown, expired or revoked credentials",
    "403": "The key's scopes or the user's role do not allow this",
    "404": "Not found, or belonging to another institution",
    "413": "Request body too large",
    "415": "The request body's Content-Type is not one the operation reads (send JSON)",
    "429": "Rate limit exceeded; see Retry-After",
    "503": "The database is unavailable for a moment (code database_unavailable); see Retry-After",
}
BODY_ONLY_RESPONSES = {"413", "415"}  # a GET sends no body


def add_error_responses(result, generator, request, public):
    """Postprocessing hook: document the shared error body on every operation that lacks it."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    reference = {"$ref": "#/components/schemas/Error"}
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if not isinstance(operation, dict):
                continue
            responses = operation.setdefault("responses", {})
            for status, description in ERROR_RESPONSES.items():
                if status in BODY_ONLY_RESPONSES and method == "get":
                    continue
                responses.setdefault(status, {
                    "description": description, "content": {"application/json": {"schema": reference}},
                })
    return result
