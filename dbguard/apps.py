from django.apps import AppConfig


class DbguardConfig(AppConfig):
    name = "dbguard"
    verbose_name = "Database-level tenancy guard"
