"""Saving which outcomes count as not completing, completing or not known (predictions.outcome_mapping).

Changing the mapping changes who the next retrain learns from, so a change is shown first (how
many students move into or out of training, per class) and saved only when confirmed, with who
saved it and when. The live model is not touched: the next retrain uses the new mapping.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from institutions.models import Institution
from students.models import Student

from ..models import OutcomeClass, PredictionSettings
from ..outcome_mapping import MAPPABLE_OUTCOMES, OutcomeMapping
from ..selectors import prediction_settings_get

TRAINED_CLASSES = (OutcomeClass.DID_NOT_COMPLETE, OutcomeClass.COMPLETED)


@dataclass(frozen=True)
class OutcomeMove:
    """The students of one recorded outcome whose class the proposed mapping changes."""

    outcome: str
    students: int
    before: str
    after: str


@dataclass(frozen=True)
class OutcomeMappingChange:
    """What a proposed mapping does to training; ``saved`` once it is the institution's."""

    saved: bool
    current: OutcomeMapping
    proposed: OutcomeMapping
    students_by_outcome: Mapping[str, int]

    @property
    def changes_anything(self) -> bool:
        return self.current != self.proposed

    @property
    def moves(self) -> list[OutcomeMove]:
        return [OutcomeMove(value, self.students_by_outcome.get(value, 0), self.current.classes[value],
                            self.proposed.classes[value])
                for value in MAPPABLE_OUTCOMES if self.current.classes[value] != self.proposed.classes[value]]

    def training(self, mapping: OutcomeMapping) -> dict[str, int]:
        return {outcome_class.value: sum(self.students_by_outcome.get(value, 0)
                                         for value in mapping.values_of(outcome_class))
                for outcome_class in TRAINED_CLASSES}

    @property
    def by_class(self) -> list[dict]:
        """Per trained class: students now, after the change, and the difference."""
        before, after = self.training(self.current), self.training(self.proposed)
        return [{"class": name, "before": before[name], "after": after[name], "difference": after[name] - before[name]}
                for name in before]

    @property
    def students_into_training(self) -> int:
        return sum(move.students for move in self.moves if move.before == OutcomeClass.NOT_KNOWN)

    @property
    def students_out_of_training(self) -> int:
        return sum(move.students for move in self.moves if move.after == OutcomeClass.NOT_KNOWN)


def students_by_outcome(*, institution: Institution) -> dict[str, int]:
    """How many of the institution's students have each recorded outcome (one grouped count)."""
    rows = (Student.objects.for_institution(institution).order_by().values("outcome")
            .annotate(n=Count("id")).values_list("outcome", "n"))
    return dict(rows)


def outcome_mapping_preview(*, institution: Institution, proposed: Mapping[str, object]) -> OutcomeMappingChange:
    """What ``proposed`` would change, saving nothing (OutcomeMappingInvalid for a bad mapping)."""
    current = OutcomeMapping.of(prediction_settings_get(institution=institution))
    return OutcomeMappingChange(saved=False, current=current, proposed=OutcomeMapping.validated(proposed),
                                students_by_outcome=students_by_outcome(institution=institution))


def outcome_mapping_set(
    *, institution: Institution, proposed: Mapping[str, object], actor: AbstractBaseUser | None,
    confirmed: bool = False, at: datetime.datetime | None = None,
) -> OutcomeMappingChange:
    """Save the institution's outcome mapping once ``confirmed`` (the page showed the change first).

    Unconfirmed, or when nothing changes, nothing is saved and the outcome carries the preview.
    Raises ``OutcomeMappingInvalid`` (nothing saved) for an unknown outcome or class, or a mapping
    that leaves one of the two classes empty.
    """
    change = outcome_mapping_preview(institution=institution, proposed=proposed)
    if not change.changes_anything or not confirmed:
        return change
    with transaction.atomic():
        settings = prediction_settings_get(institution=institution)
        if settings.pk is not None:
            settings = PredictionSettings.objects.for_institution(institution).select_for_update().get(pk=settings.pk)
        settings.outcome_classes = change.proposed.as_dict()
        settings.outcome_classes_changed_at = at or timezone.now()
        settings.outcome_classes_changed_by = actor
        settings.full_clean(exclude=["institution"])
        settings.save()
    return OutcomeMappingChange(saved=True, current=change.current, proposed=change.proposed,
                                students_by_outcome=change.students_by_outcome)
