from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class InstitutionsConfig(AppConfig):
    default = True
    default_auto_field = "django.db.models.BigAutoField"
    name = "institutions"


class PlatformAdminConfig(admin_apps.AdminConfig):
    """Django admin for platform staff, running platform-wide (see institutions.admin_site)."""

    default = False
    default_site = "institutions.admin_site.PlatformAdminSite"
