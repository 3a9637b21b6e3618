"""Reactions of the predictions app to lower apps' events (students never imports predictions)."""

from functools import partial

from django.db import transaction

from courses.models import Enrolment
from institutions.models import Institution
from institutions.scoping import institution_scope

from .models import FlagRule, PredictionSettings
from .services.concern_feature import concern_counts_refresh
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


def refresh_concern_counts_after_survey_marks(sender, *, institution, invitation, created=(), updated=(), removed=(),
                                              **kwargs) -> None:
    """``courses.signals.survey_marks_saved``: once the marks are committed, bring the concern
    count of the students they are about up to date (nothing when the feature is not in use).

    A taken-back mark arrives as an id only (its row is gone), so when marks were removed the
    instructor's whole roster is refreshed; only students whose count changed are written."""
    student_ids = {mark.student_id for mark in (*created, *updated)}
    instructor_id = invitation.instructor_id if removed else None
    transaction.on_commit(partial(_concern_counts_refresh_committed, institution, student_ids, instructor_id),
                          robust=True)  # the marks are saved either way; the nightly refresh catches up


def _concern_counts_refresh_committed(institution: Institution, student_ids: set[int],
                                      roster_of_instructor_id: int | None) -> None:
    with institution_scope(institution):
        if roster_of_instructor_id is not None:
            student_ids = student_ids | set(
                Enrolment.objects.for_institution(institution)
                .filter(section__teaching__instructor_id=roster_of_instructor_id)
                .values_list("student_id", flat=True))
        concern_counts_refresh(institution=institution, student_ids=student_ids)
