"""The platform-staff admin site: superusers administer institutions across the platform.

Its views run inside ``platform_wide_scope`` so that the fail-closed tenant managers can serve
them; nothing else in the product enters that scope.
"""

import functools

from django.contrib import admin

from .scoping import platform_wide_scope


class PlatformAdminSite(admin.AdminSite):
    site_header = "dropout_platform — platform administration"
    site_title = "dropout_platform admin"
    index_title = "Institutions and platform data"

    def has_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_superuser

    def admin_view(self, view, cacheable=False):
        wrapped = super().admin_view(view, cacheable)

        @functools.wraps(wrapped)
        def platform_wide_view(request, *args, **kwargs):
            with platform_wide_scope():
                response = wrapped(request, *args, **kwargs)
                if hasattr(response, "render") and not getattr(response, "is_rendered", True):
                    response.render()
                return response

        return platform_wide_view
