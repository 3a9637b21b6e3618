"""The number of instructor concerns this term as a model feature (``concerns_this_term``).

An institution switches it on on the model settings page. Switching on adds the numeric feature
to its data schema (or restores it) and writes every current student's count; switching off
retires the feature. Neither rescores anyone or changes the live model: a retired feature stops
being a model input at the next retrain, and a model trained with it keeps reading the stored
values it was trained on, so the counts keep being refreshed as long as the live model reads them.

The value is the number of survey marks of a concern type of kind "concern" (not kudos) that
instructors gave the student in progress surveys of the current term: a term
(``courses.AcademicSession``) whose dates contain today's date in the institution's time zone.
It is written into ``Student.features`` through the students' change history (source
"surveys"), only where it changed, when survey marks are saved (for those students) and for all
current students before every scheduled rescore (a new term starts everyone at its own count).
Students who are no longer current keep the value they had when they last were: that is what a
retrain learns from (docs/admin-guide.md, "Instructor concerns as a model feature").
"""

from __future__ import annotations

import datetime
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext

from courses.models import AcademicSession, ConcernKind, SurveyMark
from institutions.models import Institution
from students.models import (
    ChangeSource,
    EnrolmentStatus,
    FeatureDefinition,
    FeatureKind,
    Outcome,
    Student,
)
from students.selectors import current_students
from students.services import feature_definition_create, feature_definition_edit

from .. import sql
from ..models import PredictionSettings
from ..outcome_mapping import outcome_mapping_get
from ..selectors import model_version_live, prediction_settings_get

CONCERNS_FEATURE_KEY = "concerns_this_term"
CONCERNS_FEATURE_DEFINITION = {
    "key": CONCERNS_FEATURE_KEY,
    "label": "Instructor concerns this term",
    "kind": FeatureKind.NUMERIC,
    "min_value": 0,
    "unit": "concerns",
    "description": (
        "How many concerns (not kudos) instructors marked for the student in this term's progress surveys. "
        "Written by the platform from the surveys (the change history says \"Progress surveys\"); a student "
        "who is no longer current keeps the count of the last term they were current in."
    ),
    "protected": False,
    "actionable": False,
}


class ConcernFeatureRefused(ValueError):
    """The feature cannot be switched on as asked; the message says why (nothing was changed)."""


def institution_today(institution: Institution, now: datetime.datetime | None = None) -> datetime.date:
    """Today's date where the institution is (its terms' dates are local dates)."""
    return (now or timezone.now()).astimezone(zoneinfo.ZoneInfo(institution.timezone)).date()


def current_terms(*, institution: Institution, today: datetime.date | None = None) -> list[AcademicSession]:
    """The terms (any academic session) whose dates contain today: the surveys counted are theirs."""
    today = today or institution_today(institution)
    return list(AcademicSession.objects.for_institution(institution)
                .filter(start_date__lte=today, end_date__gte=today).order_by("start_date", "title"))


def concern_feature_definition(*, institution: Institution) -> FeatureDefinition | None:
    return FeatureDefinition.objects.for_institution(institution).filter(key=CONCERNS_FEATURE_KEY).first()


def concern_feature_in_use(*, institution: Institution, settings: PredictionSettings | None = None) -> bool:
    """Whether the counts must be kept current: the setting is on, or the live model reads them
    (one trained before the feature was switched off scores with them until the next retrain)."""
    settings = settings or prediction_settings_get(institution=institution)
    if settings.concerns_feature:
        return True
    live = model_version_live(institution=institution)
    return live is not None and CONCERNS_FEATURE_KEY in (live.feature_keys or [])


def concern_counts_refresh(
    *, institution: Institution, student_ids: Iterable[int] | None = None, today: datetime.date | None = None,
    force: bool = False,
) -> int:
    """Bring the stored ``concerns_this_term`` of current students (all, or ``student_ids``) in
    line with the surveys of the current term, in one statement; record each change. Returns how
    many students changed (0, doing nothing, when the feature is not in use unless ``force``)."""
    if not force and not concern_feature_in_use(institution=institution):
        return 0
    params = {
        "institution_id": institution.pk,
        "key": CONCERNS_FEATURE_KEY,
        "change_key": f"features.{CONCERNS_FEATURE_KEY}",
        "concern_kind": ConcernKind.CONCERN.value,
        "today": today or institution_today(institution),
        "enrolled": Outcome.ENROLLED.value,
        "inactive": EnrolmentStatus.INACTIVE.value,
        "source": ChangeSource.SURVEYS.value,
        "now": timezone.now(),
    }
    if student_ids is None:
        statement = sql.CONCERN_COUNTS_REFRESH_ALL
    else:
        params["student_ids"] = sorted({int(student_id) for student_id in student_ids})
        if not params["student_ids"]:
            return 0
        statement = sql.CONCERN_COUNTS_REFRESH_STUDENTS
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


