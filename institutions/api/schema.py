"""OpenAPI schema generation that works with the fail-closed tenant managers.

drf-spectacular introspects models through their default manager (``Model.objects.none()``),
which refuses to build a queryset without an institution. Generating the schema reads no rows,
so it runs with the platform-wide flag that lets managers build (empty) querysets.
"""

from __future__ import annotations

from drf_spectacular.generators import SchemaGenerator

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
