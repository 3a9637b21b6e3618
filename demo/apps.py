from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo institutions' builder: the top layer, since it fills every app below it."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "demo"
