from django.apps import AppConfig


class InterventionsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "interventions"

    def ready(self) -> None:
        from celery.signals import task_success

        from .receivers import snapshot_after_rescore

        task_success.connect(snapshot_after_rescore, weak=False, dispatch_uid="interventions-snapshot-after-rescore")

        from institutions.signals import institution_created

        from .new_institution import give_new_institution_default_types

        institution_created.connect(give_new_institution_default_types, dispatch_uid="interventions-default-types")
