from django.apps import AppConfig


class WorkspaceConfig(AppConfig):
    """The composite pages an advisor lives in; above every domain app, and nothing imports it but the URLs."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "workspace"
