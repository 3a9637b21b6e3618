from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Access audit trail"

    def ready(self):
        from . import (
            receivers,  # noqa: F401 - connects the reactions to institutions' signals
            tasks,  # noqa: F401 - registers the retention job's runner (web processes dispatch it too)
        )
