from django.apps import AppConfig


class WorkspaceConfig(AppConfig):
    """The composite pages an advisor lives in; above every domain app, and nothing imports it but the URLs."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "workspace"

    def ready(self) -> None:
        from interventions.signals import alert_assigned, alert_closed

        from .notifications import notify_alert_assigned, notify_alert_closed

        # interventions sends these after its transaction commits; the workspace tells the people concerned.
        alert_assigned.connect(notify_alert_assigned, dispatch_uid="workspace-notify-alert-assigned")
        alert_closed.connect(notify_alert_closed, dispatch_uid="workspace-notify-alert-closed")

        from predictions.signals import model_degraded

        from .notifications import notify_model_degraded

        model_degraded.connect(notify_model_degraded, dispatch_uid="workspace-notify-model-degraded")

