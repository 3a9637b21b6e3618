from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    """Retention rules, subject access exports and erasure: above every domain app (it reads and
    removes what each holds about a student), below the workspace."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "privacy"

    def ready(self) -> None:
        # Registers the retention job's runner, so any process can queue one.
        from . import tasks  # noqa: F401
