from django.apps import AppConfig


class PredictionsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "predictions"

    def ready(self) -> None:
        from django.db.models.signals import post_delete

        from courses.signals import survey_marks_saved
        from institutions.models import Institution
        from institutions.signals import institution_created
        from students.signals import import_committed

        # Registers the retrain/rescore job runners with institutions.jobs.
        from . import tasks  # noqa: F401
        from .receivers import (
            give_new_institution_capacity_flags,
            queue_rescore_after_import,
            refresh_concern_counts_after_survey_marks,
            remove_schedules_of_removed_institution,
        )

        import_committed.connect(queue_rescore_after_import, dispatch_uid="predictions-rescore-after-import")
        survey_marks_saved.connect(refresh_concern_counts_after_survey_marks,
                                   dispatch_uid="predictions-concern-counts-after-survey-marks")
        institution_created.connect(give_new_institution_capacity_flags, dispatch_uid="predictions-capacity-flags")
        post_delete.connect(remove_schedules_of_removed_institution, sender=Institution,
                            dispatch_uid="predictions-schedules-of-removed-institution")
