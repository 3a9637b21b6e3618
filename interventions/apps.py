from django.apps import AppConfig


class InterventionsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "interventions"

    def ready(self) -> None:
        from predictions.signals import rescore_finished

        from .receivers import snapshot_after_rescore

        rescore_finished.connect(snapshot_after_rescore, dispatch_uid="interventions-snapshot-after-rescore")

        from institutions.signals import institution_created

        from .new_institution import give_new_institution_default_types

        institution_created.connect(give_new_institution_default_types, dispatch_uid="interventions-default-types")

        from courses.signals import survey_marks_saved

        from .alerts import survey_marks_saved_receiver

        survey_marks_saved.connect(survey_marks_saved_receiver, dispatch_uid="interventions-alerts-from-survey-marks")

        from institutions.scoping import register_row_rule

        from .need_to_know import need_to_know_rows

        register_row_rule(need_to_know_rows)
