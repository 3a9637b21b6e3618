"""Reactions of the predictions app to lower apps' events (students never imports predictions)."""

from institutions.models import Institution
from institutions.scoping import institution_scope

from .models import FlagRule, PredictionSettings
from .services.requests import rescore_after_import
from .services.schedules import prediction_schedules_remove


def give_new_institution_capacity_flags(sender, *, institution, **kwargs) -> None:
    """``institutions.signals.institution_created``: a new institution flags the top students its
    advisors can contact this term (not everyone above 50%, which flagged 48% of the UCI cohort).
    Institutions created before keep the rule they had."""
    PredictionSettings.objects.for_institution(institution).get_or_create(
        institution=institution, defaults={"flag_rule": FlagRule.CAPACITY})


def remove_schedules_of_removed_institution(sender, instance, **kwargs) -> None:
    """``post_delete`` of an Institution: its nightly rescore and weekly retrain entries go too."""
    prediction_schedules_remove(institution=instance)


def queue_rescore_after_import(sender, *, institution_id: int, job_id: int, **kwargs) -> None:
    institution = Institution.objects.get(pk=institution_id)
    with institution_scope(institution):
        rescore_after_import(institution=institution, import_job_id=job_id)