@dataclass(frozen=True)
class ConcernFeaturePreview:
    """What the settings page shows before the feature is switched on or off."""

    enabled: bool
    changed_at: datetime.datetime | None
    changed_by: AbstractBaseUser | None
    definition: FeatureDefinition | None
    live_model_uses_it: bool
    terms: list[AcademicSession]
    current_students: int
    current_with_concerns: int  # current students whose count would be (or is) above 0
    training_rows: int  # students with a known outcome (a retrain's rows)
    training_rows_with_value: int  # of them, those with a stored count (they were current while it was in use)
    training_rows_with_concerns: int  # of them, those whose stored count is above 0

    @property
    def key(self) -> str:
        return CONCERNS_FEATURE_KEY

    @property
    def term_titles(self) -> str:
        """The current terms' titles, as the page lists them ("Autumn 2026, ...")."""
        return ", ".join(term.title for term in self.terms)


def concern_feature_preview(*, institution: Institution) -> ConcernFeaturePreview:
    settings = prediction_settings_get(institution=institution)
    live = model_version_live(institution=institution)
    today = institution_today(institution)
    terms = current_terms(institution=institution, today=today)
    current = current_students(institution=institution)
    with_concerns = (SurveyMark.objects.for_institution(institution)
                     .filter(concern_type__kind=ConcernKind.CONCERN, invitation__survey__term__start_date__lte=today,
                             invitation__survey__term__end_date__gte=today, student__in=current.values("id"))
                     .values("student_id").distinct().count())
    training = Student.objects.for_institution(institution).filter(
        outcome_mapping_get(institution=institution).known_filter())
    return ConcernFeaturePreview(
        enabled=settings.concerns_feature,
        changed_at=settings.concerns_feature_changed_at,
        changed_by=settings.concerns_feature_changed_by,
        definition=concern_feature_definition(institution=institution),
        live_model_uses_it=live is not None and CONCERNS_FEATURE_KEY in (live.feature_keys or []),
        terms=terms,
        current_students=current.count(),
        current_with_concerns=with_concerns,
        training_rows=training.count(),
        training_rows_with_value=training.filter(features__has_key=CONCERNS_FEATURE_KEY).count(),
        training_rows_with_concerns=training.filter(**{f"features__{CONCERNS_FEATURE_KEY}__gt": 0}).count(),
    )


def _definition_for_switching_on(institution: Institution, actor: AbstractBaseUser | None) -> FeatureDefinition:
    definition = concern_feature_definition(institution=institution)
    if definition is None:
        last = FeatureDefinition.objects.for_institution(institution).aggregate(last=Max("position"))["last"]
        return feature_definition_create(
            institution=institution, data={**CONCERNS_FEATURE_DEFINITION, "position": (last or 0) + 1},
            actor=actor, source=ChangeSource.WEB,
        )
    if definition.kind != FeatureKind.NUMERIC:
        raise ConcernFeatureRefused(gettext(
            "Your data schema already has a %(kind)s feature “%(key)s” (%(label)s); the concern count needs that "
            "key for a number. Nothing was changed.") % {
                "kind": str(definition.get_kind_display()).lower(), "key": CONCERNS_FEATURE_KEY,
                "label": definition.label})
    if definition.is_retired:
        feature_definition_edit(institution=institution, definition=definition, data={"retired": False},
                                actor=actor, source=ChangeSource.WEB)
    return definition


@transaction.atomic
def concern_feature_set(*, institution: Institution, enabled: bool, actor: AbstractBaseUser | None) -> bool:
    """Switch the feature on (add or restore it in the schema and write every current student's
    count) or off (retire it); record who did it and when. False when it was already so."""
    settings = prediction_settings_get(institution=institution)
    if settings.pk is not None:
        settings = PredictionSettings.objects.for_institution(institution).select_for_update().get(pk=settings.pk)
    if settings.concerns_feature == enabled:
        return False
    if enabled:
        _definition_for_switching_on(institution, actor)
    else:
        definition = concern_feature_definition(institution=institution)
        if definition is not None and not definition.is_retired:
            feature_definition_edit(institution=institution, definition=definition, data={"retired": True},
                                    actor=actor, source=ChangeSource.WEB)
    settings.concerns_feature = enabled
    settings.concerns_feature_changed_at = timezone.now()
    settings.concerns_feature_changed_by = actor
    settings.save()
    if enabled:
        concern_counts_refresh(institution=institution, force=True)
    return True
