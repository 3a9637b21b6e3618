from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class InstitutionsConfig(AppConfig):
    default = True
    default_auto_field = "django.db.models.BigAutoField"
    name = "institutions"

    def ready(self):
        # Every process (web, Celery, management commands) must tell the web processes when a key,
        # an institution or a user changes: they keep the API keys they authenticated.
        from .api_keys import forget_kept_keys_on_changes

        forget_kept_keys_on_changes()


class PlatformAdminConfig(admin_apps.AdminConfig):
    """Django admin for platform staff, running platform-wide (see institutions.admin_site)."""

    default = False
    default_site = "institutions.admin_site.PlatformAdminSite"
