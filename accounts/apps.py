from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Identity beside ``institutions``: invitations, password change and reset, login protection."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "accounts"
