"""OpenAPI schema generation that works with the fail-closed tenant managers.

drf-spectacular introspects models through their default manager (``Model.objects.none()``),
which refuses to build a queryset without an institution. Generating the schema reads no rows,
so it runs with the platform-wide flag that lets managers build (empty) querysets.
"""

from __future__ import annotations

from drf_spectacular.generators import SchemaGenerator

from ..scoping import platform_wide_scope


class TenantAwareSchemaGenerator(SchemaGenerator):
    def get_schema(self, request=None, public=False):
        with platform_wide_scope():
            return super().get_schema(request=request, public=public)
